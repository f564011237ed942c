"""``--plan``: one JSON document on stdout, valid against tests/plan.schema.json, nothing changed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tests.cli import Result, base_env, entrypoint_cmd, run_cli, run_django
from tests.services import Postgres
from tests.watch import applied, lock_held, recorded

SCHEMA = json.loads((Path(__file__).parent / "plan.schema.json").read_text())
Draft202012Validator.check_schema(SCHEMA)
VALIDATOR = Draft202012Validator(SCHEMA)


def env(url: str, **extra: str) -> dict[str, str]:
    return base_env(DATABASE_URL=url, DJANGO_SETTINGS_MODULE="migproj.settings") | extra


def plan(url: str, **extra: str) -> tuple[Result, dict[str, Any]]:
    """The CLI's plan, checked against the schema; stdout must hold nothing else."""
    result = run_cli("--plan", env=env(url, **extra), timeout=60)
    doc = json.loads(result.stdout)
    VALIDATOR.validate(doc)
    return result, doc


def steps(doc: dict[str, Any], alias: str = "default") -> list[tuple[str, str, bool]]:
    return [(s["app"], s["name"], s["backwards"]) for s in doc["databases"][alias]["plan"]]


def migrate(url: str, **extra: str) -> Result:
    result = run_cli(env=env(url, ENTRYPOINT_STEPS="migrate", **extra), timeout=120)
    assert result.returncode == 0, result.stderr
    return result


def test_forward_plan_is_what_migrate_then_applies(pg: Postgres) -> None:
    """Empty database, lock held elsewhere: the plan answers at once and creates nothing."""
    db = pg.create_database()
    url = pg.url(db)
    with lock_held(url):
        result, doc = plan(url, ENTRYPOINT_MIGRATE_LOCK_TIMEOUT="0", TESTPROJ_ONEWAY="1")
    assert result.returncode == 0, result.stderr
    assert doc["phase"] == "post"
    assert doc["databases"]["default"]["problems"] == []
    assert doc["destructive"] == []
    assert pg.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", db) == [(0,)]
    by_name = {(s["app"], s["name"]): s for s in doc["databases"]["default"]["plan"]}
    assert by_name["main", "0002_item_size"]["operations"] == [
        {
            "type": "AddField",
            "description": "Add field size to item",
            "reversible": True,
            "drops_data": False,
            # main_item is created earlier in this plan: empty, unknown to the running app;
            # the operation is only named, not written out
            "effects": [],
            "risk": "none",
            "advice": [],
            "note": "not analysed further: its tables are new in this plan (main_item)",
        }
    ]
    assert by_name["oneway", "0002_backfill"]["reversible"] is False  # forwards it still runs
    assert all(s["phase"] is None for s in by_name.values())  # no django-safemigrate here
    assert all(s["atomic"] for s in by_name.values())
    assert not result.named("migration_lock_acquired")
    assert "oneway: loading the backfill migration" in result.stderr  # the stray print: an event
    done = migrate(url, TESTPROJ_ONEWAY="1")
    assert [(a, n, False) for a, n in applied(done)] == steps(doc)


def test_backward_plan_names_what_it_drops(pg: Postgres) -> None:
    """What drops data heads the document (and the console's plan), whatever its lock risk."""
    db = pg.create_database()
    url = pg.url(db)
    migrate(url)
    before = recorded(pg, db)
    result, doc = plan(url, ENTRYPOINT_MIGRATE_TARGETS="main 0001")
    assert result.returncode == 0, result.stderr
    (step,) = doc["databases"]["default"]["plan"]
    assert (step["app"], step["name"], step["backwards"]) == ("main", "0002_item_size", True)
    assert step["operations"][0]["drops_data"] is True  # unapplying AddField drops the column
    assert step["phase"] is None
    assert list(doc)[:2] == ["phase", "destructive"]
    assert doc["destructive"] == [
        {
            "database": "default",
            "migration": "main.0002_item_size",
            "backwards": True,
            "operation": "AddField",
            "description": "Add field size to item",
        }
    ]
    console = run_django(
        "lockedmigrate", "--plan", env=env(url, ENTRYPOINT_MIGRATE_TARGETS="main 0001")
    )
    assert console.returncode == 0, console.stderr
    events = [e["event"] for e in console.events]
    assert events.index("migrations_destructive") < events.index("migration_planned")
    [warning] = console.named("migrations_destructive")
    assert warning["operations"] == ["main.0002_item_size: Add field size to item"]
    assert recorded(pg, db) == before


def test_irreversible_plan_is_printed_and_refused(pg: Postgres) -> None:
    db = pg.create_database()
    url = pg.url(db)
    migrate(url, TESTPROJ_ONEWAY="1")
    before = recorded(pg, db)
    result, doc = plan(url, TESTPROJ_ONEWAY="1", ENTRYPOINT_MIGRATE_TARGETS="oneway 0001")
    assert result.returncode == 78, result.stderr
    assert steps(doc) == [("oneway", "0003_note_title", True), ("oneway", "0002_backfill", True)]
    assert [s["reversible"] for s in doc["databases"]["default"]["plan"]] == [True, False]
    (problem,) = doc["databases"]["default"]["problems"]
    assert "oneway.0002_backfill" in problem
    assert "RunPython(backfill)" in problem
    assert result.last()["event"] == "migration_plan_refused"
    assert result.last()["exit_code"] == 78
    assert recorded(pg, db) == before


@pytest.mark.parametrize(
    ("mode", "code", "problems"), [("strict", 78, 1), ("nonstrict", 0, 0), ("disabled", 0, 0)]
)
def test_phased_plan_labels_each_migration(
    pg: Postgres, mode: str, code: int, problems: int
) -> None:
    """With django-safemigrate: pre, post or blocked per migration; strict refuses the block."""
    url = pg.url(pg.create_database())
    result, doc = plan(
        url,
        DJANGO_SETTINGS_MODULE="testproj.phased_settings",
        ENTRYPOINT_MIGRATE_PHASE="pre",
        PHASED_BLOCKED="1",
        SAFEMIGRATE=mode,
    )
    assert result.returncode == code, result.stderr
    assert doc["phase"] == "pre"
    phase = {f"{s['app']}.{s['name']}": s["phase"] for s in doc["databases"]["default"]["plan"]}
    blocked = "pre" if mode == "disabled" else "blocked"
    delayed = "pre" if mode == "disabled" else "post"
    assert phase["phased.0002_widget_color"] == "pre"
    assert phase["phased.0003_remove_widget_legacy_code"] == delayed
    assert phase["phasedblock.0001_initial"] == blocked
    assert phase["auth.0001_initial"] == "pre"
    found = doc["databases"]["default"]["problems"]
    assert len(found) == problems
    if problems:
        assert "phasedblock.0001_initial" in found[0]
        assert "phased.0003_remove_widget_legacy_code" in found[0]


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"ENTRYPOINT_MIGRATE_TARGETS": "main 0009"}, "no migration '0009'"),
        ({"TESTPROJ_CONFLICT": "1"}, "makemigrations --merge"),
        ({"ENTRYPOINT_MIGRATE_PHASE": "pre"}, "needs django-safemigrate"),
        (
            {"ENTRYPOINT_MIGRATE_PHASE": "pre", "ENTRYPOINT_MIGRATE_TARGETS": "main 0001"},
            "needs django-safemigrate",
        ),
        (
            {
                "DJANGO_SETTINGS_MODULE": "testproj.phased_settings",
                "ENTRYPOINT_MIGRATE_PHASE": "pre",
                "SAFEMIGRATE": "sometimes",
            },
            "The SAFEMIGRATE setting is invalid",
        ),
    ],
)
def test_plans_that_cannot_be_carried_out(pg: Postgres, extra: dict[str, str], needle: str) -> None:
    """Bad targets, conflicts, a pre phase without django-safemigrate or with a bad mode: 78."""
    url = pg.url(pg.create_database())
    result, doc = plan(url, **extra)
    assert result.returncode == 78, result.stderr
    assert any(needle in p for p in doc["databases"]["default"]["problems"]), doc


def test_backward_pre_phase_is_refused(pg: Postgres) -> None:
    url = pg.url(pg.create_database())
    phased = {"DJANGO_SETTINGS_MODULE": "testproj.phased_settings"}
    migrate(url, **phased)
    result, doc = plan(
        url, ENTRYPOINT_MIGRATE_PHASE="pre", ENTRYPOINT_MIGRATE_TARGETS="phased 0002", **phased
    )
    assert result.returncode == 78, result.stderr
    assert "refuses backward plans" in doc["databases"]["default"]["problems"][0]


def test_lockedmigrate_prints_the_same_document(pg: Postgres) -> None:
    url = pg.url(pg.create_database())
    _, doc = plan(url, TESTPROJ_ONEWAY="1")
    result = run_django(
        "lockedmigrate", "--plan", "--format", "json", env=env(url, TESTPROJ_ONEWAY="1")
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == doc
    one_app = run_django(
        "lockedmigrate", "main", "--plan", "--format", "json", env=env(url, TESTPROJ_ONEWAY="1")
    )
    assert one_app.returncode == 0, one_app.stderr
    only = json.loads(one_app.stdout)
    VALIDATOR.validate(only)
    assert {s["app"] for s in only["databases"]["default"]["plan"]} == {"main"}


def test_plan_takes_no_command() -> None:
    proc = subprocess.run(
        entrypoint_cmd("--plan", "gunicorn"),
        env=base_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2  # a usage error, before anything is loaded
    assert "--plan takes no COMMAND" in proc.stderr


def test_database_that_does_not_answer_is_69_without_a_document() -> None:
    """--plan does not wait: a refused connection is 'database unavailable', stdout stays empty."""
    result = run_cli("--plan", env=env("postgres://u@127.0.0.1:1/x"), timeout=60)
    assert result.returncode == 69, result.stderr
    assert result.stdout == ""
    assert "did not answer while planning" in result.last()["error"]
