"""What each pending migration will lock, in ``--plan`` and in the migrate step (issue 18).

tests/projects/big against big_item with 200,000 analysed rows: AddIndex, AlterField int to
bigint, a nullable AddField, AlterField null to not null, a foreign key AddField,
AddIndexConcurrently (atomic = False), a RunSQL of two statements and a RunPython.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from jsonschema import Draft202012Validator

from entrypoint.migrate.plan.risk import locks
from tests.cli import Result, migrate_env, run_cli
from tests.risk_tables import run_concurrently, run_held_open
from tests.services import Postgres
from tests.watch import Running, is_event, lock_held, recorded

VALIDATOR = Draft202012Validator(
    json.loads((Path(__file__).parent / "plan.schema.json").read_text())
)
ROWS = 200_000
GATE = "ENTRYPOINT_MIGRATE_MAX_BLOCKING_ROWS"
BIG = {"TESTPROJ_BIG": "1"}
# (migration, operation type): risk, and per statement each table's (lock, rewrites, scans)
EXPECTED = {
    ("0002_label_index", "AddIndex"): ("high", [("big_item", "SHARE", False, True)]),
    ("0003_count_bigint", "AlterField"): (
        "high",
        [("big_item", "ACCESS EXCLUSIVE", True, False)],
    ),
    ("0004_note", "AddField"): ("low", [("big_item", "ACCESS EXCLUSIVE", False, False)]),
    ("0005_label_not_null", "AlterField"): (
        "high",
        [("big_item", "ACCESS EXCLUSIVE", False, True)],
    ),
    ("0006_owner", "AddField"): (
        "high",  # the column is all NULL (no check), but its index is built under SHARE
        [
            ("big_item", "ACCESS EXCLUSIVE", False, False),
            ("big_owner", "SHARE ROW EXCLUSIVE", False, False),
            ("big_item", "SHARE", False, True),
        ],
    ),
    ("0007_note_index", "AddIndexConcurrently"): (
        "none",
        [("big_item", "SHARE UPDATE EXCLUSIVE", False, True)],
    ),
    ("0008_sql", "RunSQL"): (
        "high",
        [
            # The planner cannot plan it before 0004 adds note: taken as reading every row.
            ("big_item", "ROW EXCLUSIVE", False, True),
            ("big_item", "ACCESS EXCLUSIVE", False, True),
        ],
    ),
    ("0009_backfill", "RunPython"): ("unknown", []),
}


def fill(url: str, rows: int = ROWS) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO big_owner (name) SELECT 'owner' FROM generate_series(1, 3)")
        conn.execute(
            "INSERT INTO big_item (count, label) SELECT g, 'item ' || g "
            "FROM generate_series(1, %s) g",
            [rows],
        )
        conn.execute("ANALYZE big_item")
        conn.execute("ANALYZE big_owner")


@pytest.fixture(scope="module")
def template(pg: Postgres) -> str:
    """big at 0001 (every other app at its latest), big_item filled and analysed."""
    name = pg.create_database()
    result = run_cli(env=migrate_env(pg.url(name), ENTRYPOINT_MIGRATE_TARGETS="big 0001", **BIG))
    assert result.returncode == 0, result.stderr
    fill(pg.url(name))
    return name


@pytest.fixture
def db(pg: Postgres, template: str) -> str:
    """A copy of the template for one test."""
    return pg.create_database(template)


def plan(url: str, **extra: str) -> tuple[Result, dict[str, Any]]:
    result = run_cli("--plan", env=migrate_env(url, **BIG, **extra), timeout=60)
    doc = json.loads(result.stdout)
    VALIDATOR.validate(doc)
    return result, doc


def big_operations(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (step["name"], op["type"]): op
        for step in doc["databases"]["default"]["plan"]
        if step["app"] == "big"
        for op in step["operations"]
    }


def test_plan_reports_what_each_operation_locks(pg: Postgres, db: str) -> None:
    before = recorded(pg, db)
    result, doc = plan(pg.url(db))
    assert result.returncode == 0, result.stderr
    found = big_operations(doc)
    assert {key: (op["risk"], [(e["table"], e["lock"], e["rewrites"], e["scans"])
                               for e in op["effects"]]) for key, op in found.items()} == EXPECTED  # fmt: skip
    for op in found.values():
        for effect in op["effects"]:
            assert effect["rows"] == (ROWS if effect["table"] == "big_item" else 3), effect
            assert effect["bytes"] > 0
    index = found["0002_label_index", "AddIndex"]
    assert any("AddIndexConcurrently" in a for a in index["advice"])
    assert any("NOT VALID" in a for a in found["0005_label_not_null", "AlterField"]["advice"])
    assert found["0007_note_index", "AddIndexConcurrently"]["advice"] == []
    assert "RunPython" in found["0009_backfill", "RunPython"]["note"]
    sql = [e["sql"] for e in found["0008_sql", "RunSQL"]["effects"]]
    assert sql == [
        "UPDATE big_item SET note = 'first' WHERE id < 10",
        "ALTER TABLE big_item ADD CONSTRAINT big_item_count_positive CHECK (count >= 0)",
    ]
    assert recorded(pg, db) == before  # --plan wrote nothing


def test_each_reported_lock_is_what_postgresql_takes(pg: Postgres, db: str) -> None:
    """Replay the plan's statements in order on the database: each one first in a transaction
    held open while pg_locks is read from another session, then for real."""
    url = pg.url(db)
    _, doc = plan(url)
    statements: list[tuple[str, dict[str, str]]] = []
    for op in big_operations(doc).values():
        for effect in op["effects"]:
            if not statements or statements[-1][0] != effect["sql"]:
                statements.append((effect["sql"], {}))
            modes = statements[-1][1]
            held = modes.get(effect["table"])
            lock = effect["lock"]
            modes[effect["table"]] = lock if held is None else locks.strongest([held, lock])
    assert len(statements) == 9
    for sql, predicted in statements:
        concurrent = "CONCURRENTLY" in sql
        seen = run_concurrently(url, sql) if concurrent else run_held_open(url, sql)[0]
        assert {t: s.lock for t, s in seen.items()} == predicted, sql
        if not concurrent:  # run_concurrently has let it finish
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(sql.encode())


def test_new_tables_are_no_risk(pg: Postgres) -> None:
    """On an empty database every CreateModel builds its keys on a table nobody uses yet, and
    what follows works on tables the plan created: the plan says none, migrating warns of
    nothing. Django's schema operations are not written out (what a first deploy would pay
    for: the project state rendered for each), only their tables named."""
    url = pg.url(pg.create_database())
    _, doc = plan(url)
    ops = [op for step in doc["databases"]["default"]["plan"] for op in step["operations"]]
    created = [op for op in ops if op["type"] == "CreateModel"]
    assert len(created) > 5
    assert {op["risk"] for op in created} == {"none"}, created
    schema = [op for op in ops if op["type"] in {"CreateModel", "AddField", "AlterField"}]
    assert all(op["effects"] == [] for op in schema), schema
    assert all("its tables are new in this plan" in op["note"] for op in schema), schema
    item = next(op for op in created if op["description"] == "Create model Item")
    assert "big_item" in item["note"]
    assert {op["risk"] for op in ops if op["type"] == "RunSQL"} == {"none"}  # on new tables
    result = run_cli(env=migrate_env(url, **BIG))
    assert result.returncode == 0, result.stderr
    assert result.named("migration_risk") == []


def test_gate_refuses_the_plan_naming_the_culprit(pg: Postgres, db: str) -> None:
    before = recorded(pg, db)
    result = run_cli(env=migrate_env(pg.url(db), **BIG, **{GATE: "100000"}))
    assert result.returncode == 78, result.stderr
    refused = result.last()
    assert refused["event"] == "migration_plan_refused"
    error = refused["error"]
    for needle in ("big.0002_label_index", "AddIndex", "big_item", "200000", "SHARE",
                   "AddIndexConcurrently", GATE):  # fmt: skip
        assert needle in error, error
    for culprit in ("big.0003_count_bigint", "big.0005_label_not_null", "big.0006_owner",
                    "big.0008_sql"):  # fmt: skip
        assert culprit in error
    assert "big.0004_note" not in error  # low: brief
    assert "big.0007_note_index" not in error  # none: CONCURRENTLY
    assert not result.named("migration_lock_acquired")  # refused before the lock
    assert recorded(pg, db) == before


def test_without_the_gate_everything_is_applied_with_warnings(pg: Postgres, db: str) -> None:
    result = run_cli(env=migrate_env(pg.url(db), **BIG))
    assert result.returncode == 0, result.stderr
    names = [e["name"] for e in result.named("migration_applied") if e["app"] == "big"]
    assert names == [f"{m}" for m, _ in EXPECTED]
    warned = {e["migration"]: e for e in result.named("migration_risk")}
    assert sorted(warned) == [
        "big.0002_label_index", "big.0003_count_bigint", "big.0005_label_not_null",
        "big.0006_owner", "big.0008_sql",
    ]  # fmt: skip
    assert warned["big.0003_count_bigint"]["table"] == "big_item"
    assert warned["big.0003_count_bigint"]["rows"] == ROWS
    assert warned["big.0003_count_bigint"]["level"] == "warning"
    # Each warning comes before its migration is applied.
    order = [(e["event"], e.get("migration") or f"{e.get('app')}.{e.get('name')}")
             for e in result.events]  # fmt: skip
    for label in warned:
        assert order.index(("migration_risk", label)) < order.index(("migration_applied", label))


def test_gate_above_the_rows_lets_it_through(pg: Postgres, db: str) -> None:
    result = run_cli(env=migrate_env(pg.url(db), **BIG, **{GATE: "300000"}))
    assert result.returncode == 0, result.stderr
    assert len([e for e in result.named("migration_applied") if e["app"] == "big"]) == 8


def test_gate_checks_again_under_the_lock(pg: Postgres, db: str) -> None:
    """Small when first planned, big once the lock is ours: refused under the lock."""
    url = pg.url(db)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM big_item WHERE id > 50000")
        conn.execute("VACUUM ANALYZE big_item")
    before = recorded(pg, db)
    with lock_held(url):
        running = Running(env=migrate_env(url, **BIG, **{GATE: "100000"}))
        running.wait_for(is_event("migration_lock_waiting"))  # the first check passed
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO big_item (count, label) SELECT g, 'late' "
                "FROM generate_series(1, 150000) g"
            )
            conn.execute("ANALYZE big_item")
    result = running.finish()
    assert result.returncode == 78, result.stderr
    assert result.named("migration_lock_acquired")
    assert "big.0002_label_index" in result.last()["error"]
    assert recorded(pg, db) == before


def test_bad_gate_value_is_a_config_error(pg_url: str) -> None:
    result = run_cli(env=migrate_env(pg_url, **{GATE: "lots"}))
    assert result.returncode == 78
    assert result.last()["event"] == "config_invalid"
    assert GATE in result.last()["error"]


def test_sql_the_parser_rejects_is_unknown_with_its_message(pg_url: str) -> None:
    result, doc = plan(pg_url, TESTPROJ_METASQL="1")
    assert result.returncode == 0, result.stderr
    (step,) = [s for s in doc["databases"]["default"]["plan"] if s["app"] == "metasql"]
    (op,) = step["operations"]
    assert op["risk"] == "unknown"
    assert op["effects"] == []
    assert 'syntax error at or near "\\"' in op["note"]
    assert "Traceback" not in result.stderr


def test_other_engines_report_no_effects(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    result, doc = plan(url)
    assert result.returncode == 0, result.stderr
    ops = [op for s in doc["databases"]["default"]["plan"] for op in s["operations"]]
    assert ops
    assert all(op["effects"] is None and "PostgreSQL only" in op["note"] for op in ops)


def test_nothing_is_analysed_when_nothing_is_pending(pg: Postgres, db: str) -> None:
    url = pg.url(db)
    assert run_cli(env=migrate_env(url, **BIG)).returncode == 0
    result = run_cli(env=migrate_env(url, **BIG, ENTRYPOINT_LOG_LEVEL="debug"))
    assert result.returncode == 0, result.stderr
    assert result.named("migrations_up_to_date")
    assert not result.named("migration_risk_assessed")


def test_gate_checks_again_after_a_table_lock_retry(pg: Postgres, db: str) -> None:
    """0002 (CREATE INDEX, SHARE) waits behind an app transaction on a table of 10 rows and is
    rolled back for the retry; meanwhile the table grows to 50,010 analysed rows: refused on
    the retry, under the lock, nothing applied."""
    url = pg.url(db)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM big_item WHERE id > 10")
        conn.execute("VACUUM ANALYZE big_item")
    before = recorded(pg, db)
    gated = {GATE: "1000", "ENTRYPOINT_MIGRATE_TABLE_LOCK_TIMEOUT": "0.5"}
    with psycopg.connect(url) as app:
        app.execute("UPDATE big_item SET label = label WHERE id = 1")  # ROW EXCLUSIVE, held
        running = Running(env=migrate_env(url, **BIG, **gated))
        running.wait_for(is_event("migration_lock_contended", name="0002_label_index"))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO big_item (count, label) SELECT g, 'late' "
                "FROM generate_series(1, 50000) g"
            )
            conn.execute("ANALYZE big_item")
        app.commit()
    result = running.finish()
    assert result.returncode == 78, result.stderr
    error = result.last()["error"]
    assert "big.0002_label_index" in error
    assert "50010" in error
    assert recorded(pg, db) == before


def test_a_table_there_already_is_not_new(pg: Postgres, db: str) -> None:
    """big 0001 not recorded while its tables hold their rows (what --fake-initial adopts):
    its CreateModel creates nothing, and what follows is judged on the live table."""
    pg.execute("DELETE FROM django_migrations WHERE app = 'big'", db)
    _, doc = plan(pg.url(db))
    found = big_operations(doc)
    assert found["0002_label_index", "AddIndex"]["risk"] == "high"
    (effect,) = found["0002_label_index", "AddIndex"]["effects"]
    assert effect["rows"] == ROWS
