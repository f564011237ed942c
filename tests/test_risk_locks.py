"""The lock analysis checked against PostgreSQL itself, on a table of 200,000 analysed rows.

Each statement runs in a transaction that is held open: another session reads from pg_locks the
strongest mode it holds on each table; the table's filenode tells whether it was rewritten and
pg_stat_xact_user_tables whether it was scanned. Then it is rolled back.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from entrypoint.migrate.risk import locks
from entrypoint.migrate.risk.judge import Judgement, judge_sql
from tests.services import Postgres
from tests.watch import wait_until

ROWS = 200_000
TABLES = ("big_item", "big_owner")
SETUP = f"""
CREATE TABLE big_owner (id integer PRIMARY KEY, name varchar(50) NOT NULL);
INSERT INTO big_owner SELECT g, 'owner ' || g FROM generate_series(1, 10) g;
CREATE TABLE big_item (id integer PRIMARY KEY, count integer NOT NULL, label varchar(50) NULL,
                       owner_id integer NULL, amount numeric(8, 2) NULL);
INSERT INTO big_item SELECT g, g, 'item ' || g, 1 + g % 10, g FROM generate_series(1, {ROWS}) g;
ALTER TABLE big_item ADD CONSTRAINT big_item_count_nonneg CHECK (count >= 0) NOT VALID;
CREATE TABLE never_analysed (id integer);
INSERT INTO never_analysed SELECT generate_series(1, 5000);
ANALYZE big_item;
ANALYZE big_owner;
"""


@dataclass(frozen=True)
class Seen:
    """What PostgreSQL did, per table: strongest lock held, rewritten, scanned."""

    lock: str
    rewrote: bool
    scanned: bool


@pytest.fixture(scope="module")
def db(pg: Postgres) -> str:
    name = pg.create_database()
    with psycopg.connect(pg.url(name), autocommit=True) as conn:
        conn.execute(SETUP.encode())
    return pg.url(name)


@pytest.fixture
def conn(db: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db, autocommit=True) as c:
        yield c


def held(url: str, pid: int) -> dict[str, str]:
    """From another session: the strongest mode ``pid`` holds on each of our tables."""
    with psycopg.connect(url, autocommit=True) as other:
        rows = other.execute(
            "SELECT c.relname, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE l.pid = %s AND l.granted AND c.relname = ANY(%s)",
            [pid, list(TABLES)],
        ).fetchall()
    found: dict[str, list[str]] = {}
    for table, mode in rows:
        found.setdefault(table, []).append(locks.PG_LOCKS_NAMES[mode])
    return {table: locks.strongest(modes) for table, modes in found.items()}


def filenodes(conn: psycopg.Connection) -> dict[str, int]:
    rows = conn.execute(
        "SELECT relname, pg_relation_filenode(oid) FROM pg_class WHERE relname = ANY(%s)",
        [list(TABLES)],
    )
    return dict(rows.fetchall())  # type: ignore[arg-type]


def run_held_open(url: str, sql: str) -> dict[str, Seen]:
    """The statement in an open transaction, observed from outside, then rolled back."""
    with psycopg.connect(url) as conn:
        before = filenodes(conn)
        conn.execute(sql.encode())
        after = filenodes(conn)
        scans = dict(
            conn.execute(
                "SELECT relname, coalesce(seq_scan, 0) FROM pg_stat_xact_user_tables "
                "WHERE relname = ANY(%s)",
                [list(TABLES)],
            ).fetchall()
        )
        modes = held(url, conn.info.backend_pid)
        conn.rollback()
    return {t: Seen(mode, before[t] != after[t], scans.get(t, 0) > 0) for t, mode in modes.items()}


def run_concurrently(url: str, sql: str) -> dict[str, Seen]:
    """CONCURRENTLY cannot run in a transaction: an older snapshot elsewhere keeps it waiting
    (holding its lock) while pg_locks is read."""
    with psycopg.connect(url) as snapshot, psycopg.connect(url, autocommit=True) as runner:
        snapshot.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        snapshot.execute("SELECT count(*) FROM big_owner")
        pid = runner.info.backend_pid
        errors: list[BaseException] = []

        def build() -> None:
            try:
                runner.execute(sql.encode())
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)

        worker = threading.Thread(target=build)
        worker.start()
        try:
            wait_until(lambda: bool(held(url, pid)) and waiting(url, pid))
            modes = held(url, pid)
        finally:
            snapshot.rollback()
            worker.join(30)
        assert not errors, errors
    return {t: Seen(mode, rewrote=False, scanned=True) for t, mode in modes.items()}


def waiting(url: str, pid: int) -> bool:
    with psycopg.connect(url, autocommit=True) as other:
        row = other.execute(
            "SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted", [pid]
        ).fetchone()
    return bool(row and row[0])


def ours(url: str, sql: str) -> tuple[Judgement, dict[str, Seen]]:
    with psycopg.connect(url, autocommit=True) as conn:
        judged = judge_sql(conn, sql)  # type: ignore[arg-type]  # a DB-API connection does
    effects: dict[str, list[tuple[str, bool, bool]]] = {}
    for e in judged.effects:
        effects.setdefault(e.table, []).append((e.lock, e.rewrites, e.scans))
    return judged, {
        table: Seen(
            locks.strongest([lock for lock, _, _ in found]),
            any(r for _, r, _ in found),
            any(s for _, _, s in found),
        )
        for table, found in effects.items()
    }


# (SQL, expected risk): the lock, rewrite and scan of each table are compared with PostgreSQL's.
CASES = [
    ('CREATE INDEX "i" ON "big_item" ("label")', "high"),
    ('ALTER TABLE "big_item" ALTER COLUMN "count" TYPE bigint USING "count"::bigint', "high"),
    ('ALTER TABLE "big_item" ADD COLUMN "note" text NULL', "low"),
    ('ALTER TABLE "big_item" ALTER COLUMN "label" SET NOT NULL', "high"),
    (
        'ALTER TABLE "big_item" ADD COLUMN "owner2_id" integer NULL CONSTRAINT "f2" '
        'REFERENCES "big_owner"("id") DEFERRABLE INITIALLY DEFERRED',
        "low",  # a new column is all NULL: PostgreSQL skips the foreign key's check
    ),
    (
        "ALTER TABLE big_item ADD CONSTRAINT f FOREIGN KEY (owner_id) REFERENCES big_owner (id)",
        "high",
    ),
    (
        "ALTER TABLE big_item ADD CONSTRAINT f FOREIGN KEY (owner_id) REFERENCES big_owner (id)"
        " NOT VALID",
        "low",
    ),
    ("ALTER TABLE big_item ADD CONSTRAINT c CHECK (count < 10000000)", "high"),
    ("ALTER TABLE big_item ADD CONSTRAINT c CHECK (count < 10000000) NOT VALID", "low"),
    ("ALTER TABLE big_item VALIDATE CONSTRAINT big_item_count_nonneg", "none"),
    ("ALTER TABLE big_item ALTER COLUMN label TYPE varchar(100)", "low"),
    ("ALTER TABLE big_item ALTER COLUMN label TYPE text", "low"),
    ("ALTER TABLE big_item ALTER COLUMN label TYPE varchar(20)", "high"),
    ("ALTER TABLE big_item ALTER COLUMN amount TYPE numeric(12, 2)", "low"),
    ("ALTER TABLE big_item ALTER COLUMN amount TYPE numeric(12, 3)", "high"),
    ("ALTER TABLE big_item ADD COLUMN stamp timestamptz DEFAULT now()", "low"),
    ("ALTER TABLE big_item ADD COLUMN stamp timestamptz DEFAULT clock_timestamp()", "high"),
    ("ALTER TABLE big_item ADD COLUMN flag boolean DEFAULT false NOT NULL", "low"),
    ("ALTER TABLE big_item ADD CONSTRAINT u UNIQUE (id, count)", "high"),
    ("ALTER TABLE big_item SET (fillfactor = 70)", "none"),
    ("ALTER TABLE big_item RENAME COLUMN label TO title", "low"),
    ("ALTER TABLE big_item DROP COLUMN label", "low"),
    ("UPDATE big_item SET label = 'x' WHERE id < 10", "low"),
    ("UPDATE big_item SET label = 'x'", "high"),
    ("INSERT INTO big_owner VALUES (11, 'new')", "none"),
    ("CREATE TABLE fresh (id integer, owner_id integer REFERENCES big_owner (id))", "low"),
    ("LOCK TABLE big_owner IN SHARE MODE", "low"),
    # (TRUNCATE is left out: it swaps in a new, empty file, which the filenode check would take
    # for a rewrite; it takes ACCESS EXCLUSIVE briefly.)
]


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
