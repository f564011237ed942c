"""Sends reads and writes of auth models to AUTH_DATABASE; every app migrates everywhere."""

import os
from typing import Any


class AuthRouter:
    def _route(self, model: Any, **_hints: Any) -> str | None:
        if model._meta.app_label == "auth":
            return os.environ["AUTH_DATABASE"]
        return None

    db_for_read = _route
    db_for_write = _route
