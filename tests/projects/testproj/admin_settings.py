"""testproj with password validators, and optionally a router sending auth to AUTH_DATABASE."""

import os

from testproj.settings import *  # noqa: F403

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if os.environ.get("AUTH_DATABASE"):
    DATABASE_ROUTERS = ["testproj.routers.AuthRouter"]
