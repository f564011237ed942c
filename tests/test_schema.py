"""ENTRYPOINT_SCHEMA_CHECK and --status's ``schema``: whether the live schema serves this code.

The drift app (tests/projects/drift) in three versions: v1; v2, whose 0002 adds a NOT NULL field
with a default (Django drops the database default after filling the rows) and a new model;
compat, a v2 that only adds a nullable column and a column with a db_default. A database is
migrated by one version's code, then another version's code starts on it, as after a rollback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli import Result, base_env, run_cli, run_django
from tests.services import MariaDB, Postgres

PLAN = {
    "model": "drift.Account",
    "table": "drift_account",
    "column": "plan",
    "problem": "not_null_without_default",
    "detail": None,
}
ADMIN = {"DJANGO_ADMIN_USERNAME": "admin", "DJANGO_ADMIN_PASSWORD": "schema-Pa55word"}


def drift_env(url: str, version: str, **extra: str) -> dict[str, str]:
    return base_env(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="testproj.drift_settings",
        DRIFT_VERSION=version,
        **extra,
    )


def migrate(env: dict[str, str]) -> Result:
    """The migrate step alone, refusing a schema its own code cannot serve: every database a
    test starts from is thereby shown compatible with the code that migrated it."""
    result = run_cli(
        env={**env, "ENTRYPOINT_STEPS": "migrate", "ENTRYPOINT_SCHEMA_CHECK": "refuse"}
    )
    assert result.returncode == 0, result.stderr
    assert result.named("schema_compatible")
    return result


def schema_of(env: dict[str, str]) -> dict[str, Any]:
    result = run_cli("--status", env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    schema: dict[str, Any] = json.loads(result.stdout)["databases"]["default"]["schema"]
    return schema


def schema_events(result: Result) -> list[dict[str, Any]]:
    return [e for e in result.events if e["event"].startswith("schema_")]


@pytest.fixture(scope="module")
def v2_url(pg: Postgres) -> str:
    """A database migrated by v2 (drift 0002 applied): what a rollback to v1 starts on."""
    url = pg.url(pg.create_database())
    migrate(drift_env(url, "v2"))
    return url


class TestRollbackOntoANewerSchema:
    def test_status_names_the_column_v1_cannot_fill(self, v2_url: str) -> None:
        """v2's NOT NULL column without a default is the one problem; v2's new table, which
        v1 does not know, is none."""
        schema = schema_of(drift_env(v2_url, "v1"))
        assert schema["compatible"] is False
        assert schema["problems"] == [PLAN]

    @pytest.mark.parametrize(
        "case",
        [
            ("migrate,admin", "connection", "refuse", 78),
            ("migrate,admin", "connection", "warn", 0),
            ("migrate,admin", "connection", "off", 0),
            ("wait,admin", "migrations", "refuse", 78),  # the app pods beside a migration Job
            ("wait,admin", "migrations", "warn", 0),
            ("wait,admin", "connection", "refuse", 0),  # before the migrations: no check
            ("none", "migrations", "refuse", 0),  # an app container: no step, no check
        ],
        ids=lambda case: "-".join(map(str, case)),
    )
    def test_start(self, v2_url: str, tmp_path: Path, case: tuple[str, str, str, int]) -> None:
        steps, wait_for, mode, code = case
        served = tmp_path / "served"
        env = drift_env(
            v2_url,
            "v1",
            ENTRYPOINT_STEPS=steps,
            ENTRYPOINT_WAIT_FOR=wait_for,
            ENTRYPOINT_SCHEMA_CHECK=mode,
            **ADMIN,
        )
        result = run_cli("--", "touch", str(served), env=env)
        assert result.returncode == code, result.stderr
        events = schema_events(result)
        if code == 78:
            [event] = events
            assert (event["event"], event["level"]) == ("schema_incompatible", "error")
            assert "drift.Account: column drift_account.plan is NOT NULL" in event["error"]
            assert event["problems"] == [PLAN]
            assert not served.exists()  # the server was not exec'd
            assert not [e for e in result.named("step_started") if e["step"] == "admin"]
        elif mode == "warn":
            [event] = events
            assert (event["event"], event["level"]) == ("schema_incompatible", "warning")
            assert event["problems"] == [PLAN]
            assert served.exists()
        else:
            assert events == []
            assert served.exists()

    @pytest.mark.parametrize(
        ("command", "code"),
        [
            (["lockedmigrate"], 78),
            (["wait4db", "--migrated"], 78),
            (["lockedmigrate", "main"], 0),  # one app: the others may lag on purpose
            (["wait4db"], 0),  # before the migrations
        ],
    )
    def test_management_commands(self, v2_url: str, command: list[str], code: int) -> None:
        env = drift_env(v2_url, "v1", ENTRYPOINT_SCHEMA_CHECK="refuse")
        result = run_django(*command, env=env)
        assert result.returncode == code, result.stderr
        if code:
            assert result.last()["event"] == "schema_incompatible"
            assert result.last()["problems"] == [PLAN]
        else:
            assert schema_events(result) == []


@pytest.mark.parametrize("engine", ["postgresql", "sqlite"])
def test_nullable_db_default_and_database_filled_columns_keep_v1_working(
    pg: Postgres, tmp_path: Path, engine: str
) -> None:
    """compat's 0002 adds a nullable column, one with a db_default, and columns no model knows
    that the database fills (an identity, a NOT NULL generated column): v1 can INSERT."""
    url = pg.url(pg.create_database()) if engine == "postgresql" else f"sqlite:///{tmp_path}/db"
    applied = migrate(drift_env(url, "compat")).named("migration_applied")
    assert {"app": "drift", "name": "0002_account_nickname_tier"} in [
        {"app": e["app"], "name": e["name"]} for e in applied
    ]
    migrate(drift_env(url, "v1"))  # refuse: exit 0, schema_compatible


def test_rollback_by_targets_leaves_the_pinned_app_out(pg: Postgres) -> None:
    """The documented two-step rollback: v2's code with v1's targets unapplies drift 0002 (its
    models are then ahead of the schema on purpose: not checked), then v1's code starts."""
    url = pg.url(pg.create_database())
    migrate(drift_env(url, "v2"))
    first = migrate(drift_env(url, "v2", ENTRYPOINT_MIGRATE_TARGETS="drift 0001"))
    assert first.named("migration_unapplied")
    assert first.named("schema_compatible")[0]["skipped_apps"] == ["drift"]
    second = migrate(drift_env(url, "v1"))
    assert second.named("schema_compatible")[0]["skipped_apps"] == []


def test_drift_by_hand(pg: Postgres) -> None:
    """A column dropped, a table dropped, a column retyped: each named. Widening integer to
    bigint and lengthening a varchar break nothing, and are not reported."""
    db = pg.create_database()
    url = pg.url(db)
    migrate(drift_env(url, "v1"))
    pg.execute(
        "ALTER TABLE drift_account DROP COLUMN name;"
        " ALTER TABLE drift_account ALTER COLUMN score TYPE text;"
        " DROP TABLE drift_account_tags;"
        " ALTER TABLE drift_tag ALTER COLUMN id TYPE bigint;"
        " ALTER TABLE drift_tag ALTER COLUMN name TYPE varchar(200)",
        db,
    )
    schema = schema_of(drift_env(url, "v1"))
    assert schema["compatible"] is False
    assert [(p["model"], p["column"], p["problem"]) for p in schema["problems"]] == [
        ("drift.Account", "name", "missing_column"),
        ("drift.Account", "score", "type_mismatch"),
        ("drift.Account_tags", None, "missing_table"),
    ]
    assert schema["problems"][1]["detail"] == "the model declares integer, the column is text"


def test_routers_decide_which_alias_holds_which_model(pg: Postgres) -> None:
    """drift's router keeps its tables on default: the other alias is not asked for them."""
    url, other = pg.url(pg.create_database()), pg.url(pg.create_database())
    env = drift_env(url, "v1", OTHER_DATABASE_URL=other, DRIFT_ROUTED="1")
    result = migrate({**env, "ENTRYPOINT_DATABASES": "all"})
    verdicts = {e["alias"]: e["models"] for e in result.named("schema_compatible")}
    assert verdicts["default"] - verdicts["other"] == 3  # Tag, Account, Account_tags


@pytest.mark.parametrize("engine", ["postgresql", "sqlite"])
def test_fresh_project_with_contrib_apps_and_a_custom_user_is_compatible(
    pg: Postgres, tmp_path: Path, engine: str
) -> None:
    """django.contrib's apps, a custom user model and every kind of model (tests/projects/
    kinds): no false positive on many-to-many tables, generic relations, inheritance, generated
    columns, proxy or unmanaged models."""
    url = pg.url(pg.create_database()) if engine == "postgresql" else f"sqlite:///{tmp_path}/db"
    env = base_env(DATABASE_URL=url, DJANGO_SETTINGS_MODULE="customproj.full_settings")
    result = migrate(env)
    # auth (3, its User swapped out), contenttypes, accounts (3), sessions, admin, sites,
    # flatpages (2), redirects, kinds (7: not the proxy, not the unmanaged table)
    assert result.named("schema_compatible")[0]["models"] == 20


def test_mysql_and_sqlite_catalogs(mariadb: MariaDB, tmp_path: Path) -> None:
    """The same rollback on MariaDB and SQLite: v2 compatible with its own schema (auto
    increments, many-to-many tables), v1 unable to fill v2's NOT NULL column."""
    for url in (mariadb.url(mariadb.create_database()), f"sqlite:///{tmp_path}/db"):
        migrate(drift_env(url, "v2"))
        schema = schema_of(drift_env(url, "v1"))
        assert schema["problems"] == [PLAN], url


def test_pre_phase_leaving_a_column_the_new_code_cannot_fill(pg: Postgres) -> None:
    """tests/projects/phased: 0003 removes legacy_code after the deploy, but the column, NOT
    NULL without a database default, stays until then: the new code cannot INSERT a Widget
    between the phases, and a pre phase under refuse says so."""
    env = base_env(
        DATABASE_URL=pg.url(pg.create_database()),
        DJANGO_SETTINGS_MODULE="testproj.phased_settings",
        ENTRYPOINT_STEPS="migrate",
        ENTRYPOINT_MIGRATE_PHASE="pre",
        ENTRYPOINT_SCHEMA_CHECK="refuse",
    )
    result = run_cli(env=env)
    assert result.returncode == 78, result.stderr
    assert result.last()["problems"] == [
        {
            "model": "phased.Widget",
            "table": "phased_widget",
            "column": "legacy_code",
            "problem": "not_null_without_default",
            "detail": None,
        }
    ]
