"""migproj with django-safemigrate and sideeffect: migrations whose code writes a row each time it
runs (tests/test_risk_readonly.py). SIDEEFFECT_BACKEND: a backend whose schema editor writes too."""

import os

from migproj.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "django_safemigrate", "sideeffect"]  # noqa: F405
if os.environ.get("SIDEEFFECT_BACKEND"):
    DATABASES["default"]["ENGINE"] = "sideeffect.backend"  # noqa: F405
