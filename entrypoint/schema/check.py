"""The verdict on one alias, for ``--status``, and what a start does with it.

Problems, each naming its model, table and column:

- ``missing_table``: the model's table does not exist;
- ``missing_column``: a column of the model does not exist;
- ``not_null_without_default``: a column the model does not know is NOT NULL, with no
  default, identity or generation: every INSERT through the model fails (a table the code
  does not know at all is no problem: nothing here writes to it);
- ``type_mismatch`` (PostgreSQL): the model's type and the column's are of different families
  (``catalog``), where reads return what the field does not expect or writes fail.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from entrypoint import log
from entrypoint.errors import SchemaIncompatible
from entrypoint.schema import catalog
from entrypoint.schema.config import OFF, REFUSE
from entrypoint.schema.expected import ModelTable, expected, pinned

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

MAX_LOGGED = 20  # problems in one event; the count says how many there are
FIX = (
    "deploy the code whose migrations made this schema, or migrate the database to this "
    "code's (see docs/migrations.md, 'Rollbacks and the live schema'); "
    "ENTRYPOINT_SCHEMA_CHECK=warn starts anyway"
)


@dataclass(frozen=True)
class Problem:
    model: str
    table: str
    column: str | None
    problem: str
    detail: str | None = None

    def sentence(self) -> str:
        where = f"column {self.table}.{self.column}" if self.column else f"table {self.table}"
        what = {
            "missing_table": "does not exist",
            "missing_column": "does not exist",
            "not_null_without_default": "is NOT NULL without a default and unknown to this "
            "code: every INSERT through the model fails",
            "type_mismatch": f"does not have the model's type ({self.detail})",
        }[self.problem]
        return f"{self.model}: {where} {what}"


@dataclass(frozen=True)
class Verdict:
    models: int  # how many were compared
    problems: tuple[Problem, ...]

    @property
    def compatible(self) -> bool:
        return not self.problems


def verdict(connection: BaseDatabaseWrapper, *, skip: Collection[str] = ()) -> Verdict:
    """This code's models (but those of the apps in ``skip``) against ``connection``'s catalog.

    Raises ``catalog.Unsupported`` on an engine it cannot read, a DatabaseError if the catalog
    query fails."""
    models = expected(connection, skip=skip)
    types = {declared for m in models for declared in m.columns.values() if declared}
    live = catalog.read(connection, [m.table for m in models], types)
    found = [problem for model in models for problem in _compare(model, live)]
    return Verdict(len(models), tuple(sorted(found, key=lambda p: (p.model, p.column or ""))))


def _compare(model: ModelTable, live: catalog.Catalog) -> Iterator[Problem]:
    table = live.table(model.table)
    if table is None:
        yield Problem(model.label, model.table, None, "missing_table")
        return
    for name, declared in model.columns.items():
        column = table.get(live.fold(name))
        if column is None:
            yield Problem(model.label, model.table, name, "missing_column")
        elif live.mismatch(declared, column):
            detail = f"the model declares {declared}, the column is {column.type}"
            yield Problem(model.label, model.table, name, "type_mismatch", detail)
    known = {live.fold(name) for name in model.columns}
    for folded, column in table.items():
        if folded not in known and column.not_null and not column.default:
            yield Problem(model.label, model.table, column.name, "not_null_without_default")


Targets = Iterable[tuple[str, "str | None"]]  # ENTRYPOINT_MIGRATE_TARGETS


def report(connection: BaseDatabaseWrapper, *, targets: Targets) -> dict[str, Any]:
    """``--status``'s ``schema`` key (and ``schema_note`` when it could not be judged); the
    apps the targets pin are left out (``expected.pinned``)."""
    from django.db import DatabaseError  # noqa: PLC0415 - Django is set up by the caller

    skip = pinned(targets)
    try:
        result = verdict(connection, skip=skip)
    except (catalog.Unsupported, DatabaseError) as exc:
        return {"schema": None, "schema_note": log.scrub(str(exc).strip())[:300]}
    return {
        "schema": {
            "compatible": result.compatible,
            "models": result.models,
            "skipped_apps": sorted(skip),
            "problems": [asdict(problem) for problem in result.problems],
        }
    }


def enforce(aliases: Sequence[str], *, mode: str, targets: Targets) -> None:
    """At the end of the migrate step (or of a wait for migrations): log the verdict on each
    alias; with ``refuse``, raise SchemaIncompatible (78) on the first that is not compatible.
    The apps the targets pin are left out, as in ``report``."""
    if mode == OFF:
        return
    from django.db import DatabaseError, connections  # noqa: PLC0415

    skip = pinned(targets)
    for alias in aliases:
        events = log.get().bind(alias=alias, skipped_apps=sorted(skip))
        started = time.perf_counter()
        try:
            result = verdict(connections[alias], skip=skip)
        except catalog.Unsupported as exc:
            events.info("schema_check_skipped", reason=str(exc))
            continue
        except DatabaseError as exc:  # a check that cannot run judges nothing: the start goes on
            events.warning("schema_check_failed", error=log.scrub(str(exc).strip())[:300])
            continue
        elapsed = round(time.perf_counter() - started, 3)
        if result.compatible:
            events.info("schema_compatible", models=result.models, duration_s=elapsed)
            continue
        fields = {
            "problems": [asdict(p) for p in result.problems[:MAX_LOGGED]],
            "count": len(result.problems),
        }
        sentences = [problem.sentence() for problem in result.problems]
        if mode == REFUSE:
            raise SchemaIncompatible(alias, sentences, FIX, **fields)
        events.warning("schema_incompatible", hint=FIX, duration_s=elapsed, **fields)
