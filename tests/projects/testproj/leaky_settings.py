"""testproj plus an app whose migration leaks secrets, and a console handler in LOGGING."""

import sys

from testproj.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "leaky"]  # noqa: F405
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}
print("leaky settings loaded", file=sys.stderr)
