"""The drift app's tables on the default database only; every other app everywhere."""

from typing import Any


class DefaultOnly:
    def allow_migrate(self, db: str, app_label: str, **_hints: Any) -> bool | None:
        return db == "default" if app_label == "drift" else None
