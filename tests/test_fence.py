"""Exactly-once when the lock's connection is lost: the fence, the keepalive, the lock's edges.

Each test attacks the holder the way production does: its lock session terminated while a
migration is in flight, the process frozen, a pooler's idle timeout, a server restart.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from entrypoint.config import default_lock_id
from tests.cli import django_cmd, finish, migrate_env, run_cli, run_django, start_cli
from tests.netns import silenced, skip_reason
from tests.services import PgBouncer, Postgres
from tests.watch import Running, applied, is_event, recorded, sleeping_on_server

# The session holding the migration lock (int8 advisory key: objsubid 1), not its waiters'.
LOCK_SESSIONS = (
    "SELECT pg_terminate_backend(pid) FROM pg_locks"
    " WHERE locktype = 'advisory' AND granted AND objsubid = 1"
)


def env(url: str, **extra: str) -> dict[str, str]:
    return migrate_env(url, **({"TESTPROJ_LEDGER": "1", "ENTRYPOINT_LOG_LEVEL": "debug"} | extra))


def ledger_rows(pg: Postgres, db: str) -> list[tuple[object, ...]]:
    return pg.execute("SELECT note FROM ledger_entry", db)


def ledger_records(pg: Postgres, db: str) -> list[tuple[object, ...]]:
    return pg.execute("SELECT name FROM django_migrations WHERE app = 'ledger' ORDER BY name", db)


def assert_once(pg: Postgres, db: str) -> None:
    assert ledger_rows(pg, db) == [("once",)]
    assert ledger_records(pg, db) == [("0001_initial",), ("0002_entry_once",)]
    rows = recorded(pg, db)
    assert len(rows) == len(set(rows))


def holder_and_waiter(url: str, **extra: str) -> tuple[Running, Running]:
    """A holder inside ledger 0002 (its row inserted, sleeping on the server) and a waiter,
    whose own run of 0002, when it takes over, does not sleep."""
    holder = Running(env=env(url, **extra))
    holder.wait_for(is_event("migration_started", app="ledger", name="0002_entry_once"))
    waiter = Running(env=env(url, **(extra | {"LEDGER_SECONDS": "0"})))
    waiter.wait_for(is_event("migration_lock_waiting"))
    return holder, waiter


def test_lock_session_terminated_mid_data_migration(pg: Postgres) -> None:
    """pg_terminate_backend on the lock session while its row is uncommitted: applied once."""
    db = pg.create_database()
    url = pg.url(db)
    holder, waiter = holder_and_waiter(url, LEDGER_SECONDS="30")
    sleeping_on_server(pg)
    assert pg.execute(LOCK_SESSIONS) == [(True,)]
    first, second = holder.finish(timeout=60), waiter.finish(timeout=90)
    assert first.returncode == 70, first.stderr
    assert "ledger.0002_entry_once" in first.named("migration_lock_lost")[0]["error"]
    assert second.returncode == 0, second.stderr
    assert ("ledger", "0002_entry_once") in applied(second)
    assert_once(pg, db)
    rerun = run_cli(env=env(url))
    assert rerun.returncode == 0, rerun.stderr
    assert_once(pg, db)


def test_new_holder_waits_for_a_frozen_holders_work(pg: Postgres) -> None:
    """The holder is frozen (SIGSTOP) mid-migration and its lock session killed: the new holder
    takes the lock but does not plan while that work is in flight on the server."""
    db = pg.create_database()
    url = pg.url(db)
    holder, waiter = holder_and_waiter(url, LEDGER_SECONDS="30")
    sleeping_on_server(pg)
    holder.proc.send_signal(signal.SIGSTOP)
    try:
        assert pg.execute(LOCK_SESSIONS) == [(True,)]
        waiter.wait_for(is_event("migration_lock_acquired"))
        fence = waiter.wait_for(is_event("migration_fence_waiting"))
        assert "django-entrypoint" in fence["holder"]
        time.sleep(3)  # the waiter holds the lock, the frozen holder's row is uncommitted
        assert not [e for e in waiter.events() if e["event"] == "migration_started"]
    finally:
        holder.proc.send_signal(signal.SIGCONT)
    first, second = holder.finish(timeout=60), waiter.finish(timeout=90)
    assert first.returncode == 70, first.stderr
    assert "rolled back" in first.named("migration_lock_lost")[0]["error"]
    assert second.returncode == 0, second.stderr
    assert_once(pg, db)


def take_fence(conn: psycopg.Connection) -> None:
    """The fence (the lock key's halves as an int4 pair), in ``conn``'s open transaction."""
    unsigned = default_lock_id() % 2**64
    halves = [h - 2**32 if h >= 2**31 else h for h in (unsigned >> 32, unsigned & 0xFFFFFFFF)]
    conn.execute("SELECT pg_advisory_xact_lock(%s::int, %s::int)", halves)


def test_barrier_waits_for_whoever_holds_the_fence(pg: Postgres) -> None:
    """Work in flight elsewhere (the fence held in an open transaction): no plan, no apply."""
    db = pg.create_database()
    url = pg.url(db)
    with psycopg.connect(url, application_name="in-flight-elsewhere") as conn:
        take_fence(conn)
        proc = Running(env=env(url))
        event = proc.wait_for(is_event("migration_fence_waiting"))
        assert "in-flight-elsewhere" in event["holder"]
        time.sleep(1)
        assert not [e for e in proc.events() if e["event"] == "migration_started"]
        assert pg.execute("SELECT to_regclass('django_migrations')", db) == [(None,)]
    result = proc.finish()
    assert result.returncode == 0, result.stderr
    assert_once(pg, db)


def lock_session(pg: Postgres) -> tuple[int, int]:
    """The server pid and client port of the session that holds the migration lock."""
    [(pid, port)] = pg.execute(
        "SELECT a.pid, a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
    )
    assert isinstance(pid, int)
    assert isinstance(port, int)
    return pid, port


def end_unheard(pg: Postgres, pid: int) -> None:
    """The lock's session ended on the server, its client left unaware: the keepalive's pings
    go unanswered for the network timeout (10 s), so only the server can tell the holder."""
    assert pg.execute(f"SELECT pg_terminate_backend({pid})") == [(True,)]


@pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")
def test_lock_lost_unheard_just_before_commit_commits_nothing(pg: Postgres) -> None:
    """The lock's session ends while ledger 0002's row is uncommitted, and its connection is
    silent (a dead network): the keepalive cannot tell yet, so the question asked of the server
    just before the commit is what keeps the row from committing without the lock."""
    db = pg.create_database()
    holder = Running(env=env(pg.url(db), LEDGER_SECONDS="5"))
    holder.wait_for(is_event("migration_started", app="ledger", name="0002_entry_once"))
    sleeping_on_server(pg)
    pid, port = lock_session(pg)
    with silenced(pg.port, port):
        end_unheard(pg, pid)
        result = holder.finish(timeout=90)
    assert result.returncode == 70, result.stderr
    [lost] = result.named("migration_lock_lost")
    assert "ledger.0002_entry_once" in lost["error"]
    assert lost["rolled_back"] is True
    assert ledger_rows(pg, db) == []
    assert ledger_records(pg, db) == [("0001_initial",)]
    rerun = run_cli(env=env(pg.url(db)))
    assert rerun.returncode == 0, rerun.stderr
    assert_once(pg, db)


@pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")
def test_lock_lost_unheard_while_waiting_for_the_fence_starts_nothing(pg: Postgres) -> None:
    """The holder waits for the fence before main 0001 (another session holds it) when its
    lock's session ends unheard: once the fence is free it takes it, asks whether the lock is
    still its own, and stops there, before any statement of main 0001."""
    db = pg.create_database()
    holder = Running(env=env(pg.url(db), LEDGER_SECONDS="5"))
    holder.wait_for(is_event("migration_started", app="ledger", name="0002_entry_once"))
    with psycopg.connect(pg.url(db), application_name="fence-taker") as conn:
        take_fence(conn)  # queued behind ledger 0002's work: ours at its commit
        holder.wait_for(is_event("migration_started", app="main", name="0001_initial"))
        pid, port = lock_session(pg)
        with silenced(pg.port, port):
            end_unheard(pg, pid)
            conn.commit()  # the fence is free: the holder takes it
            result = holder.finish(timeout=90)
    assert result.returncode == 70, result.stderr
    [lost] = result.named("migration_lock_lost")
    assert "no longer held by this process" in lost["error"]
    assert "before main.0001_initial could start, nothing of it ran" in lost["error"]
    assert pg.execute("SELECT to_regclass('main_item')", db) == [(None,)]
    assert ("main", "0001_initial") not in recorded(pg, db)
    assert_once(pg, db)  # ledger 0002 committed under the lock, before it was lost


@pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")
def test_lock_lost_unheard_before_a_fake_run_records_nothing(pg: Postgres) -> None:
    """``lockedmigrate --fake`` records migrations without running them: no fence is taken and
    no commit asked about, so the question asked before each migration starts is its only lock
    check. The lock's session ends unheard while the holder waits at the barrier: it records
    nothing. (django_migrations exists already: creating it would take the fence.)"""
    db = pg.create_database()
    first = run_django("lockedmigrate", "--fake", "contenttypes", "0001", env=env(pg.url(db)))
    assert first.returncode == 0, first.stderr
    with psycopg.connect(pg.url(db), application_name="in-flight-elsewhere") as conn:
        take_fence(conn)
        holder = Running("lockedmigrate", "--fake", env=env(pg.url(db)), command=django_cmd)
        holder.wait_for(is_event("migration_fence_waiting"))
        pid, port = lock_session(pg)
        with silenced(pg.port, port):
            end_unheard(pg, pid)
            conn.commit()  # the barrier passes: the holder plans, then asks before the first
            result = holder.finish(timeout=90)
    assert result.returncode == 70, result.stderr
    [lost] = result.named("migration_lock_lost")
    assert "the migration lock's connection was lost before" in lost["error"]
    assert not result.named("migration_applied")
    assert recorded(pg, db) == [("contenttypes", "0001_initial")]


def test_a_non_atomic_migration_holds_the_fence_while_it_runs(pg: Postgres) -> None:
    """pgonly 0002 (not atomic: CREATE INDEX CONCURRENTLY) runs outside any transaction of the
    migrating connection: the fence is held on a connection of its own for as long as it runs,
    so that a new holder's barrier would wait for it."""
    db = pg.create_database()
    holder = Running(env=env(pg.url(db), TESTPROJ_PG_APPS="1", SLOW_MIGRATION_SECONDS="3"))
    holder.wait_for(is_event("migration_started", app="pgonly", name="0002_concurrent_index"))
    sleeping_on_server(pg)
    fence = pg.execute(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2"
    )
    assert [str(app).split()[:2] for (app,) in fence] == [["django-entrypoint", "fence"]]
    result = holder.finish()
    assert result.returncode == 0, result.stderr


def test_the_keepalive_ends_with_the_lock(pg: Postgres, tmp_path: Path) -> None:
    """Once the lock is released nothing pings it any more: a step after migrate (a hook of
    5 s, over two keepalive periods) hears no word of a lost lock, and no statement of it is
    cancelled for one."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    pause = hooks / "10-pause"
    pause.write_text("#!/bin/sh\nsleep 5\n")
    pause.chmod(0o755)
    db = pg.create_database()
    steps = {"ENTRYPOINT_STEPS": "migrate,hooks", "ENTRYPOINT_HOOKS_DIR": str(hooks)}
    result = run_cli(env=env(pg.url(db), **steps))
    assert result.returncode == 0, result.stderr
    assert result.named("hook_finished")
    assert [e for e in result.events if e["level"] == "error"] == []
    assert_once(pg, db)


def test_record_commits_with_the_migrations_own_work(pg: Postgres) -> None:
    """shop 0002 has deferred SQL (a foreign key): its record is in the same transaction."""
    db = pg.create_database()
    result = run_cli(env=env(pg.url(db)))
    assert result.returncode == 0, result.stderr
    record = pg.execute(
        "SELECT xmin::text FROM django_migrations WHERE app = 'shop' AND name = '0002_order_slow'",
        db,
    )
    fk = pg.execute(
        "SELECT xmin::text FROM pg_constraint WHERE conrelid = 'shop_order'::regclass"
        " AND contype = 'f'",
        db,
    )
    assert record == fk


@pytest.fixture
def idle_bouncer(pg: Postgres) -> Iterator[PgBouncer]:
    """Transaction pooling that drops clients idle in a transaction for 5 s."""
    server = PgBouncer(pg, extra="idle_transaction_timeout = 5\n")
    server.start()
    yield server
    server.stop()


def test_keepalive_outlives_pgbouncer_idle_transaction_timeout(
    pg: Postgres, idle_bouncer: PgBouncer
) -> None:
    """The migration takes 12 s, PgBouncer drops sessions idle in a transaction after 5 s: the
    lock session stays alive, the holder finishes, the waiter finds the work done."""
    db = pg.create_database()
    url = pg.url(db, port=idle_bouncer.port)
    holder, waiter = holder_and_waiter(url, LEDGER_SECONDS="12")
    first, second = holder.finish(timeout=90), waiter.finish(timeout=90)
    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    assert ("ledger", "0002_entry_once") in applied(first)
    assert not applied(second)
    assert_once(pg, db)


def test_fleet_with_create_index_concurrently(pg: Postgres) -> None:
    """Ten replicas, a non-atomic CIC migration under the fence: no deadlock, applied once."""
    db = pg.create_database()
    fleet = env(pg.url(db), TESTPROJ_PG_APPS="1", SLOW_MIGRATION_SECONDS="1")
    procs = [start_cli(env=fleet) for _ in range(10)]
    results = [finish(p, timeout=240) for p in procs]
    assert [r.returncode for r in results] == [0] * 10, [r.stderr for r in results if r.returncode]
    assert len([r for r in results if applied(r)]) == 1
    assert pg.execute(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'pgonly_thing_name_idx'::regclass", db
    ) == [(True,)]
    assert_once(pg, db)


@pytest.mark.parametrize("key", [str(-(2**63)), str(2**63 - 1)])
def test_lock_ids_at_both_ends_of_the_range(pg: Postgres, key: str) -> None:
    db = pg.create_database()
    step = run_cli(env=env(pg.url(db), ENTRYPOINT_MIGRATE_LOCK_ID=key))
    assert step.returncode == 0, step.stderr
    assert_once(pg, db)
    other = pg.create_database()
    command = run_django("lockedmigrate", "-L", key, env=env(pg.url(other)))
    assert command.returncode == 0, command.stderr
    assert_once(pg, other)


@pytest.mark.parametrize("key", [str(2**63), str(-(2**63) - 1), "99999999999999999999"])
def test_out_of_range_lock_ids_are_refused_at_once(pg: Postgres, key: str) -> None:
    db = pg.create_database()
    step = run_cli(env=env(pg.url(db), ENTRYPOINT_MIGRATE_LOCK_ID=key))
    command = run_django("lockedmigrate", "-L", key, env=env(pg.url(db)))
    for result in (step, command):
        assert result.returncode == 78, result.stderr
        assert "-9223372036854775808 to 9223372036854775807" in result.last()["error"]
    assert "ENTRYPOINT_MIGRATE_LOCK_ID" in step.last()["error"]
    assert "--lock-id" in command.last()["error"]
    assert pg.execute("SELECT to_regclass('django_migrations')", db) == [(None,)]


def test_server_restart_while_a_replica_waits(own_pg: Postgres) -> None:
    """The holder dies with the server; the waiter reconnects both its connections and ends 0."""
    own_pg.start()
    db = own_pg.create_database()
    url = own_pg.url(db)
    holder, waiter = holder_and_waiter(url, LEDGER_SECONDS="60")
    own_pg.stop("fast")
    waiter.wait_for(is_event("migration_lock_attempt_failed"))
    own_pg.start()
    second = waiter.finish(timeout=120)
    assert second.returncode == 0, second.stderr
    assert holder.finish(timeout=30).returncode != 0
    assert_once(own_pg, db)


def test_first_lock_connection_refused_is_retried(pg: Postgres) -> None:
    """The role's connection limit is reached when the holder connects: the lock is given back
    (the holder needs three sessions: Django's, the lock's, the fence's), retried, 0 once freed."""
    db = pg.create_database()
    url = pg.owned_by_role(db, f"limited_{db}", 3)
    with psycopg.connect(url):  # takes one of the three slots
        proc = Running(env=env(url, ENTRYPOINT_MIGRATE_LOCK_TIMEOUT="60"))
        failed = proc.wait_for(is_event("migration_lock_given_back"))
        assert "too many connections" in failed["error"]
    result = proc.finish()
    assert result.returncode == 0, result.stderr
    assert_once(pg, db)
