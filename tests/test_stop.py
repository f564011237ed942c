"""A stop is final: once SIGTERM came, nothing commits, no later step runs, the server is never
exec'd, exit 143, even when the migration's code swallows the interruption (a bare except:);
and code that never returns does not hold the process past the stop's grace."""

from __future__ import annotations

import signal
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli import base_env, migrate_env, run_cli
from tests.services import MariaDB, Postgres
from tests.watch import Running, is_event

SERVER = [sys.executable, "-c", "print('the server ran')"]
RUNNING = "careless migration running"
MIGRATION = ("swallow", "0002_careless")
Rows = Callable[[str], list[tuple[object, ...]]]


def env(url: str, **extra: str) -> dict[str, str]:
    """migrate and admin on migproj with the careless migration; the admin step comes after."""
    return migrate_env(
        url,
        TESTPROJ_SWALLOW="1",
        ENTRYPOINT_STEPS="migrate,admin",
        DJANGO_ADMIN_USERNAME="boss",
        DJANGO_ADMIN_PASSWORD="St0p-is-final",
        **extra,
    )


@pytest.fixture(params=["postgresql", "mariadb", "sqlite"])
def database(request: pytest.FixtureRequest, pg: Postgres, tmp_path: Path) -> tuple[str, Rows]:
    """A fresh database's URL, and how to read rows from it."""
    if request.param == "postgresql":
        name = pg.create_database()
        return pg.url(name), lambda sql: pg.execute(sql, name)
    if request.param == "mariadb":
        server: MariaDB = request.getfixturevalue("mariadb")
        name = server.create_database()
        return server.url(name), lambda sql: server.execute(sql, name)
    path = tmp_path / "db.sqlite3"

    def sqlite_rows(sql: str) -> list[tuple[object, ...]]:
        with sqlite3.connect(path) as conn:
            return conn.execute(sql).fetchall()

    return f"sqlite:///{path}", sqlite_rows


def stopped(url: str, **extra: str) -> Running:
    """A start with a server to exec, inside the careless migration, sent SIGTERM."""
    running = Running("--", *SERVER, env=env(url, **extra))
    running.wait_for(is_event("django_output", line=RUNNING))
    running.proc.send_signal(signal.SIGTERM)
    return running


def test_a_swallowed_stop_commits_nothing_and_runs_nothing_after(
    database: tuple[str, Rows],
) -> None:
    """The migration swallows the interruption and returns normally: its commit is refused,
    the admin step does not start, the server is not exec'd, 143; the next start applies it
    once."""
    url, rows = database
    result = stopped(url, SWALLOW_SECONDS="2").finish()
    assert result.returncode == 143, result.stderr
    assert "the server ran" not in result.stdout
    assert result.named("interrupted")
    assert [e["step"] for e in result.named("step_started")] == ["migrate"]
    assert rows("SELECT count(*) FROM swallow_row") == [(0,)]
    recorded = "SELECT app, name FROM django_migrations WHERE app = 'swallow'"
    assert rows(recorded) == [("swallow", "0001_initial")]

    again = run_cli(env=env(url))
    assert again.returncode == 0, again.stderr
    assert rows("SELECT note FROM swallow_row") == [("once",)]
    assert sorted(rows(recorded)) == [("swallow", "0001_initial"), MIGRATION]


def test_code_that_never_returns_ends_with_the_stop_s_grace(pg: Postgres) -> None:
    """The careless loop would run for 10 minutes: the process ends by itself after the stop's
    grace, 143, and the server rolls the migration back."""
    name = pg.create_database()
    result = stopped(pg.url(name), SWALLOW_SECONDS="600").finish(timeout=90)
    assert result.returncode == 143, result.stderr
    assert result.last()["event"] == "stop_forced"
    assert "the server ran" not in result.stdout
    assert pg.execute("SELECT count(*) FROM swallow_row", name) == [(0,)]


@pytest.mark.parametrize(
    ("steps", "commands"),
    [
        ("manage", "stubborn 2\nsay after"),  # no later command
        ("manage,hooks", "stubborn 2"),  # no later step
        ("manage", "stubborn 2"),  # no server
    ],
    ids=["command", "step", "exec"],
)
def test_a_stop_swallowed_outside_the_migrations_ends_the_start_too(
    steps: str, commands: str
) -> None:
    """A management command that swallows the interruption: nothing after it runs, 143."""
    running = Running(
        "--",
        *SERVER,
        env=base_env(ENTRYPOINT_STEPS=steps, ENTRYPOINT_MANAGE=commands),
    )
    running.wait_for(is_event("manage_output", line="stubborn running"))
    running.proc.send_signal(signal.SIGTERM)
    result = running.finish()
    assert result.returncode == 143, result.stderr
    assert [e["step"] for e in result.named("step_started")] == ["manage"]
    assert [e["command"] for e in result.named("manage_command_started")] == ["stubborn"]
    assert "the server ran" not in result.stdout
