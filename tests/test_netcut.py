"""A cut network never hangs a replica or the fleet (PostgreSQL on a host behind links we cut).

The server runs in a network namespace (tests/netns.py). The lock holder reaches it over link
``a``, a second replica over link ``b``; one link is then cut while the other stays healthy,
either set down (packets vanish, no reset) or left up with every packet dropped. Whatever the
holder was doing, it must give up within seconds, the server must reap its sessions (the
migrating one holds the fence), and the replica on the healthy path must finish the work,
exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli import migrate_env, run_cli
from tests.netns import NetnsPostgres, hosted, skip_reason
from tests.watch import Running, applied, ends_within, is_event, recorded, wait_until

pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")

NETWORK_TIMEOUT = 5  # ENTRYPOINT_DB_NETWORK_TIMEOUT here: short, so that the tests are too
HOLDER_GIVES_UP = 15.0  # the bound, from the cut to the holder's exit
# "within about two network timeouts of the cut", plus a replica's own start-up slack
FLEET_HEALS = 2 * NETWORK_TIMEOUT + 10.0
PAUSE = "30"  # seconds the seed migration pauses: far longer than any bound above
CUTS = ["down", "drop"]


@pytest.fixture(scope="module")
def host() -> Iterator[NetnsPostgres]:
    """One test host for the module; its namespace and links are deleted whatever happens."""
    with hosted(NetnsPostgres()) as server:
        yield server


@pytest.fixture
def db(host: NetnsPostgres) -> Iterator[str]:
    """A database of its own; every link healthy again after the test."""
    yield host.create_database()
    host.heal_all()


def env(host: NetnsPostgres, db: str, link: str, **extra: str) -> dict[str, str]:
    defaults = {
        "TESTPROJ_SEEDED": "1",
        "ENTRYPOINT_DB_NETWORK_TIMEOUT": str(NETWORK_TIMEOUT),
        "ENTRYPOINT_MIGRATE_LOCK_TIMEOUT": "60",
        "ENTRYPOINT_LOG_LEVEL": "debug",
    }
    return migrate_env(host.url(db, link=link), **(defaults | extra))


def seeds(host: NetnsPostgres, db: str) -> list[tuple[object, ...]]:
    return host.execute("SELECT note FROM seeded_seed ORDER BY note", db)


def assert_complete_once(host: NetnsPostgres, db: str) -> None:
    """Each seed row once, each migration recorded once, nothing left to apply."""
    assert seeds(host, db) == [("after",), ("once",)]
    rows = recorded(host, db)
    assert len(rows) == len(set(rows))
    assert [r for r in rows if r[0] == "seeded"] == [
        ("seeded", "0001_initial"),
        ("seeded", "0002_seed"),
        ("seeded", "0003_after"),
    ]
    rerun = run_cli(env=env(host, db, "b"))
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.named("migrations_up_to_date")[0]["locked"] is False


def migrating_idle_in_transaction(host: NetnsPostgres) -> bool:
    """The seed row is inserted and the migration's transaction waits on the client."""
    return host.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'"
        " AND application_name LIKE 'django-entrypoint migrating%'"
    ) != [(0,)]


def sleeping_on_server(host: NetnsPostgres) -> bool:
    return host.execute(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE state = 'active' AND query LIKE 'SELECT pg_sleep%'"
    ) != [(0,)]


def holder_in(host: NetnsPostgres, db: str, pause: str, **extra: str) -> Running:
    """A holder on link a, pausing as ``pause`` says, with its seed work in flight (or done)."""
    holder = Running(env=env(host, db, "a", SEEDED_PAUSE=pause, SEEDED_SECONDS=PAUSE, **extra))
    if pause == "between":
        holder.wait_for(is_event("migration_applied", app="seeded", name="0002_seed"))
    else:
        holder.wait_for(is_event("migration_started", app="seeded", name="0002_seed"))
        in_flight = sleeping_on_server if pause == "server" else migrating_idle_in_transaction
        wait_until(lambda: in_flight(host))
    return holder


@pytest.mark.parametrize("how", CUTS)
@pytest.mark.parametrize("pause", ["python", "server", "between"])
def test_holder_cut_off_gives_up_and_the_fleet_heals(
    host: NetnsPostgres, db: str, pause: str, how: str
) -> None:
    """The holder's link goes silent while it sleeps in RunPython, waits on pg_sleep, or sits
    between two migrations: it exits 70 within 15 s, the server reaps its sessions, and the
    replica on the healthy link applies what was interrupted, once."""
    holder = holder_in(host, db, pause)
    waiter = Running(env=env(host, db, "b"))
    waiter.wait_for(is_event("migration_lock_waiting"))
    host.cut("a", how)
    cut = time.time()
    first, gave_up = ends_within(holder, cut, HOLDER_GIVES_UP)
    assert first.returncode == 70, first.stderr
    lost = first.last()
    # Which of the holder's connections tells first is a race: the lock's or the migrating one.
    assert lost["event"] in ("migration_lock_lost", "migration_connection_lost"), first.stderr
    if pause == "between":
        assert "between migrations" in lost["error"] or "0003_after" in lost["error"]
    else:
        assert "seeded.0002_seed" in lost["error"]
        assert lost["migration"] == "seeded.0002_seed"
        assert lost["rolled_back"] is True  # atomic: the server rolls it back as it reaps it
    second, healed = ends_within(waiter, cut, FLEET_HEALS)
    assert second.returncode == 0, second.stderr
    done = applied(second)
    assert ("seeded", "0003_after") in done
    assert (("seeded", "0002_seed") in done) == (pause != "between")
    assert_complete_once(host, db)
    how_ended = "forced exit" if lost.get("forced") else "unwound"
    print(
        f"{pause}/{how}: holder exited {gave_up:.1f}s after the cut ({how_ended}), waiter {healed:.1f}s"
    )


@pytest.mark.parametrize("how", CUTS)
def test_waiter_cut_off_gives_up_in_time(
    host: NetnsPostgres, db: str, how: str, tmp_path: Path
) -> None:
    """The waiter's own link goes silent while it waits for the lock: it ends 69 or 75 within
    its lock timeout and one network timeout; the holder on its healthy link is undisturbed."""
    lock_timeout = 6.0
    release = tmp_path / "release"  # the holder's pause ends once the waiter has given up
    holder = holder_in(host, db, "python", SEEDED_RELEASE=str(release))
    waiter = Running(
        env=env(host, db, "b", ENTRYPOINT_MIGRATE_LOCK_TIMEOUT=str(lock_timeout), SEEDED_PAUSE="")
    )
    waiting = time.time()
    waiter.wait_for(is_event("migration_lock_waiting"))
    host.cut("b", how)
    second, took = ends_within(waiter, waiting, lock_timeout + NETWORK_TIMEOUT + 5)
    assert second.returncode in (69, 75), second.stderr
    assert not applied(second)
    assert holder.proc.poll() is None  # it held the lock all along
    release.touch()
    first = holder.finish(timeout=60)
    assert first.returncode == 0, first.stderr
    assert not first.named("migration_lock_lost")
    host.heal("b")
    assert_complete_once(host, db)
    print(f"waiter/{how}: exited {second.returncode} {took:.1f}s after it started waiting")


@pytest.mark.parametrize("wait_for", ["connection", "migrations"])
def test_wait_deadline_holds_when_the_link_is_cut(
    host: NetnsPostgres, db: str, wait_for: str
) -> None:
    """The wait step's probes meet a silent link mid-wait: exit 69 at the deadline, no later.

    Dropped packets, not a link set down: with the link down a new connection fails at once
    (no route), and the deadline is never at stake."""
    how = "drop"
    timeout = 8.0
    if wait_for == "connection":
        # Seen not answering first (the link down fails at once): only then does the stable
        # period apply, which keeps the wait probing until just before its deadline.
        host.cut("a", "down")
    started = time.time()
    proc = Running(
        env=env(
            host,
            db,
            "a",
            ENTRYPOINT_STEPS="wait",
            ENTRYPOINT_WAIT_FOR=wait_for,
            ENTRYPOINT_WAIT_TIMEOUT=str(timeout),
            # connection: stable only just before the deadline; migrations: never migrated
            ENTRYPOINT_WAIT_STABLE="7" if wait_for == "connection" else "0",
        )
    )
    if wait_for == "connection":
        proc.wait_for(is_event("db_check_failed"))
        host.heal("a")
    proc.wait_for(is_event("db_answering"))
    host.cut("a", how)
    result, took = ends_within(proc, started, timeout + 4)
    assert result.returncode == 69, result.stderr
    assert result.last()["event"] == "db_unavailable_timeout"
    print(f"wait/{wait_for}/{how}: exited 69 {took:.1f}s after start (deadline {timeout:g}s)")


def test_without_a_lock_the_migrating_connection_notices_alone(
    host: NetnsPostgres, db: str
) -> None:
    """ENTRYPOINT_MIGRATE_LOCK_MODE=none: no lock, no keepalive, only Django's own connection,
    waiting on pg_sleep when its link goes silent. Its keepalives (the network timeout in the
    alias's OPTIONS) end the wait; the server drops the session within the same bound, long
    before its statement would have ended, and rolls the seed back."""
    holder = Running(
        env=env(
            host,
            db,
            "a",
            ENTRYPOINT_MIGRATE_LOCK_MODE="none",
            SEEDED_PAUSE="server",
            SEEDED_SECONDS=PAUSE,
        )
    )
    holder.wait_for(is_event("migration_started", app="seeded", name="0002_seed"))
    wait_until(lambda: sleeping_on_server(host))
    host.cut("a", "drop")
    cut = time.time()
    first, gave_up = ends_within(holder, cut, HOLDER_GIVES_UP)
    assert first.returncode == 70, first.stderr
    lost = first.last()
    assert lost["event"] == "migration_connection_lost", first.stderr
    assert (lost["migration"], lost["rolled_back"]) == ("seeded.0002_seed", True)
    # The statement sleeps for PAUSE (30 s) from before the cut: the server must end it sooner.
    reaped_by = cut + 2 * NETWORK_TIMEOUT + 5
    wait_until(lambda: not sleeping_on_server(host), timeout=max(reaped_by - time.time(), 0.1))
    assert seeds(host, db) == []
    rerun = run_cli(env=env(host, db, "b"))
    assert rerun.returncode == 0, rerun.stderr
    assert_complete_once(host, db)
    print(f"no lock: exited {gave_up:.1f}s after the cut")


def test_a_blip_shorter_than_the_network_timeout_is_ridden_out(
    host: NetnsPostgres, db: str
) -> None:
    """The trade-off's other side: with ENTRYPOINT_DB_NETWORK_TIMEOUT=30 a 12 s silence on the
    holder's link is waited out (the default of 10 s would have given up): it finishes, once."""
    blip = 12.0
    holder = Running(
        env=env(
            host,
            db,
            "a",
            ENTRYPOINT_DB_NETWORK_TIMEOUT="30",
            SEEDED_PAUSE="python",
            SEEDED_SECONDS=str(blip + 4),
        )
    )
    holder.wait_for(is_event("migration_started", app="seeded", name="0002_seed"))
    wait_until(lambda: migrating_idle_in_transaction(host))
    host.cut("a", "drop")
    time.sleep(blip)
    host.heal("a")
    result = holder.finish(timeout=60)
    assert result.returncode == 0, result.stderr
    assert not result.named("migration_lock_connection_lost")
    assert_complete_once(host, db)
