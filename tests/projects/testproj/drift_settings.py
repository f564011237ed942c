"""testproj with the drift app at the version DRIFT_VERSION names: v1 (default), v2 or compat."""

import os

from testproj.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "drift"]  # noqa: F405
DRIFT_VERSION = os.environ.get("DRIFT_VERSION", "v1")
if DRIFT_VERSION != "v1":
    MIGRATION_MODULES = {"drift": f"drift.{DRIFT_VERSION}.migrations"}
if os.environ.get("DRIFT_ROUTED"):
    DATABASE_ROUTERS = ["drift.routers.DefaultOnly"]
