"""Migration targets resolved against the migration graph, and the plan to reach them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.db.migrations.exceptions import AmbiguityError
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader

from entrypoint.config import Target
from entrypoint.errors import ConfigError

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.migrations.migration import Migration

Node = tuple[str, "str | None"]


def resolve_targets(loader: MigrationLoader, targets: Sequence[Target]) -> list[Node]:
    """Every app with migrations goes to its latest node, except the apps named in targets.

    Raises ConfigError listing every bad target, before anything touches the database.
    """
    nodes: dict[str, str | None] = dict(loader.graph.leaf_nodes())
    problems: list[str] = []
    for app, name in targets:
        if app not in loader.migrated_apps:
            problems.append(
                f"ENTRYPOINT_MIGRATE_TARGETS names app {app!r}, which has no migrations: "
                "use an installed app label"
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
                    f"ENTRYPOINT_MIGRATE_TARGETS: {app} {name!r} matches several migrations: "
                    "give more of the name"
                )
            except KeyError:
                problems.append(
                    f"ENTRYPOINT_MIGRATE_TARGETS: app {app!r} has no migration {name!r}: "
                    "use a migration name, a unique prefix of one, or zero"
                )
    if problems:
        raise ConfigError(*problems)
    return sorted(nodes.items())


def check_targets(targets: Sequence[Target]) -> None:
    """Validate targets against the graph on disk, without a database connection."""
    resolve_targets(MigrationLoader(None, ignore_no_migrations=True), targets)


def migration_plan(
    connection: BaseDatabaseWrapper, targets: Sequence[Target]
) -> list[tuple[Migration, bool]]:
    """The (migration, backwards) steps from the recorded state to the targets."""
    executor = MigrationExecutor(connection)
    return executor.migration_plan(resolve_targets(executor.loader, targets))
