"""The lock behind PgBouncer, in session mode, on MariaDB (GET_LOCK) and on SQLite (flock)."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import sqlite3
from pathlib import Path

import pymysql
import pytest

from entrypoint.config import default_lock_id
from entrypoint.migrate.lock.state import lock_name
from tests.cli import Result, finish, migrate_env, run_cli, start_cli
from tests.services import MariaDB, PgBouncer, Postgres
from tests.test_hooks import hook
from tests.watch import Running, applied, is_event, recorded, sleep_runs_on_mariadb, wait_until


def env(url: str, **extra: str) -> dict[str, str]:
    return migrate_env(url, **extra)


def run_many(count: int, url: str, **extra: str) -> list[Result]:
    procs = [start_cli(env=env(url, **extra)) for _ in range(count)]
    return [finish(p, timeout=300) for p in procs]


def assert_exactly_once(results: list[Result], rows: list[tuple[object, ...]]) -> None:
    assert [r.returncode for r in results] == [0] * len(results), [
        r.stderr for r in results if r.returncode
    ]
    appliers = [r for r in results if applied(r)]
    assert len(appliers) == 1
    assert len(rows) == len(set(rows)) == len(applied(appliers[0])) >= 25


def test_pgbouncer_transaction_pooling_twenty_replicas(pg: Postgres, bouncer: PgBouncer) -> None:
    """The transaction-scoped lock keeps working when every statement may change server;
    the waiters poll (a notification would reach whichever session the pooler picked)."""
    db = pg.create_database()
    results = run_many(20, pg.url(db, port=bouncer.port))
    assert_exactly_once(results, recorded(pg, db))
    assert {e["lock"] for r in results for e in r.named("migration_lock_acquired")} == {
        "pg_advisory_xact_lock"
    }
    waits = [e for r in results for e in r.named("migration_lock_waiting")]
    assert waits, "no replica waited"
    assert {e["wake"] for e in waits} == {"poll"}


def test_session_mode_on_a_direct_connection(pg: Postgres) -> None:
    db = pg.create_database()
    results = run_many(5, pg.url(db), ENTRYPOINT_MIGRATE_LOCK_MODE="session")
    assert_exactly_once(results, recorded(pg, db))
    assert {e["lock"] for r in results for e in r.named("migration_lock_acquired")} == {
        "pg_advisory_lock"
    }


def mysql_rows(server: MariaDB, db: str) -> list[tuple[object, ...]]:
    return server.execute("SELECT app, name FROM django_migrations ORDER BY app, name", db)


def test_mariadb_get_lock_eight_replicas(mariadb: MariaDB) -> None:
    """Eight replicas on an empty database: the lock, the fence passed by each holder, every
    statement and commit checked against the lock; all exit 0, everything applied once."""
    db = mariadb.create_database()
    results = run_many(8, mariadb.url(db))
    assert_exactly_once(results, mysql_rows(mariadb, db))
    assert {e["lock"] for r in results for e in r.named("migration_lock_acquired")} == {"get_lock"}
    # The waiters re-read django_migrations on the lock's session and end without the lock.
    ended = [r for r in results if r.named("migration_lock_wait_ended")]
    assert ended, "no waiter ended its wait on the re-check"
    assert not any(r.named("migration_lock_acquired") for r in ended)


def test_mariadb_lock_held_elsewhere_times_out(mariadb: MariaDB) -> None:
    db = mariadb.create_database()
    holder = pymysql.connect(host="127.0.0.1", port=mariadb.port, user="root")
    with holder.cursor() as cur:
        cur.execute(
            "SELECT GET_LOCK(%s, 0), CONNECTION_ID()",
            [f"django-entrypoint:{default_lock_id()}:{db}"],
        )
        got, connection_id = cur.fetchone()
    assert got == 1
    result = run_cli(env=env(mariadb.url(db), ENTRYPOINT_MIGRATE_LOCK_TIMEOUT="1"))
    holder.close()
    assert result.returncode == 75, result.stderr
    assert f"connection_id={connection_id}" in result.named("migration_lock_timeout")[0]["error"]


def test_mariadb_locked_migrations_table_is_75_not_a_hang(mariadb: MariaDB) -> None:
    """LOCK TABLES django_migrations WRITE in another session: the file-level check waits at
    most lock_wait_timeout a read (whole seconds), retries, then 75 (MariaDB's catalog does
    not name the holder)."""
    db = mariadb.create_database()
    assert run_cli(env=env(mariadb.url(db))).returncode == 0
    holder = pymysql.connect(host="127.0.0.1", port=mariadb.port, user="root", database=db)
    with holder.cursor() as cur:
        cur.execute("LOCK TABLES django_migrations WRITE")
    try:
        result = run_cli(env=env(mariadb.url(db), ENTRYPOINT_MIGRATE_LOCK_TIMEOUT="2"))
    finally:
        holder.close()
    assert result.returncode == 75, result.stderr
    assert result.named("migrations_table_locked")
    assert "a session the catalog does not name" in result.last()["error"]


def test_sqlite_locked_database_is_75_not_a_hang(tmp_path: Path) -> None:
    """An exclusive transaction on the SQLite file: the same, through its busy timeout."""
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    assert run_cli(env=env(url)).returncode == 0
    holder = sqlite3.connect(tmp_path / "db.sqlite3", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = run_cli(env=env(url, ENTRYPOINT_MIGRATE_LOCK_TIMEOUT="2"))
    finally:
        holder.close()
    assert result.returncode == 75, result.stderr
    assert result.named("migrations_table_locked")


def test_sqlite_file_lock_five_replicas(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    results = run_many(5, f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT app, name FROM django_migrations ORDER BY 1, 2").fetchall()
    assert_exactly_once(results, rows)
    assert {e["lock"] for r in results for e in r.named("migration_lock_acquired")} == {"flock"}


def test_sqlite_lock_held_elsewhere_times_out(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with (tmp_path / "db.sqlite3.migrate-lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write(f'{{"host": "test-holder", "pid": {os.getpid()}}}')
        held.flush()
        result = run_cli(env=env(f"sqlite:///{path}", ENTRYPOINT_MIGRATE_LOCK_TIMEOUT="1"))
    assert result.returncode == 75, result.stderr
    assert "host=test-holder" in result.named("migration_lock_timeout")[0]["error"]
    assert not path.exists() or path.stat().st_size == 0


def test_session_lock_survives_idle_session_timeout(pg: Postgres) -> None:
    """A database-wide idle_session_timeout must not end the session that holds the lock."""
    db = pg.create_database()
    pg.execute(f'ALTER DATABASE "{db}" SET idle_session_timeout = 1000')
    result = run_cli(
        env=env(pg.url(db), ENTRYPOINT_MIGRATE_LOCK_MODE="session", SLOW_MIGRATION_SECONDS="2.5")
    )
    assert result.returncode == 0, result.stderr
    assert ("shop", "0003_seed") in recorded(pg, db)


def test_mariadb_sigterm_between_ddl_operations_says_what_may_have_run(mariadb: MariaDB) -> None:
    """MySQL cannot roll DDL back: an interrupted migration is reported as not rolled back,
    with its operations, instead of the comforting rolled_back=true."""
    db = mariadb.create_database()
    proc = Running(
        env=env(mariadb.url(db), SLOW_MIGRATION_SECONDS="60", ENTRYPOINT_LOG_LEVEL="debug")
    )
    proc.wait_for(is_event("migration_started", app="shop", name="0002_order_slow"))
    wait_until(lambda: sleep_runs_on_mariadb(mariadb))  # after CREATE TABLE shop_order
    proc.proc.send_signal(signal.SIGTERM)
    result = proc.finish(timeout=60)
    assert result.returncode == 143, result.stderr
    interrupted = result.named("migration_interrupted")[0]
    assert interrupted["rolled_back"] is False
    assert interrupted["may_have_run"][0] == "Create model Order"
    assert len(interrupted["may_have_run"]) == 3
    assert "--fake" in interrupted["hint"]


def lock_session(server: Postgres | MariaDB, db: str, pid: int) -> int:
    """The server's id of the session holding the migration lock for the start ``pid``."""
    if isinstance(server, Postgres):
        name = f"django-entrypoint migrate {socket.gethostname()} pid={pid}"
        [(session,)] = server.execute(
            f"SELECT pid FROM pg_stat_activity WHERE application_name = '{name}'"
        )
    else:
        [(session,)] = server.execute(f"SELECT IS_USED_LOCK('{lock_name(default_lock_id(), db)}')")
    assert isinstance(session, int)
    return session


def session_alive(server: Postgres | MariaDB, session: int) -> bool:
    if isinstance(server, Postgres):
        return bool(server.execute(f"SELECT 1 FROM pg_stat_activity WHERE pid = {session}"))
    return bool(
        server.execute(f"SELECT 1 FROM information_schema.PROCESSLIST WHERE ID = {session}")
    )


def slow_migrate_then_hook(url: str, tmp_path: Path) -> tuple[Running, Path]:
    """A start whose migration sleeps 3 s and whose hook then runs until the returned file
    exists."""
    go, hooks = tmp_path / "go", tmp_path / "hooks"
    hooks.mkdir()
    hook(hooks, "1-wait", f"while [ ! -e {go} ]; do sleep 0.1; done")
    proc = Running(
        env=env(
            url,
            SLOW_MIGRATION_SECONDS="3",
            ENTRYPOINT_STEPS="migrate,hooks",
            ENTRYPOINT_HOOKS_DIR=str(hooks),
            ENTRYPOINT_LOG_LEVEL="debug",  # migration_started
        )
    )
    proc.wait_for(is_event("migration_started", app="shop", name="0002_order_slow"))
    return proc, go


@pytest.mark.parametrize("fixture", ["pg", "mariadb"])
def test_the_lock_session_ends_with_the_migrate_step(
    fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The lock's own session is closed once released, not kept through the later steps: a
    connection slot each replica would hold for as long as its hooks run."""
    server: Postgres | MariaDB = request.getfixturevalue(fixture)
    db = server.create_database()
    proc, go = slow_migrate_then_hook(server.url(db), tmp_path)
    try:
        session = lock_session(server, db, proc.proc.pid)
        assert session_alive(server, session)
        proc.wait_for(is_event("hook_started"))
        assert not session_alive(server, session)
    finally:
        go.touch()
    result = proc.finish(timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_sqlite_lock_is_free_once_the_migrate_step_ends(tmp_path: Path) -> None:
    """SQLite's lock, a flock, is held while migrating and free during the later steps."""
    path = tmp_path / "db.sqlite3"
    proc, go = slow_migrate_then_hook(f"sqlite:///{path}", tmp_path)
    try:
        with (tmp_path / "db.sqlite3.migrate-lock").open("a") as lock:
            with pytest.raises(BlockingIOError):
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            proc.wait_for(is_event("hook_started"))
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(lock, fcntl.LOCK_UN)
    finally:
        go.touch()
    result = proc.finish(timeout=60)
    assert result.returncode == 0, result.stderr
