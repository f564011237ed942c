"""Django's migration graph: the executor built (a missing dependency refused), the targets
resolved against it (conflicts, bad names and contradictions refused), the recorded history
checked, and what the records say beyond the plan (squashes to record, migrations unknown to
this code). plan/make.py puts these together into the plan."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from django.apps import apps
from django.db.migrations.exceptions import (
    AmbiguityError,
    InconsistentMigrationHistory,
    NodeNotFoundError,
)
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

from entrypoint.errors import ConfigError, MigrationConflict, MigrationGraphError
from entrypoint.migrate.config import Target

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.migrations.executor import _ProgressCallbackT
    from django.db.migrations.migration import Migration

Node = tuple[str, "str | None"]
SOURCE = "ENTRYPOINT_MIGRATE_TARGETS"  # where targets come from, unless a caller says otherwise


@contextmanager
def _graph_built() -> Iterator[None]:
    """Django builds the graph as it makes a loader: a dependency on a migration this code
    lacks is a NodeNotFoundError there, which no retry or restart cures."""
    try:
        yield
    except NodeNotFoundError as exc:
        raise MigrationGraphError(_missing(exc)) from exc


def _missing(exc: NodeNotFoundError) -> str:
    app, name = exc.node
    if exc.origin is None:  # Django's own message already explains (a partly applied squash)
        return f"{exc}: ship the migrations it names, or fix the dependency"
    found = f"migration {exc.origin} refers to {app}.{name} (its dependencies or run_before)"
    if app not in {config.label for config in apps.get_app_configs()}:
        return f"{found}, but no installed app is labelled {app!r}: add it to INSTALLED_APPS"
    return (
        f"{found}, which this code does not have: ship {app}'s migration {name} (a file not "
        f"copied into the image, a branch not merged), or, if it was renamed or squashed, "
        f"fix {exc.origin}'s dependencies; a restart cannot fix this"
    )


def build_executor(
    connection: BaseDatabaseWrapper, progress: _ProgressCallbackT | None = None
) -> MigrationExecutor:
    """Django's executor on ``connection``, its graph built (78 if it cannot be)."""
    with _graph_built():
        return MigrationExecutor(connection, progress)


def check_conflicts(loader: MigrationLoader) -> None:
    conflicts = loader.detect_conflicts()
    if conflicts:
        found = "; ".join(f"{app}: {', '.join(sorted(names))}" for app, names in conflicts.items())
        raise MigrationConflict(
            f"conflicting migrations (several leaf nodes) in {found}: "
            "run 'manage.py makemigrations --merge' and ship the merge migration"
        )


def _contradictions(
    loader: MigrationLoader, nodes: dict[str, str | None], named: set[str], source: str
) -> list[str]:
    """A named app sent backwards while another app's target still needs what it unapplies."""
    graph = loader.graph
    problems: list[str] = []
    for app in sorted(named):
        target = nodes[app]
        kept = set(graph.forwards_plan((app, target))) if target else set()
        beyond = {n for n in graph.nodes if n[0] == app and n not in kept}
        for other, node in sorted(nodes.items()):
            if other == app or node is None or not beyond:
                continue
            needed = sorted(beyond.intersection(graph.forwards_plan((other, node))))
            if needed:
                problems.append(
                    f"{source} sends {app} to {target or 'zero'}, but {other} "
                    f"{node} needs {needed[0][0]} {needed[0][1]}: also name {other} with a "
                    "migration from before that dependency"
                )
    return problems


def resolve_targets(
    loader: MigrationLoader,
    targets: Sequence[Target],
    *,
    all_apps: bool = True,
    source: str = SOURCE,
) -> list[Node]:
    """Every app with migrations goes to its latest node, except the apps named in targets.

    With ``all_apps=False`` only the named apps are targets (``manage.py migrate APP`` style).
    Raises ConfigError listing every bad target, before anything touches the database.
    """
    check_conflicts(loader)
    leaves: dict[str, str | None] = dict(loader.graph.leaf_nodes())
    nodes = leaves if all_apps else {app: leaves.get(app) for app, _ in targets}
    problems: list[str] = []
    for app, name in targets:
        if app not in loader.migrated_apps:
            problems.append(
                f"{source} names app {app!r}, which has no migrations: use an installed app label"
            )
        elif name is None:
            continue
        elif name == "zero":
            nodes[app] = None
        else:
            try:
                nodes[app] = loader.get_migration_by_prefix(app, name).name
            except AmbiguityError:
                problems.append(
                    f"{source}: {app} {name!r} matches several migrations: give more of the name"
                )
            except KeyError:
                problems.append(
                    f"{source}: app {app!r} has no migration {name!r}: "
                    "use a migration name, a unique prefix of one, or zero"
                )
    if not problems:
        problems = _contradictions(loader, nodes, {app for app, name in targets if name}, source)
    if problems:
        raise ConfigError(*problems)
    return sorted(nodes.items())


def check_targets(
    targets: Sequence[Target], *, all_apps: bool = True, source: str = SOURCE
) -> None:
    """Validate targets against the graph on disk, without a database connection."""
    with _graph_built():
        loader = MigrationLoader(None, ignore_no_migrations=True)
    resolve_targets(loader, targets, all_apps=all_apps, source=source)


def squashes_to_record(loader: MigrationLoader, connection: BaseDatabaseWrapper) -> list[Migration]:
    """The squashed migrations to record: all they replace is recorded, they are not (Django's
    migrate records them; until then the file-level check cannot pass)."""
    if not loader.replacements:
        return []
    recorded = MigrationRecorder(connection).applied_migrations()
    return [
        m
        for key, m in sorted(loader.replacements.items())
        if key not in recorded and all(r in recorded for r in m.replaces)
    ]


def unknown_applied(loader: MigrationLoader) -> list[str]:
    """What the database records of apps this code has, and the code lacks: an older image
    cannot undo it. A migration a squash on disk replaces is known, even once its file is gone.
    """
    replaced = {key for m in loader.replacements.values() for key in m.replaces}
    return sorted(
        f"{app}.{name}"
        for app, name in loader.applied_migrations or {}
        if app in loader.migrated_apps
        and (app, name) not in loader.disk_migrations
        and (app, name) not in replaced
    )


# Django's words, "Migration a.0002 is applied before its dependency b.0001 on database 'x'."
APPLIED_BEFORE = re.compile(r"Migration (\w+)\.(\w+) is applied before its dependency (\w+)\.(\w+)")


def check_history(loader: MigrationLoader, connection: BaseDatabaseWrapper) -> None:
    """Refuse what Django's migrate refuses: an applied migration whose dependency is not.

    The plan alone would miss it: a leaf recorded as applied looks up to date. Django's
    ``migrate --fake`` cannot repair it (it refuses the same history), so the fix is in
    ``django_migrations``, which only someone who knows the tables can decide.
    """
    try:
        loader.check_consistent_history(connection)
    except InconsistentMigrationHistory as exc:
        raise MigrationGraphError(f"inconsistent migration history: {exc} {_repair(exc)}") from exc


def _repair(exc: InconsistentMigrationHistory) -> str:
    found = APPLIED_BEFORE.search(str(exc))
    if not found:
        return (
            "If the dependency's tables exist, record it in django_migrations; otherwise delete "
            "the row of the migration applied before it. A restart cannot fix this"
        )
    app, name, dep_app, dep_name = found.groups()
    # For a human to run, not us; the names are \w+ (Django's message, matched above).
    record = "INSERT INTO django_migrations (app, name, applied) VALUES "
    record += f"('{dep_app}', '{dep_name}', CURRENT_TIMESTAMP)"
    return (
        f"If {dep_app}.{dep_name}'s tables exist (it was added after the other was applied, "
        f"e.g. a custom user model added late), record it: {record}; otherwise delete the row "
        f"of {app}.{name} so that both are applied in order. A restart cannot fix this"
    )
