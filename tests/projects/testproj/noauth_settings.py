"""testproj without django.contrib.auth: the admin step must fail clearly."""

from testproj.settings import *  # noqa: F403

INSTALLED_APPS = ["main"]
