"""The lock analysis checked against PostgreSQL itself, on a table of 200,000 analysed rows.

Each statement runs in a transaction that is held open: another session reads from pg_locks the
strongest mode it holds on each table; the table's filenode tells whether it was rewritten and
pg_stat_xact_user_tables whether it was scanned. Then it is rolled back.
"""

from __future__ import annotations

import psycopg
import pytest

from tests import risk_tables
from tests.risk_tables import ours, run_concurrently, run_held_open
from tests.services import Postgres

TABLES = risk_tables.TABLES
ROWS = risk_tables.ROWS


@pytest.fixture(scope="module")
def db(pg: Postgres) -> str:
    return risk_tables.create(pg)


CASES = risk_tables.CASES


@pytest.mark.parametrize(("sql", "risk"), CASES, ids=[c[0][:60] for c in CASES])
def test_each_statement_locks_what_postgresql_locks(db: str, sql: str, risk: str) -> None:
    judged, predicted = ours(db, sql)
    seen = run_held_open(db, sql)
    # A scan and a rewrite both read every row: PostgreSQL counts either as a sequential scan.
    assert {t: (s.lock, s.rewrote, s.scanned or s.rewrote) for t, s in predicted.items()} == {
        t: (s.lock, s.rewrote, s.scanned) for t, s in seen.items()
    }
    assert judged.risk == risk, judged
    assert all(e.rows is not None and e.bytes for e in judged.effects)


def test_create_index_concurrently_takes_share_update_exclusive(db: str) -> None:
    sql = 'CREATE INDEX CONCURRENTLY "i_concurrent" ON "big_item" ("count")'
    judged, predicted = ours(db, sql)
    seen = run_concurrently(db, sql)
    assert {t: s.lock for t, s in predicted.items()} == {t: s.lock for t, s in seen.items()}
    assert seen["big_item"].lock == "SHARE UPDATE EXCLUSIVE"
    assert judged.risk == "none"
    assert judged.advice == []


def test_sizes_are_the_live_tables(db: str) -> None:
    """reltuples of the analysed table; the planner's estimate for one never analysed."""
    judged, _ = ours(db, "CREATE INDEX ON big_item (owner_id); CREATE INDEX ON never_analysed (id)")
    item, never = judged.effects
    assert item.rows == ROWS
    with psycopg.connect(db, autocommit=True) as conn:
        total = conn.execute("SELECT pg_total_relation_size('big_item')").fetchone()
        reltuples = conn.execute(
            "SELECT reltuples FROM pg_class WHERE relname = 'never_analysed'"
        ).fetchone()
    assert total is not None
    assert item.bytes == total[0]
    assert reltuples == (-1,)  # never analysed: estimated from its pages
    assert never.rows is not None
    assert 2_500 < never.rows < 10_000, never.rows


def test_advice_names_the_safer_form(db: str) -> None:
    judged, _ = ours(db, "CREATE INDEX ON big_item (label)")
    assert any("AddIndexConcurrently" in a for a in judged.advice)
    judged, _ = ours(db, "ALTER TABLE big_item ALTER COLUMN label SET NOT NULL")
    assert any("NOT VALID" in a and "VALIDATE CONSTRAINT" in a for a in judged.advice)
    judged, _ = ours(db, "ALTER TABLE big_item ADD CONSTRAINT c CHECK (count > 0)")
    assert any("NOT VALID" in a for a in judged.advice)
    judged, _ = ours(db, "ALTER TABLE big_item ALTER COLUMN count TYPE bigint")
    assert any("new column" in a for a in judged.advice)


@pytest.mark.parametrize(
    ("sql", "needle"),
    [
        (
            "\\set ON_ERROR_STOP on\nALTER TABLE big_item ADD COLUMN x int",
            'syntax error at or near "\\"',
        ),
        ("ALTER TABLE big_item ADD COLUMN", "syntax error at end of input"),
        ("VACUUM FULL big_item", "VacuumStmt statements are not analysed"),
        ("DO $$ BEGIN PERFORM 1; END $$", "DoStmt statements are not analysed"),
    ],
)
def test_what_cannot_be_analysed_is_unknown_with_why(db: str, sql: str, needle: str) -> None:
    judged, _ = ours(db, sql)
    assert judged.risk == "unknown"
    assert any(needle in note for note in judged.notes), judged.notes


def test_the_culprit_is_the_table_a_high_statement_scans(db: str) -> None:
    """The gate weighs what blocks: not a bigger table that a non-blocking statement scans."""
    judged, _ = ours(
        db,
        "ALTER TABLE big_owner ADD CONSTRAINT positive CHECK (id > 0);"
        " ALTER TABLE big_item VALIDATE CONSTRAINT big_item_count_nonneg",
    )
    assert judged.risk == "high"
    culprit = judged.culprit()
    assert culprit is not None
    assert (culprit.table, culprit.rows) == ("big_owner", 10)
