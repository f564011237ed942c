"""The file-level fast path: whether anything can be pending, from the migration files' names.

A steady-state start (nothing to apply) would otherwise import every migration module of every
app to build Django's graph, only to find the plan empty. Here each app's migrations package is
listed the way Django's ``MigrationLoader.load_disk`` lists it (``MIGRATION_MODULES`` honoured,
``pkgutil.iter_modules`` on the package's path, names starting with ``_`` or ``~`` skipped),
importing the package (its ``__init__``, as the loader does) but none of its modules.

``up_to_date`` is True only when every module found is recorded in django_migrations and
nothing recorded for those apps is missing on disk. Then the plan to the latest migrations is
empty, whatever the graph says: every node is applied. A squashed migration counts when it is
recorded itself (Django records it once all it replaces are); one not recorded sends the start
down the full path, since what it ``replaces`` is only known by importing it. Anything this
module cannot tell from names is a "no": the full path decides, so it never skips real work.
"""

from __future__ import annotations

import os
import pkgutil
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING

from django.apps import apps
from django.db.migrations.loader import MIGRATIONS_MODULE_NAME, MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

Key = tuple[str, str]
# The backends whose django_migrations behave as Django's own recorder expects (others, such
# as third-party backends, may keep their history elsewhere): the full path for the rest.
VENDORS = frozenset({"postgresql", "mysql", "sqlite"})


@dataclass(frozen=True)
class Listing:
    """The migration modules on disk, by (app label, name), and the apps that have migrations."""

    files: frozenset[Key]
    apps: frozenset[str]


class _Undecided(Exception):
    """The loader would raise here: the full path reports it in Django's words."""


def _package_path(app_label: str) -> Iterable[str] | None:
    """The app's migrations package path, as the loader finds it; None: the app has none.

    Raises _Undecided where the loader would raise: an explicit MIGRATION_MODULES entry that
    is missing, a migrations package that fails to import.
    """
    module_name, explicit = MigrationLoader.migrations_module(app_label)
    if module_name is None:
        return None
    try:
        module = import_module(module_name)
    except ModuleNotFoundError as exc:
        if explicit or MIGRATIONS_MODULE_NAME not in (exc.name or "").split("."):
            raise _Undecided from exc
        return None  # no migrations package: an app without migrations
    except Exception as exc:
        raise _Undecided from exc
    path: Iterable[str] | None = getattr(module, "__path__", None)
    # A migrations.py module, or a namespace package (an empty directory): the loader skips both.
    if path is None or (getattr(module, "__file__", None) is None and not isinstance(path, list)):
        return None
    return path


def list_files() -> Listing | None:
    """Every installed app's migration modules, none imported; None: ask the full path."""
    files: set[Key] = set()
    migrated: set[str] = set()
    for config in apps.get_app_configs():
        try:
            path = _package_path(config.label)
        except _Undecided:
            return None
        if path is None:
            continue
        migrated.add(config.label)  # even with an empty package, as for the loader
        files.update((config.label, name) for name in module_names(path))
    return Listing(frozenset(files), frozenset(migrated))


def module_names(path: Iterable[str]) -> set[str]:
    """The loader's names: ``pkgutil.iter_modules``, no packages, nothing starting _ or ~.

    A directory of plain ``.py`` files (and ``__pycache__``) is read with one ``scandir``:
    the same names, several times faster for thousands of files. Anything else there (a
    ``.pyc`` beside its source, a package, an extension module) goes through pkgutil itself.
    """
    names: set[str] = set()
    for directory in path:
        simple = _plain_sources(directory)
        if simple is None:
            names.update(
                name
                for _, name, is_pkg in pkgutil.iter_modules([directory])
                if not is_pkg and name[0] not in "_~"
            )
        else:
            names.update(simple)
    return names


def _plain_sources(directory: str) -> set[str] | None:
    names: set[str] = set()
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return None
    for entry in entries:
        stem, dot, suffix = entry.name.partition(".")
        if entry.name == "__pycache__" or (dot and suffix == "py" and entry.is_file()):
            if stem and stem[0] not in "_~" and entry.name != "__pycache__":
                names.add(stem)
        else:
            return None
    return names


def recorded(connection: BaseDatabaseWrapper) -> set[Key]:
    """What django_migrations holds (empty when the table does not exist yet)."""
    recorder = MigrationRecorder(connection)
    if not recorder.has_table():
        return set()
    # Names only: model instances for thousands of rows cost more than the rest of the check.
    return set(recorder.migration_qs.values_list("app", "name"))


UP_TO_DATE = "up_to_date"  # every file recorded, nothing recorded missing on disk
NEW_FILES = "new_files"  # some file not recorded: work, most likely (the graph says which)
UNDECIDED = "undecided"  # names cannot tell: the graph decides


def status(
    connection: BaseDatabaseWrapper, *, named: Iterable[str] = ()
) -> tuple[str, Listing | None]:
    """What the names tell (see the module's doc), and the listing they were read from.

    ``named``: the apps a target names (to their latest): each must have migrations, or the
    full path refuses the target.
    """
    if connection.vendor not in VENDORS:
        return UNDECIDED, None
    listing = list_files()
    if listing is None or not listing.files or not listing.apps.issuperset(named):
        return UNDECIDED, None
    applied = recorded(connection)
    if not listing.files <= applied:
        return NEW_FILES, listing
    # A recorded migration missing on disk: the full path reports it (migrations_unknown_applied).
    if any(key not in listing.files for key in applied if key[0] in listing.apps):
        return UNDECIDED, listing
    return UP_TO_DATE, listing


def up_to_date(connection: BaseDatabaseWrapper, *, named: Iterable[str] = ()) -> bool:
    """True only when no plan to the latest migrations can hold work."""
    return status(connection, named=named)[0] == UP_TO_DATE
