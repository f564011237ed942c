"""Carry out an alias's plan under the lock, through Django's own machinery.

The plan is made again under the lock (``plan.make``: another replica may have moved the
database while this one waited), refused there if it must not run, and what it records besides
the migrations (squashes, django-safemigrate's first-seen dates) is recorded first. Then
Django's executor applies it with the pre_migrate and post_migrate signals, each migration
reported (progress.py). A migration rolled back for a table lock is retried after a backoff
(retries.py), on a plan made once more.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.apps import apps as global_apps
from django.core.management.sql import emit_post_migrate_signal, emit_pre_migrate_signal
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder
from django.db.migrations.state import ModelState, ProjectState

from entrypoint import log
from entrypoint.errors import EntrypointError, Interrupted, MigrationFailed
from entrypoint.migrate.config import MigrateSettings
from entrypoint.migrate.naming import label
from entrypoint.migrate.plan import phases
from entrypoint.migrate.plan.graph import build_executor
from entrypoint.migrate.plan.make import Plan, make
from entrypoint.migrate.plan.preflight import data_loss
from entrypoint.migrate.run.guard import Guard
from entrypoint.migrate.run.progress import Progress, interrupted
from entrypoint.migrate.run.retries import Retries, is_lock_timeout

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.migrations.migration import Migration


def apply(connection: BaseDatabaseWrapper, settings: MigrateSettings, guard: Guard) -> int:
    """Plan under the lock and carry the plan out; return how many migrations moved."""
    progress = Progress(guard, connection.alias)
    executor = _executor(connection, progress)
    # Analysed even without a gate: each high-risk operation is warned of before it runs.
    plan = make(connection, settings, executor=executor, effects=True)
    plan.refuse()
    phases.record_first_seen(plan.first_seen)
    if not plan.steps:
        # Squashes shipped after all they replace: recorded now, as Django's migrate does.
        _record_squashes(connection, plan.squashes)
        return 0
    progress.risks = plan.risks or progress.risks
    progress.total = len(plan.steps)
    progress.log.info("migrations_planned", count=len(plan.steps), first=label(plan.steps[0][0]))
    pre_state = executor._create_project_state(with_applied_migrations=True)  # type: ignore[attr-defined] # noqa: SLF001
    emit_pre_migrate_signal(
        verbosity=1,
        interactive=False,
        db=connection.alias,
        stdout=sys.stdout,
        apps=pre_state.apps,
        plan=list(plan.steps),
    )
    retries = Retries(connection.alias, settings.retry_timeout)
    try:
        state = _apply(executor, plan, progress, pre_state.clone(), retries, settings)
    finally:
        progress.stop_heartbeat()
    emit_post_migrate_signal(
        verbosity=1,
        interactive=False,
        db=connection.alias,
        stdout=sys.stdout,
        apps=_post_migrate_apps(state),
        plan=list(plan.steps),
    )
    return progress.done


def _apply(  # noqa: PLR0913, PLR0917 - the state of one apply, passed along once
    executor: MigrationExecutor,
    plan: Plan,
    progress: Progress,
    state: ProjectState,
    retries: Retries,
    settings: MigrateSettings,
) -> ProjectState:
    """Run the plan; a migration that timed out on a table lock is retried after a backoff."""
    guard = progress.guard
    while True:
        try:
            return _run_phases(executor, plan, progress, state, settings)
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
        # While it waited, its tables may have grown past the gate: judged again, locked.
        plan = make(executor.connection, settings, executor=executor, effects=settings.gated)
        plan.refuse()
        progress.risks = plan.risks or progress.risks
        state = executor._create_project_state(with_applied_migrations=True)  # type: ignore[attr-defined] # noqa: SLF001


def _run_phases(
    executor: MigrationExecutor,
    plan: Plan,
    progress: Progress,
    state: ProjectState,
    settings: MigrateSettings,
) -> ProjectState:
    """Django refuses mixed plans: unapply first, then apply what the targets still need."""
    nodes = list(plan.nodes)
    backward = [step for step in plan.steps if step[1]]
    if not backward:
        return executor.migrate(
            nodes,
            plan=list(plan.steps),
            state=state,
            fake=settings.fake,
            fake_initial=settings.fake_initial,
        )
    progress.log.warning(
        "migrations_backward",
        unapply=[label(m) for m, _ in backward],
        drops_data=data_loss(backward),
    )
    state = executor.migrate(nodes, plan=backward, state=state, fake=settings.fake)
    # What the targets still need, in Django's own order, on a graph that knows what was undone.
    executor = _executor(executor.connection, progress)
    forward = executor.migration_plan(nodes)
    progress.total = len(backward) + len(forward)
    if not forward:
        return state
    state = executor._create_project_state(with_applied_migrations=True)  # type: ignore[attr-defined] # noqa: SLF001
    return executor.migrate(
        nodes, plan=forward, state=state, fake=settings.fake, fake_initial=settings.fake_initial
    )


def _executor(connection: BaseDatabaseWrapper, progress: Progress) -> MigrationExecutor:
    executor = build_executor(connection, progress)
    executor.recorder = progress.guard.recorder
    return executor


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


def _failed(progress: Progress, exc: Exception) -> MigrationFailed:
    where = label(progress.current) if progress.current else "the plan"
    progress.log.debug("traceback", traceback=traceback.format_exc())
    return MigrationFailed(
        f"migration {where} failed: {type(exc).__name__}: {str(exc).strip()[:500]}"
    )


def _record_squashes(connection: BaseDatabaseWrapper, squashes: Sequence[Migration]) -> None:
    """Record the squashes whose replaced migrations all are (the plan under the lock names
    them), as Django's migrate does on every run (``MigrationExecutor.check_replacements``):
    else a squash shipped after all it replaces were applied would never be recorded, and
    every start would take the graph's path instead of the file-level check."""
    if not squashes:
        return
    recorder = MigrationRecorder(connection)
    for squash in squashes:
        recorder.record_applied(squash.app_label, squash.name)
    log.get().info(
        "migration_squash_recorded", alias=connection.alias, migrations=list(map(label, squashes))
    )
