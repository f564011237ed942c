"""The tables the risk tests judge statements against: 200,000 analysed rows, and the cases."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import psycopg

from entrypoint.migrate.plan.risk import locks
from entrypoint.migrate.plan.risk.judge import Judgement, judge_sql
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


def create(pg: Postgres) -> str:
    """A fresh database holding the tables; its URL."""
    name = pg.create_database()
    with psycopg.connect(pg.url(name), autocommit=True) as conn:
        conn.execute(SETUP.encode())
    return pg.url(name)


@dataclass(frozen=True)
class Seen:
    """Per table: the strongest lock held, rewritten, scanned (predicted or observed)."""

    lock: str
    rewrote: bool
    scanned: bool


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
    return dict(rows.fetchall())


def run_held_open(url: str, sql: str) -> dict[str, Seen]:
    """The statement in an open transaction, observed from outside, then rolled back."""
    with psycopg.connect(url) as conn:
        before = filenodes(conn)
        conn.execute(sql.encode())
        after = filenodes(conn)
        scans: dict[str, int] = dict(
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
            except BaseException as exc:  # reported by the test
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
        (
            'ALTER TABLE "big_item" ADD COLUMN "owner2_id" integer NULL CONSTRAINT "f2" '
            'REFERENCES "big_owner"("id") DEFERRABLE INITIALLY DEFERRED'
        ),
        "low",  # a new column is all NULL: PostgreSQL skips the foreign key's check
    ),
    (
        "ALTER TABLE big_item ADD CONSTRAINT f FOREIGN KEY (owner_id) REFERENCES big_owner (id)",
        "high",
    ),
    (
        (
            "ALTER TABLE big_item ADD CONSTRAINT f FOREIGN KEY (owner_id) "
            "REFERENCES big_owner (id) NOT VALID"
        ),
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
    ("ALTER TABLE big_item ADD COLUMN serial_id serial", "high"),
    ("ALTER TABLE big_item ADD CONSTRAINT u UNIQUE (id, count)", "high"),
    ("ALTER TABLE big_item SET (fillfactor = 70)", "none"),
    ("ALTER TABLE big_item RENAME COLUMN label TO title", "low"),
    ("ALTER TABLE big_item DROP COLUMN label", "low"),
    ("UPDATE big_item SET label = 'x' WHERE id < 10", "low"),
    ("UPDATE big_item SET label = 'x'", "high"),
    ("INSERT INTO big_owner VALUES (11, 'new')", "none"),
    ("CREATE TABLE fresh (id integer, owner_id integer REFERENCES big_owner (id))", "low"),
    # A new table's own keys and checks lock nothing the app uses (every CreateModel has a key).
    ("CREATE TABLE keyed (id integer PRIMARY KEY, code varchar(5) UNIQUE, CHECK (id > 0))", "none"),
    ("LOCK TABLE big_owner IN SHARE MODE", "low"),
    # (TRUNCATE is left out: it swaps in a new, empty file, which the filenode check would take
    # for a rewrite; it takes ACCESS EXCLUSIVE briefly.)
]
