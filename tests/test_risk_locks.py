"""The lock analysis checked against PostgreSQL itself, on analysed tables of 50,000 rows.

Each statement runs in a transaction that is held open: another session reads from pg_locks the
strongest mode it holds on each table; the table's filenode tells whether it was rewritten and
pg_stat_xact_user_tables whether it was scanned. Then it is rolled back. The assertion is the
one that protects users: the analysis never reports less than what happened (a weaker lock, a
missed rewrite or scan, fewer rows than the table holds or the statement changed); where it
reports more, OVER lists the case and why.
"""

from __future__ import annotations

import psycopg
import pytest

from entrypoint.migrate.plan.risk import locks
from tests import risk_tables
from tests.risk_tables import OVER, Seen, ours, run_concurrently, run_held_open
from tests.services import Postgres

ROWS = risk_tables.ROWS
TABLES = risk_tables.TABLES
PARTITIONS = risk_tables.PARTITIONS
CASES = risk_tables.CASES


@pytest.fixture(scope="module")
def db(pg: Postgres) -> str:
    return risk_tables.create(pg)


@pytest.fixture(scope="module")
def counts(db: str) -> dict[str, int]:
    """Each table's rows, its partitions' or children's included, counted."""
    with psycopg.connect(db, autocommit=True) as conn:
        # A partitioned table's own (its partitions'); any other table's alone (ONLY).
        counted = [
            conn.execute(f"SELECT count(*) FROM {'' if t in PARTITIONS else 'ONLY'} {t}").fetchone()
            for t in TABLES
        ]
    return {t: int(c[0]) if c else 0 for t, c in zip(TABLES, counted, strict=True)}


def less(predicted: dict[str, Seen], seen: dict[str, Seen]) -> list[str]:
    """Where the analysis says less than PostgreSQL did."""
    problems = []
    for table, did in seen.items():
        said = predicted.get(table)
        if said is None:
            problems.append(f"{table}: {did.lock} not reported")
            continue
        if locks.ORDER.index(said.lock) < locks.ORDER.index(did.lock):
            problems.append(f"{table}: {said.lock} reported, {did.lock} taken")
        if did.rewrote and not said.rewrote:
            problems.append(f"{table}: rewritten, not reported")
        if did.scanned and not (said.scanned or said.rewrote):
            problems.append(f"{table}: scanned, not reported")
    return problems


@pytest.mark.parametrize(("sql", "risk"), CASES, ids=[c[0][:60] for c in CASES])
def test_never_less_than_postgresql_does(
    db: str, counts: dict[str, int], sql: str, risk: str
) -> None:
    judged, predicted = ours(db, sql)
    seen, changed = run_held_open(db, sql)
    assert less(predicted, seen) == []
    # The rows of what it rewrote or scanned: the table's (estimated from ANALYZE's sample), or
    # for a query that reads it by an index the rows it changes or locks (the planner's
    # estimate); a query's reads lock no row. 0.9: an estimate may fall a little short of the count.
    query = sql.split(maxsplit=1)[0].upper() in {"UPDATE", "DELETE", "SELECT", "INSERT", "WITH"}
    for table, seen_here in seen.items():
        read = seen_here.rewrote or seen_here.scanned
        if not read or (query and seen_here.lock == locks.ACCESS_SHARE):
            continue
        rows = predicted[table].rows
        wanted = min(changed, counts[table]) if query else counts[table]
        assert rows is not None, table
        assert rows >= 0.9 * wanted, (table, rows, wanted)
    # A scan and a rewrite both read every row: PostgreSQL counts either as a sequential scan.
    said = {t: (s.lock, s.rewrote, s.scanned or s.rewrote) for t, s in predicted.items()}
    did = {t: (s.lock, s.rewrote, s.scanned) for t, s in seen.items()}
    if sql in OVER:
        assert said != did, "no longer reports more than PostgreSQL does: drop it from OVER"
    else:
        assert said == did
    assert judged.risk == risk, judged


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
        ("VACUUM FULL", "VACUUM FULL without a table rewrites every table"),
        ("REINDEX DATABASE postgres", "REINDEX of a schema or database"),
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


def test_statements_are_cut_where_they_start_and_end(db: str) -> None:
    """pglast counts characters: text beyond ASCII shifts no later statement (it made every
    operation of a plan unknown, and let a later rewrite through the gate)."""
    first = "UPDATE big_owner SET name = 'é€ü' WHERE id = 1"
    second = "ALTER TABLE big_item ALTER COLUMN count TYPE bigint"
    judged, _ = ours(db, f"{first}; {second}")
    assert sorted({e.sql for e in judged.effects}) == sorted([first, second])
    assert judged.risk == "high"


def test_vacuum_full_is_judged_as_documented(db: str) -> None:
    """VACUUM cannot run in a transaction, so not in the oracle: PostgreSQL documents that FULL
    takes ACCESS EXCLUSIVE and writes a new copy of the table."""
    judged, predicted = ours(db, "VACUUM FULL big_item")
    assert predicted == {
        "big_item": Seen("ACCESS EXCLUSIVE", rewrote=True, scanned=False, rows=ROWS)
    }
    assert judged.risk == "high"
    judged, _ = ours(db, "VACUUM big_item")
    assert judged.risk == "none"
