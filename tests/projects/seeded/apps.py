import os
import time

from django.apps import AppConfig
from django.db.migrations.executor import MigrationExecutor


class SeededConfig(AppConfig):
    name = "seeded"

    def ready(self) -> None:
        if os.environ.get("SEEDED_PAUSE") == "between":
            _pause_between_migrations(float(os.environ.get("SEEDED_SECONDS", "0")))


def _pause_between_migrations(seconds: float) -> None:
    """Sleep in Python once 0002 is applied, before the executor moves on to 0003.

    Django has no hook between two migrations of one plan, so the executor's own method is
    wrapped: the holder is then outside any migration and any transaction, as when a large
    project's state takes seconds to render between migrations.
    """
    apply = MigrationExecutor.apply_migration

    def apply_then_pause(self, state, migration, *args, **kwargs):
        state = apply(self, state, migration, *args, **kwargs)
        if (migration.app_label, migration.name) == ("seeded", "0002_seed"):
            time.sleep(seconds)
        return state

    MigrationExecutor.apply_migration = apply_then_pause
