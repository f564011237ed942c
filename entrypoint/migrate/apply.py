"""Apply a migration plan through Django's own machinery, reporting each migration."""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.apps import apps as global_apps
from django.core.management.sql import emit_post_migrate_signal, emit_pre_migrate_signal
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.state import ModelState, ProjectState

from entrypoint import log
from entrypoint.config import Target
from entrypoint.errors import EntrypointError, Interrupted, LockLost, MigrationFailed
from entrypoint.migrate.guard import Guard
from entrypoint.migrate.plan import check_history, label, resolve_targets
from entrypoint.migrate.preflight import data_loss, prepared

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.migrations.migration import Migration

Plan = list[tuple["Migration", bool]]


class Progress:
    """Django's progress_callback: checks the lock before each migration, logs each one done."""

    def __init__(self, guard: Guard, alias: str) -> None:
        self.guard = guard
        self.log = log.get().bind(alias=alias)
        self.done = 0
        self.total = 0
        self.current: Migration | None = None
        self.started = 0.0

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
            if self.guard.lost.is_set() or not self.guard.lock.is_held():
                raise LockLost(
                    f"the migration lock's connection was lost before {label(migration)} "
                    "could start: stopped so as not to migrate unprotected; run again"
                )
            self.guard.current = (migration, action == "unapply_start")
            self.current, self.started = migration, time.perf_counter()
            self.log.debug(
                "migration_started", backwards=action == "unapply_start", **self.fields()
            )
        elif action in ("apply_success", "unapply_success") and self.current is not None:
            event = "migration_applied" if action == "apply_success" else "migration_unapplied"
            duration = round(time.perf_counter() - self.started, 3)
            self.log.info(event, duration_s=duration, fake=fake, **self.fields())
            self.done += 1
            self.current = self.guard.current = None


def _interrupted(progress: Progress, connection: BaseDatabaseWrapper) -> dict[str, object]:
    """What an interrupted migration left: on MySQL, DDL that ran stays (no transactional DDL)."""
    migration = progress.current
    assert migration is not None
    rolled_back = bool(migration.atomic and connection.features.can_rollback_ddl)
    fields: dict[str, object] = {"rolled_back": rolled_back, **progress.fields()}
    if not rolled_back:
        fields["may_have_run"] = [op.describe() for op in migration.operations]
        fields["hint"] = (
            "check which of these operations reached the database; undo them by hand, or "
            "record the migration with lockedmigrate --fake once its effects are complete"
        )
    return fields


def _post_migrate_apps(state: ProjectState) -> Any:
    # As Django's migrate does: post_migrate handlers see real models with their relations.
    state.clear_delayed_apps_cache()
    post_apps = state.apps
    with post_apps.bulk_update():
        keys = []
        for model_state in post_apps.real_models:
            key = model_state.app_label, model_state.name_lower
            keys.append(key)
            post_apps.unregister_model(*key)
    post_apps.render_multiple([ModelState.from_model(global_apps.get_model(*k)) for k in keys])
    return post_apps


def _run_phases(
    executor: MigrationExecutor,
    nodes: list[tuple[str, str | None]],
    plan: Plan,
    progress: Progress,
    state: ProjectState,
    **flags: bool,
) -> ProjectState:
    """Django refuses mixed plans: unapply first, then apply what the targets still need."""
    backward = [step for step in plan if step[1]]
    if backward:
        progress.log.warning(
            "migrations_backward",
            unapply=[label(m) for m, _ in backward],
            drops_data=data_loss(backward),
        )
        state = executor.migrate(nodes, plan=backward, state=state, fake=flags["fake"])
        executor = _executor(executor.connection, progress)
        forward = executor.migration_plan(nodes)
        progress.total = len(backward) + len(forward)
        if not forward:
            return state
        state = executor._create_project_state(with_applied_migrations=True)  # type: ignore[attr-defined] # noqa: SLF001
    else:
        forward = plan
    return executor.migrate(nodes, plan=forward, state=state, **flags)


def _executor(connection: BaseDatabaseWrapper, progress: Progress) -> MigrationExecutor:
    executor = MigrationExecutor(connection, progress)
    executor.recorder = progress.guard.recorder
    return executor


def apply_to_targets(  # noqa: PLR0913 - Django migrate's own flags, keyword-only
    connection: BaseDatabaseWrapper,
    targets: Sequence[Target],
    guard: Guard,
    *,
    all_apps: bool = True,
    fake: bool = False,
    fake_initial: bool = False,
    phase: str = "post",
) -> int:
    """Re-plan under the lock and apply; return how many migrations moved."""
    progress = Progress(guard, connection.alias)
    executor = _executor(connection, progress)
    check_history(executor.loader, connection)
    nodes = resolve_targets(executor.loader, targets, all_apps=all_apps)
    plan = prepared(executor.migration_plan(nodes), phase, fake=fake)
    if not plan:
        progress.log.info("migrations_up_to_date", locked=True)  # another replica did the work
        return 0
    progress.total = len(plan)
    progress.log.info("migrations_planned", count=len(plan), first=label(plan[0][0]))
    pre_state = executor._create_project_state(with_applied_migrations=True)  # type: ignore[attr-defined] # noqa: SLF001
    emit_pre_migrate_signal(
        verbosity=1,
        interactive=False,
        db=connection.alias,
        stdout=sys.stdout,
        apps=pre_state.apps,
        plan=plan,
    )
    try:
        state = _run_phases(
            executor, nodes, plan, progress, pre_state.clone(), fake=fake, fake_initial=fake_initial
        )
    except Interrupted:
        if progress.current is not None:
            progress.log.warning("migration_interrupted", **_interrupted(progress, connection))
        raise
    except EntrypointError:
        raise
    except Exception as exc:
        if guard.lost.is_set():  # the keepalive cancelled it: say so, not the driver's words
            raise guard.lost_error() from exc
        where = label(progress.current) if progress.current else "the plan"
        progress.log.debug("traceback", traceback=traceback.format_exc())
        raise MigrationFailed(
            f"migration {where} failed: {type(exc).__name__}: {str(exc).strip()[:500]}"
        ) from exc
    emit_post_migrate_signal(
        verbosity=1,
        interactive=False,
        db=connection.alias,
        stdout=sys.stdout,
        apps=_post_migrate_apps(state),
        plan=plan,
    )
    progress.log.info("migrations_done", count=progress.done)
    return progress.done
