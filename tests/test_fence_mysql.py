"""Exactly once on MariaDB when the lock's connection dies: the fence, the keepalive, the checks.

The holder's GET_LOCK connection is killed (``KILL CONNECTION``: what an administrator, a proxy
or a failover does) while it is inside a data migration, between two migrations, or between two
DDL statements; a waiter takes the lock at once. Each replica must end with a documented code,
and nothing may run twice.
"""

from __future__ import annotations

import datetime as dt
import time

import pymysql
import pytest

from entrypoint.config import default_lock_id
from tests.cli import migrate_env, run_cli
from tests.services import MariaDB
from tests.watch import Running, applied, is_event, sleep_runs_on_mariadb, wait_until

LOCK_SESSION = "SELECT IS_USED_LOCK('django-entrypoint:{key}:{db}')"


def env(url: str, **extra: str) -> dict[str, str]:
    defaults = {"TESTPROJ_SEEDED": "1", "ENTRYPOINT_LOG_LEVEL": "debug"}
    return migrate_env(url, **(defaults | extra))


def kill_lock_session(server: MariaDB, db: str) -> int:
    """KILL CONNECTION the session holding the migration lock; its id."""
    ((session,),) = server.execute(LOCK_SESSION.format(key=default_lock_id(), db=db))
    assert isinstance(session, int)
    server.execute(f"KILL CONNECTION {session}")
    return session


def seeds(server: MariaDB, db: str) -> list[tuple[object, ...]]:
    return server.execute("SELECT note FROM seeded_seed ORDER BY note", db)


def records(server: MariaDB, db: str) -> list[tuple[object, ...]]:
    return server.execute("SELECT app, name FROM django_migrations ORDER BY app, name", db)


def assert_complete_once(server: MariaDB, url: str, db: str) -> None:
    """Each seed row once, each migration recorded once, and the next start has nothing to do."""
    assert seeds(server, db) == [("after",), ("once",)]
    rows = records(server, db)
    assert len(rows) == len(set(rows))
    rerun = run_cli(env=env(url))
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.named("migrations_up_to_date")[0]["locked"] is False
    assert records(server, db) == rows


def at(event: dict[str, object]) -> float:
    return dt.datetime.fromisoformat(str(event["timestamp"])).timestamp()


@pytest.mark.parametrize("pause", ["server", "between"])
def test_lock_connection_killed(mariadb: MariaDB, pause: str) -> None:
    """The issue's case: the holder sleeps on the server inside a data migration (an InnoDB
    transaction), or sits between two migrations, when its lock connection is killed. The
    waiter takes the lock at once, but starts no migration while the holder is inside one: the
    holder stops (exit 70, its transaction rolled back) and the waiter does the rest (exit 0)."""
    db = mariadb.create_database()
    url = mariadb.url(db)
    # Long enough on the server that only a cancel (KILL QUERY) ends it before the socket is shut.
    seconds = "4" if pause == "between" else "10"
    holder = Running(env=env(url, SEEDED_PAUSE=pause, SEEDED_SECONDS=seconds))
    if pause == "between":
        holder.wait_for(is_event("migration_applied", app="seeded", name="0002_seed"))
    else:
        holder.wait_for(is_event("migration_started", app="seeded", name="0002_seed"))
        wait_until(lambda: sleep_runs_on_mariadb(mariadb))
    waiter = Running(env=env(url, SEEDED_PAUSE=""))
    waiter.wait_for(is_event("migration_lock_waiting"))
    kill_lock_session(mariadb, db)
    first, second = holder.finish(timeout=60), waiter.finish(timeout=90)
    assert first.returncode == 70, first.stderr
    lost = first.last()
    assert lost["event"] == "migration_lock_lost", first.stderr
    assert first.named("migration_lock_connection_lost")  # the keepalive noticed, within 2 s
    assert second.returncode == 0, second.stderr
    if pause == "server":  # the statement was cancelled (KILL QUERY): no socket to shut
        assert not first.named("migration_connections_shut")
    if pause == "between":  # the fence was given back after 0002: nothing to wait for
        assert not second.named("migration_fence_waiting")
        assert ("seeded", "0002_seed") in applied(first)
        assert ("seeded", "0002_seed") not in applied(second)
        assert ("seeded", "0003_after") in applied(second)
    else:
        assert (lost["migration"], lost["rolled_back"]) == ("seeded.0002_seed", True)
        assert ("seeded", "0002_seed") not in applied(first)
        assert ("seeded", "0002_seed") in applied(second)
    assert_complete_once(mariadb, url, db)


def sessions(server: MariaDB, db: str) -> set[int]:
    """The server's sessions on ``db`` (the query's own is not: it has no database)."""
    rows = server.execute(f"SELECT ID FROM information_schema.PROCESSLIST WHERE DB = '{db}'")
    return {int(str(session)) for (session,) in rows}


def test_a_waiter_whose_lock_session_is_killed_opens_another(mariadb: MariaDB) -> None:
    """A waiter holds one session, its lock's (GET_LOCK tries, the re-reads of
    django_migrations). Killed while the holder is inside a migration: the waiter opens a new
    one at its next try (it never refuses itself one), waits on, and ends 0 once the holder is
    done, having applied nothing."""
    db = mariadb.create_database()
    url = mariadb.url(db)
    holder = Running(env=env(url, SEEDED_PAUSE="server", SEEDED_SECONDS="6"))
    holder.wait_for(is_event("migration_started", app="seeded", name="0002_seed"))
    wait_until(lambda: sleep_runs_on_mariadb(mariadb))
    before = sessions(mariadb, db)
    waiter = Running(env=env(url, SEEDED_PAUSE="", ENTRYPOINT_MIGRATE_LOCK_TIMEOUT="30"))
    waiter.wait_for(is_event("migration_lock_waiting"))
    (session,) = sessions(mariadb, db) - before
    mariadb.execute(f"KILL CONNECTION {session}")
    first, second = holder.finish(timeout=60), waiter.finish(timeout=90)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert not applied(second)
    refusals = [e["error"] for e in second.named("migration_lock_attempt_failed")]
    assert not [r for r in refusals if "connection is closed" in r], refusals
    assert_complete_once(mariadb, url, db)


def test_the_commit_asks_the_server_and_the_waiter_waits(mariadb: MariaDB) -> None:
    """With the holder's keepalive silenced (SEEDED_NO_KEEPALIVE, see seeded/apps.py) nothing
    tells it that its lock connection was killed, and it sleeps on in its data migration. The
    waiter takes the lock but starts nothing while that transaction is open (the fence); the
    lock asked on the server, from the migrating connection, just before the commit refuses the
    commit and rolls it back; then the waiter applies it, once."""
    db = mariadb.create_database()
    url = mariadb.url(db)
    quiet = {"SEEDED_NO_KEEPALIVE": "1", "ENTRYPOINT_DB_NETWORK_TIMEOUT": "60"}
    holder = Running(env=env(url, SEEDED_PAUSE="server", SEEDED_SECONDS="5", **quiet))
    holder.wait_for(is_event("migration_started", app="seeded", name="0002_seed"))
    wait_until(lambda: sleep_runs_on_mariadb(mariadb))
    waiter = Running(env=env(url, SEEDED_PAUSE=""))
    waiter.wait_for(is_event("migration_lock_waiting"))
    kill_lock_session(mariadb, db)
    waiter.wait_for(is_event("migration_fence_waiting"))
    # While the holder's transaction is open, the waiter must not start.
    while sleep_runs_on_mariadb(mariadb):
        assert not [e for e in waiter.events() if e["event"] == "migration_started"]
        time.sleep(0.2)
    first, second = holder.finish(timeout=60), waiter.finish(timeout=90)
    assert first.returncode == 70, first.stderr
    assert not first.named("migration_lock_connection_lost")  # the keepalive said nothing
    assert (first.last()["migration"], first.last()["rolled_back"]) == ("seeded.0002_seed", True)
    assert ("seeded", "0002_seed") not in applied(first)
    assert second.returncode == 0, second.stderr
    assert ("seeded", "0002_seed") in applied(second)
    assert_complete_once(mariadb, url, db)


def test_barrier_waits_for_the_fence_then_ends_its_holder(mariadb: MariaDB) -> None:
    """A session holds the fence (work in flight elsewhere) and never lets go: the new holder
    plans nothing while it waits, then after ENTRYPOINT_DB_NETWORK_TIMEOUT ends that session."""
    db = mariadb.create_database()
    url = mariadb.url(db)
    elsewhere = pymysql.connect(unix_socket=str(mariadb.root / "sock"), user="root")
    with elsewhere.cursor() as cursor:
        cursor.execute(
            "SELECT GET_LOCK(%s, 0)", [f"django-entrypoint:fence:{default_lock_id()}:{db}"]
        )
        assert cursor.fetchone() == (1,)
    replica = Running(env=env(url, ENTRYPOINT_DB_NETWORK_TIMEOUT="4"))
    waiting = replica.wait_for(is_event("migration_fence_waiting"))
    assert f"connection_id={elsewhere.thread_id()}" in waiting["holder"]
    result = replica.finish(timeout=60)
    assert result.returncode == 0, result.stderr
    ended = result.named("migration_fence_holder_ended")[0]
    assert at(ended) - at(waiting) >= 3.5  # the network timeout, from the first wait
    started = result.named("migration_started")
    assert started
    assert min(at(e) for e in started) >= at(ended)
    with pytest.raises(pymysql.err.OperationalError), elsewhere.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert_complete_once(mariadb, url, db)


def test_lock_lost_between_two_ddl_statements(mariadb: MariaDB) -> None:
    """What the fence cannot do on MySQL: DDL commits by itself. shop 0002 creates a table, then
    the holder pauses in Python before the index (SEEDED_PAUSE=before_index), its keepalive
    silenced; the lock connection is killed meanwhile. The lock asked before the next DDL
    statement stops the holder before the index (exit 70, rolled_back false, the operations
    that may have run); the waiter starts only once it stopped, and fails on the table that
    exists (exit 70: nothing ran twice, nor at once); undoing the half by hand (the documented
    repair) lets the next start finish."""
    db = mariadb.create_database()
    url = mariadb.url(db)
    quiet = {"SEEDED_NO_KEEPALIVE": "1", "ENTRYPOINT_DB_NETWORK_TIMEOUT": "60"}
    holder = Running(env=env(url, SEEDED_PAUSE="before_index", SEEDED_SECONDS="4", **quiet))
    holder.wait_for(is_event("migration_started", app="shop", name="0002_order_slow"))
    table = "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_NAME = 'shop_order'"
    wait_until(lambda: mariadb.execute(f"{table} AND TABLE_SCHEMA = '{db}'") == [(1,)])
    waiter = Running(env=env(url))
    waiter.wait_for(is_event("migration_lock_waiting"))
    kill_lock_session(mariadb, db)
    first, second = holder.finish(timeout=60), waiter.finish(timeout=90)
    assert first.returncode == 70, first.stderr
    lost = first.last()
    assert (lost["event"], lost["migration"], lost["rolled_back"]) == (
        "migration_lock_lost",
        "shop.0002_order_slow",
        False,
    ), first.stderr
    assert lost["may_have_run"][0] == "Create model Order"
    index = (
        "SELECT COUNT(*) FROM information_schema.STATISTICS"
        " WHERE TABLE_SCHEMA = DATABASE() AND INDEX_NAME = 'shop_order_qty_idx'"
    )
    assert mariadb.execute(index, db) == [(0,)]  # the holder stopped before AddIndex
    assert ("shop", "0002_order_slow") not in records(mariadb, db)
    assert second.returncode == 70, second.stderr
    failed = second.last()
    assert failed["event"] == "migration_failed"
    assert "shop.0002_order_slow" in failed["error"]
    assert "already exists" in failed["error"]
    assert second.named("migration_fence_waiting")  # it waited for the holder to stop
    mariadb.execute("DROP TABLE shop_order", db)  # the documented repair: undo, run again
    rerun = run_cli(env=env(url))
    assert rerun.returncode == 0, rerun.stderr
    assert ("shop", "0002_order_slow") in applied(rerun)
