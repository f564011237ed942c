"""The tests' Django project: DATABASE_URL (and optional OTHER_DATABASE_URL) from the env."""

import os

import dj_database_url

try:  # PyMySQL stands in for mysqlclient (no C build); its version_info satisfies Django's check
    import pymysql

    if os.environ.get("TESTPROJ_MYSQL_DRIVER") != "mysqlclient":  # mysqlclient where installed
        pymysql.install_as_MySQLdb()
except ImportError:
    pass

SECRET_KEY = "tests-only"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.admin",
    "django.contrib.messages",
    "entrypoint",
    "main",
    "opscmds",  # management commands for the manage step's tests
]
DATABASES = {"default": dj_database_url.parse(os.environ.get("DATABASE_URL", "sqlite:///:memory:"))}
if os.environ.get("OTHER_DATABASE_URL"):
    DATABASES["other"] = dj_database_url.parse(os.environ["OTHER_DATABASE_URL"])
ROOT_URLCONF = "testproj.urls"
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
