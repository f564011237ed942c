"""The lock analysis runs nothing of the project's and writes nothing (issue 26).

tests/projects/sideeffect at 0001, then pending: a SeparateDatabaseAndState whose database
operation is a RunPython inserting a row, a third-party style operation inserting a row through
the ORM in its database_forwards (reduces_to_sql left True), and Django's own AddField, whose
schema editor writes a row while it works when SIDEEFFECT_BACKEND is set. Each row is one run of
that code: ``--plan`` must leave none, every way of starting must leave exactly one each.
"""

from __future__ import annotations

import json

import pytest

from tests.cli import Result, migrate_env, run_cli
from tests.services import Postgres

SETTINGS = "testproj.sideeffect_settings"
GATE = "ENTRYPOINT_MIGRATE_MAX_BLOCKING_ROWS"
RAN_ONCE = {"separate": 1, "custom": 1}


def env(url: str, **extra: str) -> dict[str, str]:
    return migrate_env(url, DJANGO_SETTINGS_MODULE=SETTINGS, **extra)


@pytest.fixture(scope="module")
def template(pg: Postgres) -> str:
    name = pg.create_database()
    result = run_cli(env=env(pg.url(name), ENTRYPOINT_MIGRATE_TARGETS="sideeffect 0001"))
    assert result.returncode == 0, result.stderr
    # A row, so that 0004's AddField is on a table that may make the app wait: analysed.
    pg.execute("INSERT INTO sideeffect_mark (note) VALUES ('seed')", name)
    return name


@pytest.fixture
def db(pg: Postgres, template: str) -> str:
    return pg.create_database(template)


def marks(pg: Postgres, db: str) -> dict[str, int]:
    rows = pg.execute(
        "SELECT note, count(*) FROM sideeffect_mark WHERE note <> 'seed' GROUP BY note", db
    )
    return {str(note): int(str(count)) for note, count in rows}


def operations(result: Result) -> dict[str, dict[str, object]]:
    doc = json.loads(result.stdout)
    return {
        step["name"]: op
        for step in doc["databases"]["default"]["plan"]
        if step["app"] == "sideeffect"
        for op in step["operations"]
    }


def test_plan_runs_no_code_and_says_why(pg: Postgres, db: str) -> None:
    result = run_cli("--plan", env=env(pg.url(db)), timeout=60)
    assert result.returncode == 0, result.stderr
    assert marks(pg, db) == {}
    found = operations(result)
    assert found["0002_separate"]["risk"] == "unknown"
    assert "RunPython runs code" in str(found["0002_separate"]["note"])
    assert found["0003_custom"]["risk"] == "unknown"
    note = str(found["0003_custom"]["note"])
    assert "sideeffect.operations.InsertMark.database_forwards is not Django's own code" in note
    assert found["0004_extra"]["risk"] == "low"  # Django's own AddField: analysed as before


@pytest.mark.parametrize(
    "extra",
    [
        {},  # new files, no gate: the lock first, analysed under it
        {GATE: "1000000"},  # analysed before the lock and again under it
        {"ENTRYPOINT_MIGRATE_TARGETS": "sideeffect"},  # targets: the full path
        {"ENTRYPOINT_MIGRATE_PHASE": "pre"},  # the pre phase (django-safemigrate): the same
    ],
    ids=["plain", "gate", "targets", "pre"],
)
def test_a_start_runs_each_operation_once(pg: Postgres, db: str, extra: dict[str, str]) -> None:
    result = run_cli(env=env(pg.url(db), **extra))
    assert result.returncode == 0, result.stderr
    assert marks(pg, db) == RAN_ONCE


def test_a_write_while_writing_sql_is_refused_and_unknown(pg: Postgres, db: str) -> None:
    """A backend's editor that writes while Django's own AddField is collected: the write fails
    inside the read-only transaction, the operation is unknown, nothing is committed; applied,
    the editor writes once."""
    backend = {"SIDEEFFECT_BACKEND": "1"}
    result = run_cli("--plan", env=env(pg.url(db), **backend), timeout=60)
    assert result.returncode == 0, result.stderr
    extra = operations(result)["0004_extra"]
    assert extra["risk"] == "unknown"
    assert "tried to write to the database" in str(extra["note"])
    assert marks(pg, db) == {}
    result = run_cli(env=env(pg.url(db), **backend, **{GATE: "1000000"}))
    assert result.returncode == 0, result.stderr
    assert marks(pg, db) == {**RAN_ONCE, "editor": 1}
