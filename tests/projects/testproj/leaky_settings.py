"""testproj plus an app whose migration prints secrets (the log scrubber must catch them)."""

from testproj.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "leaky"]  # noqa: F405
