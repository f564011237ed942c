"""Django's progress_callback for our apply: the lock checked before each migration, events."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from entrypoint import heartbeat, log
from entrypoint.errors import LockLost
from entrypoint.migrate.naming import label
from entrypoint.migrate.plan.risk.gate import Assessment
from entrypoint.migrate.run.guard import Guard

if TYPE_CHECKING:
    from django.db.migrations.migration import Migration


class Progress:
    """Django's progress_callback: checks the lock before each migration, logs each one done."""

    def __init__(self, guard: Guard, alias: str) -> None:
        self.guard = guard
        self.alias = alias
        self.beat: heartbeat.Heartbeat | None = None
        self.log = log.get().bind(alias=alias)
        self.done = 0
        self.total = 0
        self.current: Migration | None = None
        self.started = 0.0
        self.risks = Assessment({}, "")  # what each operation locks: warned of before it runs

    def fields(self) -> dict[str, object]:
        assert self.current is not None
        return {
            "app": self.current.app_label,
            "name": self.current.name,
            "position": f"{self.done + 1}/{self.total}",
        }

    def __call__(
        self, action: str, migration: Migration | None = None, fake: bool | None = False, /
    ) -> None:
        if action in ("apply_start", "unapply_start"):
            assert migration is not None
            if not self.guard.holds():
                raise LockLost(
                    f"the migration lock's connection was lost before {label(migration)} "
                    "could start: stopped so as not to migrate unprotected; run again"
                )
            self.guard.current = (migration, action == "unapply_start")
            self.current, self.started = migration, time.perf_counter()
            self.beat = heartbeat.Heartbeat(
                "migration_running", alias=self.alias, **self.fields()
            ).start()
            self.log.debug(
                "migration_started", backwards=action == "unapply_start", **self.fields()
            )
            self.risks.warn(migration, self.log)
        elif action in ("apply_success", "unapply_success") and self.current is not None:
            event = "migration_applied" if action == "apply_success" else "migration_unapplied"
            duration = round(time.perf_counter() - self.started, 3)
            self.stop_heartbeat()
            self.log.info(event, duration_s=duration, fake=fake, **self.fields())
            self.done += 1
            self.current = self.guard.current = None

    def stop_heartbeat(self) -> None:
        if self.beat is not None:
            self.beat.stop()
            self.beat = None


def interrupted(progress: Progress) -> dict[str, object]:
    """What an interrupted migration left: on MySQL, DDL that ran stays (no transactional DDL)."""
    migration = progress.current
    assert migration is not None
    rolled_back = progress.guard.one_transaction()
    fields: dict[str, object] = {"rolled_back": rolled_back, **progress.fields()}
    if not rolled_back:
        fields["may_have_run"] = [op.describe() for op in migration.operations]
        fields["hint"] = (
            "check which of these operations reached the database; undo them by hand, or "
            "record the migration with lockedmigrate --fake once its effects are complete"
        )
    return fields
