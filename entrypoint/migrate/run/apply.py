"""Apply a migration plan through Django's own machinery, reporting each migration."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.apps import apps as global_apps
from django.core.management.sql import emit_post_migrate_signal, emit_pre_migrate_signal
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.state import ModelState, ProjectState

from entrypoint.errors import EntrypointError, Interrupted, MigrationFailed
from entrypoint.migrate.config import Target
from entrypoint.migrate.naming import label
from entrypoint.migrate.plan.graph import build_executor, check_history, resolve_targets
from entrypoint.migrate.plan.preflight import data_loss, prepared
from entrypoint.migrate.plan.risk import gate
from entrypoint.migrate.run.guard import Guard
from entrypoint.migrate.run.progress import Progress, interrupted
from entrypoint.migrate.run.retries import Retries, is_lock_timeout
from entrypoint.migrate.run.squashes import record_squashes

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.migrations.migration import Migration

Plan = list[tuple["Migration", bool]]


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
    executor = build_executor(connection, progress)
    executor.recorder = progress.guard.recorder
    return executor


def _apply(  # noqa: PLR0913, PLR0917 - the state of one apply, passed along once
    executor: MigrationExecutor,
    nodes: list[tuple[str, str | None]],
    plan: Plan,
    progress: Progress,
    state: ProjectState,
    retries: Retries,
    flags: dict[str, Any],
) -> ProjectState:
    """Run the plan; a migration that timed out on a table lock is retried after a backoff."""
    guard = progress.guard
    while True:
        try:
            return _run_phases(
                executor,
                nodes,
                plan,
                progress,
                state,
                fake=flags["fake"],
                fake_initial=flags["fake_initial"],
            )
        except Interrupted:
            if progress.current is not None:
                progress.log.warning("migration_interrupted", **interrupted(progress))
            raise
        except EntrypointError:
            raise
        except Exception as exc:
            # The keepalive stopped it, or its own connection died (a cut network is noticed
            # on both within the network timeout): say so, and what became of it.
            if guard.lost.is_set() or guard.connection_lost():
                raise guard.lost_error() from exc
            if progress.current is None or not is_lock_timeout(exc):
                raise _failed(progress, exc) from exc
            # Rolled back (an atomic migration): the app's queries flow while we back off.
            retries.contended(progress.current, guard.timeouts.blockers())
        progress.stop_heartbeat()
        progress.current = guard.current = None
        executor = _executor(executor.connection, progress)
        plan = prepared(
            executor.migration_plan(nodes), flags["phase"], fake=flags["fake"], report=False
        )
        if flags["max_blocking_rows"] is not None:
            # While it waited, its tables may have grown past the gate: judged again, locked.
            progress.risks = gate.check(
                executor.connection, plan, flags["max_blocking_rows"], fake=flags["fake"]
            )
        state = executor._create_project_state(with_applied_migrations=True)  # type: ignore[attr-defined] # noqa: SLF001


def _failed(progress: Progress, exc: Exception) -> MigrationFailed:
    where = label(progress.current) if progress.current else "the plan"
    progress.log.debug("traceback", traceback=traceback.format_exc())
    return MigrationFailed(
        f"migration {where} failed: {type(exc).__name__}: {str(exc).strip()[:500]}"
    )


def apply_to_targets(  # noqa: PLR0913 - Django migrate's own flags, keyword-only
    connection: BaseDatabaseWrapper,
    targets: Sequence[Target],
    guard: Guard,
    *,
    all_apps: bool = True,
    fake: bool = False,
    fake_initial: bool = False,
    retry_timeout: float = 600.0,
    phase: str = "post",
    max_blocking_rows: int | None = None,
) -> int:
    """Re-plan under the lock and apply; return how many migrations moved."""
    progress = Progress(guard, connection.alias)
    executor = _executor(connection, progress)
    check_history(executor.loader, connection)
    nodes = resolve_targets(executor.loader, targets, all_apps=all_apps)
    plan = prepared(executor.migration_plan(nodes), phase, fake=fake, report=False)
    if not plan:
        progress.log.info("migrations_up_to_date", locked=True, checked="graph")
        # Squashes shipped after all they replace: recorded now, as Django's migrate does.
        record_squashes(connection, list(executor.loader.replacements.values()))
        return 0
    # The plan may differ from the one checked before the lock, and the tables may have grown.
    progress.risks = gate.check(connection, plan, max_blocking_rows, fake=fake)
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
    retries = Retries(connection.alias, retry_timeout)
    try:
        flags = {
            "fake": fake,
            "fake_initial": fake_initial,
            "phase": phase,
            "max_blocking_rows": max_blocking_rows,
        }
        state = _apply(executor, nodes, plan, progress, pre_state.clone(), retries, flags)
    finally:
        progress.stop_heartbeat()
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
