import os
import time

from django.apps import AppConfig
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.operations import AddIndex

from entrypoint.migrate.lock.keepalive import Keepalive


class SeededConfig(AppConfig):
    name = "seeded"

    def ready(self) -> None:
        if os.environ.get("SEEDED_PAUSE") == "between":
            _pause_between_migrations(float(os.environ.get("SEEDED_SECONDS", "0")))
        if os.environ.get("SEEDED_PAUSE") == "before_index":
            _pause_before_add_index(float(os.environ.get("SEEDED_SECONDS", "0")))
        if os.environ.get("SEEDED_NO_KEEPALIVE"):
            _silence_the_keepalive()


def _pause_before_add_index(seconds: float) -> None:
    """Sleep in Python before each AddIndex (shop 0002's): on MySQL between two DDL statements of
    one migration, outside any transaction."""
    forwards = AddIndex.database_forwards

    def pause_then_add(self, *args, **kwargs):
        time.sleep(seconds)
        return forwards(self, *args, **kwargs)

    AddIndex.database_forwards = pause_then_add


def _silence_the_keepalive() -> None:
    """The lock's keepalive never pings: nothing tells the holder that its lock was lost, so a
    test sees what the checks on the migrating connection do by themselves."""
    Keepalive.start = lambda self: None


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
