"""Settings that fail on import the way real ones do: a required variable is missing."""

import os

from testproj.settings import *  # noqa: F403

SECRET_KEY = os.environ["TESTPROJ_REQUIRED_SECRET_KEY"]
