"""The tables the risk tests judge statements against (analysed, 50,000 rows), and the cases."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import psycopg

from entrypoint.migrate.plan.risk import locks
from entrypoint.migrate.plan.risk.judge import Judgement
from entrypoint.migrate.plan.risk.pipeline import judge_sql
from tests.services import Postgres
from tests.watch import wait_until

ROWS = 50_000
SETUP = f"""
CREATE TABLE big_owner (id integer PRIMARY KEY, name varchar(50) NOT NULL);
INSERT INTO big_owner SELECT g, 'owner ' || g FROM generate_series(1, 10) g;
CREATE TABLE big_item (id integer PRIMARY KEY, count integer NOT NULL, label varchar(50) NULL,
                       owner_id integer NULL, amount numeric(8, 2) NULL, tag varchar(30),
                       stamp timestamp(6), moment time(3), span interval, flags bit(8),
                       mask varbit(20), code char(5), note text);
INSERT INTO big_item SELECT g, g, 'item ' || g, 1 + g % 10, g, 'tag ' || g, now(), now(),
                            '1 day', B'10101010', B'101', 'abc', 'note'
                     FROM generate_series(1, {ROWS}) g;
ALTER TABLE big_item ADD CONSTRAINT big_item_count_nonneg CHECK (count >= 0) NOT VALID;
CREATE INDEX big_item_tag ON big_item (tag);
CREATE TABLE big_ref (id integer PRIMARY KEY, owner_id integer REFERENCES big_owner (id),
                      word varchar(20) CHECK (length(word) < 30));
INSERT INTO big_ref SELECT g, 1 + g % 10, 'w' || g FROM generate_series(1, 1000) g;
CREATE TABLE big_part (id integer NOT NULL, v integer) PARTITION BY RANGE (id);
CREATE TABLE big_part_1 PARTITION OF big_part FOR VALUES FROM (1) TO (25001);
CREATE TABLE big_part_2 PARTITION OF big_part FOR VALUES FROM (25001) TO (50001);
CREATE TABLE big_part_default PARTITION OF big_part DEFAULT;
INSERT INTO big_part SELECT g, g FROM generate_series(1, {ROWS}) g;
INSERT INTO big_part VALUES (90000, 1);
CREATE TABLE big_loose (id integer NOT NULL, v integer);
INSERT INTO big_loose SELECT g, g FROM generate_series(50001, 60000) g;
CREATE TABLE big_base (id integer, v integer);
CREATE TABLE big_kid (extra integer) INHERITS (big_base);
INSERT INTO big_base SELECT g, g FROM generate_series(1, 2000) g;
INSERT INTO big_kid SELECT g, g, g FROM generate_series(1, 3000) g;
CREATE MATERIALIZED VIEW big_mv AS SELECT id, v FROM big_loose;
CREATE UNIQUE INDEX big_mv_id ON big_mv (id);
CREATE TABLE never_analysed (id integer) WITH (autovacuum_enabled = false);  -- stays unanalysed
INSERT INTO never_analysed SELECT generate_series(1, 5000);
ANALYZE big_owner; ANALYZE big_item; ANALYZE big_ref; ANALYZE big_part_1; ANALYZE big_part_2;
ANALYZE big_part_default; ANALYZE big_loose; ANALYZE big_base; ANALYZE big_kid; ANALYZE big_mv;
"""
TABLES = (
    "big_item", "big_owner", "big_ref", "big_part", "big_part_1", "big_part_2",
    "big_part_default", "big_loose", "big_base", "big_kid", "big_mv",
)  # fmt: skip
PARTITIONS = {"big_part": ("big_part_1", "big_part_2", "big_part_default")}


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
    rows: int | None = None  # predicted: the rows reported


def held(url: str, pid: int) -> dict[int, str]:
    """From another session: the strongest mode ``pid`` holds on each relation, by oid."""
    with psycopg.connect(url, autocommit=True) as other:
        rows = other.execute(
            "SELECT l.relation::bigint, l.mode FROM pg_locks l "
            "WHERE l.pid = %s AND l.granted AND l.locktype = 'relation'",
            [pid],
        ).fetchall()
    found: dict[int, list[str]] = {}
    for oid, mode in rows:
        found.setdefault(oid, []).append(locks.PG_LOCKS_NAMES[mode])
    return {oid: locks.strongest(modes) for oid, modes in found.items()}


def tracked(conn: psycopg.Connection) -> dict[int, tuple[str, int]]:
    """Our tables by oid: their name and filenode."""
    rows = conn.execute(
        "SELECT oid::bigint, relname, coalesce(pg_relation_filenode(oid), 0) FROM pg_class "
        "WHERE relname = ANY(%s)",
        [list(TABLES)],
    )
    return {oid: (name, node) for oid, name, node in rows.fetchall()}


def run_held_open(url: str, sql: str) -> tuple[dict[str, Seen], int]:
    """The statement in an open transaction, observed from outside, then rolled back; and the
    rows it changed (its row count)."""
    with psycopg.connect(url) as conn:
        before = tracked(conn)
        changed = conn.execute(sql.encode()).rowcount
        after = tracked(conn)
        scans: dict[int, int] = dict(
            conn.execute(
                "SELECT relid::bigint, coalesce(seq_scan, 0) FROM pg_stat_xact_user_tables"
            ).fetchall()
        )
        modes = held(url, conn.info.backend_pid)
        conn.rollback()
    seen = {
        name: Seen(
            modes[oid],
            oid in after and after[oid][1] != node,
            scans.get(oid, 0) > 0,
        )
        for oid, (name, node) in before.items()
        if oid in modes
    }
    for parent, parts in PARTITIONS.items():
        # A partitioned table's rows are its partitions': read with them when the statement
        # acted on them as on the parent (the same mode).
        if parent in seen:
            done = [seen[p] for p in parts if p in seen and seen[p].lock == seen[parent].lock]
            rewrote, scanned = any(s.rewrote for s in done), any(s.scanned for s in done)
            seen[parent] = Seen(seen[parent].lock, rewrote, scanned)
    return seen, changed


def run_concurrently(url: str, sql: str) -> dict[str, Seen]:
    """CONCURRENTLY cannot run in a transaction: an older snapshot elsewhere keeps it waiting
    (holding its lock) while pg_locks is read."""
    with psycopg.connect(url) as snapshot, psycopg.connect(url, autocommit=True) as runner:
        snapshot.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        snapshot.execute("SELECT count(*) FROM big_owner")
        names = {oid: name for oid, (name, _) in tracked(snapshot).items()}
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
    return {
        names[oid]: Seen(mode, rewrote=False, scanned=True)
        for oid, mode in modes.items()
        if oid in names
    }


def waiting(url: str, pid: int) -> bool:
    with psycopg.connect(url, autocommit=True) as other:
        row = other.execute(
            "SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted", [pid]
        ).fetchone()
    return bool(row and row[0])


def ours(url: str, sql: str) -> tuple[Judgement, dict[str, Seen]]:
    """The analysis of ``sql`` in a read-only transaction, and per table what it predicts."""
    with psycopg.connect(url) as conn:
        conn.execute("SET TRANSACTION READ ONLY")
        judged = judge_sql(conn, sql)
        conn.rollback()
    effects: dict[str, list[tuple[str, bool, bool, int | None]]] = {}
    for e in judged.effects:
        effects.setdefault(e.table, []).append((e.lock, e.rewrites, e.scans, e.rows))
    return judged, {
        table: Seen(
            locks.strongest([lock for lock, _, _, _ in found]),
            any(r for _, r, _, _ in found),
            any(s for _, _, s, _ in found),
            max((n for _, _, _, n in found if n is not None), default=None),
        )
        for table, found in effects.items()
    }


# (SQL, expected risk): the lock, rewrite and scan of each table are compared with PostgreSQL's.
# The first ones are also compared with squawk's verdicts (tests/test_risk_squawk.py).
BASIC = [
    ('CREATE INDEX "i" ON "big_item" ("label")', "high"),
    ('ALTER TABLE "big_item" ALTER COLUMN "count" TYPE bigint USING "count"::bigint', "high"),
    ('ALTER TABLE "big_item" ADD COLUMN "note2" text NULL', "low"),
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
    ("ALTER TABLE big_item ADD COLUMN stamp2 timestamptz DEFAULT now()", "low"),
    ("ALTER TABLE big_item ADD COLUMN stamp2 timestamptz DEFAULT clock_timestamp()", "high"),
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
]
# Each case of issue 26, every type family's modifiers, partitions, collations, DML, and more
# ALTER TABLE forms Django's schema editor writes, each with its safe form where there is one.
MORE = [
    ("ALTER TABLE big_item ALTER COLUMN stamp TYPE timestamp(2)", "high"),
    ("ALTER TABLE big_item ALTER COLUMN stamp TYPE timestamp", "low"),
    ("ALTER TABLE big_item ALTER COLUMN stamp TYPE timestamp(6)", "low"),
    ("ALTER TABLE big_item ALTER COLUMN moment TYPE time(1)", "high"),
    ("ALTER TABLE big_item ALTER COLUMN moment TYPE time(5)", "low"),
    ("ALTER TABLE big_item ALTER COLUMN span TYPE interval(2)", "high"),
    ("ALTER TABLE big_item ALTER COLUMN mask TYPE varbit(10)", "high"),
    ("ALTER TABLE big_item ALTER COLUMN mask TYPE varbit(30)", "low"),
    ("ALTER TABLE big_item ALTER COLUMN flags TYPE varbit", "low"),
    ("ALTER TABLE big_item ALTER COLUMN code TYPE char(10)", "high"),
    ("ALTER TABLE big_item ALTER COLUMN code TYPE varchar(10)", "high"),
    ("ALTER TABLE big_item ALTER COLUMN amount TYPE numeric", "low"),
    ("ALTER TABLE big_item ALTER COLUMN amount TYPE numeric(7, 2)", "high"),
    ("ALTER TABLE big_item ALTER COLUMN note TYPE varchar(10)", "high"),
    ("ALTER TABLE big_item ALTER COLUMN label TYPE text USING upper(label)", "high"),
    ('ALTER TABLE big_item ALTER COLUMN tag TYPE varchar(30) COLLATE "C"', "high"),
    ("ALTER TABLE big_item ALTER COLUMN tag TYPE varchar(60)", "low"),
    ('ALTER TABLE big_item ALTER COLUMN label TYPE varchar(80) COLLATE "C"', "low"),
    ("ALTER TABLE big_ref ALTER COLUMN word TYPE varchar(25)", "high"),  # its CHECK re-checked
    ("ALTER TABLE big_ref ALTER COLUMN owner_id TYPE bigint", "high"),
    ("ALTER TABLE big_owner ALTER COLUMN id TYPE bigint", "high"),  # big_ref's key re-checked
    ("CREATE INDEX ON big_part (v)", "high"),
    ("CREATE INDEX ON ONLY big_part (v)", "low"),
    ("ALTER TABLE big_part ADD COLUMN r float DEFAULT random()", "high"),
    ("ALTER TABLE big_part ALTER COLUMN v SET NOT NULL", "high"),
    ("ALTER TABLE big_part ADD COLUMN w integer", "low"),
    ("ALTER TABLE big_part ATTACH PARTITION big_loose FOR VALUES FROM (50001) TO (60001)", "high"),
    ("ALTER TABLE big_part DETACH PARTITION big_part_2", "low"),
    ("CREATE INDEX ON big_base (v)", "high"),
    ("ALTER TABLE big_base ADD COLUMN w integer", "low"),
    ("CLUSTER big_item USING big_item_pkey", "high"),
    ("REINDEX TABLE big_item", "high"),
    ("REINDEX INDEX big_item_tag", "high"),
    ("REFRESH MATERIALIZED VIEW big_mv", "high"),
    ("REFRESH MATERIALIZED VIEW CONCURRENTLY big_mv", "high"),
    ("UPDATE big_item SET label = 'y' WHERE id > 0", "high"),
    ("DELETE FROM big_item WHERE count % 2 = 0", "high"),
    ("SELECT id FROM big_item WHERE id < 10 FOR UPDATE", "low"),
    ("SELECT id FROM big_item WHERE label LIKE 'item 1%' FOR UPDATE", "high"),
    ("UPDATE big_part SET v = 1 WHERE v < 100", "high"),
    ("INSERT INTO big_loose SELECT id, count FROM big_item", "none"),
    ("UPDATE big_ref SET word = 'z' FROM big_owner WHERE big_owner.id = big_ref.owner_id", "high"),
    ("WITH gone AS (DELETE FROM big_loose WHERE v < 50100 RETURNING id) SELECT 1", "high"),
    ("SELECT count(*) FROM big_item", "none"),
    ("ALTER TABLE big_item ALTER COLUMN label SET DEFAULT 'x'", "low"),
    ("ALTER TABLE big_item ALTER COLUMN label DROP DEFAULT", "low"),
    ("ALTER TABLE big_item ALTER COLUMN label DROP NOT NULL", "low"),
    ("ALTER TABLE big_item DROP CONSTRAINT big_item_count_nonneg", "low"),
    ("ALTER TABLE big_ref DROP CONSTRAINT big_ref_owner_id_fkey", "low"),
    ("ALTER TABLE big_ref DROP COLUMN owner_id", "low"),
    ("ALTER TABLE big_item ADD COLUMN ident bigint GENERATED BY DEFAULT AS IDENTITY", "high"),
    ("ALTER TABLE big_item ADD COLUMN twice integer GENERATED ALWAYS AS (id * 2) STORED", "high"),
    ("ALTER TABLE big_item ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY", "low"),
    ("ALTER TABLE big_item ALTER COLUMN label SET STATISTICS 200", "none"),
    ("ALTER TABLE big_item SET UNLOGGED", "high"),
    ("ALTER TABLE big_item CLUSTER ON big_item_pkey", "none"),
    ("ALTER TABLE big_item DISABLE TRIGGER ALL", "low"),
    ("COMMENT ON COLUMN big_item.label IS 'shown'", "none"),
    ("CREATE UNIQUE INDEX big_item_u ON big_item (id, tag)", "high"),
    ("DROP INDEX big_item_tag", "low"),
    ("ALTER TABLE big_item RENAME TO big_item_renamed", "low"),
    ("DROP TABLE big_ref", "low"),
    ("ALTER TABLE big_item ADD CONSTRAINT ex EXCLUDE USING btree (id WITH =)", "high"),
    ("CREATE TABLE IF NOT EXISTS big_owner (id integer)", "none"),
    ("ALTER TABLE big_item ALTER COLUMN flags TYPE varbit(16)", "high"),
    ("ALTER INDEX big_item_tag RENAME TO big_item_tag2", "none"),
    # Two statements, the first with text beyond ASCII: each is cut where it starts and ends.
    (
        (
            "UPDATE big_owner SET name = 'é€ü' WHERE id = 1; "
            "ALTER TABLE big_item ALTER COLUMN count TYPE bigint"
        ),
        "high",
    ),
    ("ALTER TABLE big_ref VALIDATE CONSTRAINT big_ref_word_check", "none"),
]
CASES = BASIC + MORE
# Where the analysis reports more than PostgreSQL did, and why (the test checks that it does).
OVER = {
    "ALTER INDEX big_item_tag RENAME TO big_item_tag2": (
        "the SHARE UPDATE EXCLUSIVE lock on the index is reported on its table"
    ),
    "ALTER TABLE big_ref VALIDATE CONSTRAINT big_ref_word_check": (
        "a constraint that is valid already is not checked again: reported as a scan"
    ),
}
