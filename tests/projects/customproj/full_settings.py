"""customproj with django.contrib's apps and the kinds app: a project the schema check must
find compatible once migrated."""

from testproj.settings import MIDDLEWARE, TEMPLATES  # noqa: F401 - the admin's system checks

from customproj.settings import *  # noqa: F403

INSTALLED_APPS = [
    *INSTALLED_APPS,  # noqa: F405
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",
    "django.contrib.sites",
    "django.contrib.flatpages",
    "django.contrib.redirects",
    "kinds",
]
SITE_ID = 1
