"""What this code expects of one alias: the tables and columns of the models it migrates there.

The same models Django's ``migrate`` creates on that alias: ``can_migrate`` (concrete, managed,
not swapped out, the engine it requires) and the routers' ``allow_migrate``. Each column with
the type the model declares, as its field would create it (``db_type``; PostgreSQL only).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper


@dataclass(frozen=True)
class ModelTable:
    label: str  # app_label.ModelName, as Django names it (auth.User_groups for an M2M table)
    table: str  # db_table, as the model declares it
    columns: dict[str, str | None]  # column: the type the field declares (None: not compared)


def pinned(targets: Iterable[tuple[str, str | None]]) -> frozenset[str]:
    """The apps ENTRYPOINT_MIGRATE_TARGETS sends to a named migration (or zero): this code
    may be ahead of them on purpose, the first step of a rollback by targets."""
    return frozenset(app for app, name in targets if name is not None)


def expected(connection: BaseDatabaseWrapper, *, skip: Collection[str]) -> list[ModelTable]:
    """Every model this code migrates on ``connection``'s alias, but those of the apps in
    ``skip``; auto-created many-to-many tables included."""
    from django.apps import apps  # noqa: PLC0415 - Django is set up by the caller
    from django.db import router  # noqa: PLC0415

    typed = connection.vendor == "postgresql"  # the only engine whose types are compared
    found = []
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta  # noqa: SLF001 - Django's documented model API
        if meta.app_label in skip or not meta.can_migrate(connection):
            continue
        if not router.allow_migrate_model(connection.alias, model):
            continue
        columns = {
            # db_type, not db_parameters: the check constraint it also renders is not compared
            # and would double the cost (some 20 ms on 200 models).
            field.column: field.db_type(connection) if typed else None
            for field in meta.local_concrete_fields
            if field.column  # always set on a concrete field; says so to the type checker
        }
        found.append(ModelTable(meta.label, meta.db_table, columns))
    return found
