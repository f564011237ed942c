"""The tables the risk tests judge statements against: 200,000 analysed rows, and the cases."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from entrypoint.migrate.risk import locks
from entrypoint.migrate.risk.judge import Judgement, judge_sql
from tests.services import Postgres

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
    ("LOCK TABLE big_owner IN SHARE MODE", "low"),
    # (TRUNCATE is left out: it swaps in a new, empty file, which the filenode check would take
    # for a rewrite; it takes ACCESS EXCLUSIVE briefly.)
]
