"""The lock analysis as one pipeline: collect (read only) -> parse -> judge against a catalog
snapshot -> refuse.

1. collect.py: each operation's SQL, written by Django's schema editor without running any of
   the project's code;
2. classify.py (alter.py, findings.py): each statement parsed by PostgreSQL's parser, classified;
3. catalog.py: one snapshot of the live tables the statements name; judge.py: every operation
   judged against it, in plan order;
4. gate.py: the plan refused when a high operation's table is over the row gate.
Stages 1 and 3 read the database inside one transaction that is READ ONLY and always rolled
back: the analysis never changes anything, whatever the project's code tries.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.db import transaction

from entrypoint.migrate.plan.risk import catalog
from entrypoint.migrate.plan.risk.classify import Statement, classify
from entrypoint.migrate.plan.risk.collect import OperationSQL, Plan, plan_sql
from entrypoint.migrate.plan.risk.judge import Judgement, judge, questions

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper


@contextmanager
def read_only(connection: BaseDatabaseWrapper) -> Iterator[None]:
    """A transaction that cannot write (SQLSTATE 25006 on any attempt), always rolled back."""
    if connection.in_atomic_block:
        raise RuntimeError("the lock analysis needs a transaction of its own (not inside one)")
    with transaction.atomic(using=connection.alias):
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION READ ONLY")
        try:
            yield
        finally:
            transaction.set_rollback(True, using=connection.alias)


def parse(operation: OperationSQL) -> list[Statement]:
    """Its statements, each parsed and classified; comments dropped."""
    found = [pair for sql in operation.statements for pair in classify(sql)]
    return [(sql, f) for sql, f in found if sql and not sql.startswith("--")]


def analyse(connection: BaseDatabaseWrapper, plan: Plan) -> list[list[Judgement]]:
    """Per step, per operation: what it locks, on how big a table, how risky, the safer form."""
    with read_only(connection):
        collected = plan_sql(connection, plan)
        parsed = [[(parse(op), tuple(op.unknown), op.idle) for op in step] for step in collected]
        snapshot = _snapshot(connection, [s for step in parsed for op, _, _ in step for s in op])
    judged = iter(judge([op for step in parsed for op in step], snapshot))
    return [[next(judged) for _ in step] for step in parsed]


def judge_sql(connection: Any, sql: str) -> Judgement:
    """SQL text judged as one operation, in the caller's (read-only) transaction: the tests."""
    statements = [(s, f) for s, f in classify(sql) if not s.startswith("--")]
    (judged,) = judge([(statements, (), None)], _snapshot(connection, statements))
    return judged


def _snapshot(connection: Any, statements: list[Statement]) -> catalog.Snapshot:
    relations, retyped, queries = questions(statements)
    return catalog.snapshot(connection, relations, retyped=retyped, queries=queries)
