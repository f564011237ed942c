"""A cut network never hangs a replica on MariaDB, and nothing runs twice.

The server runs in a network namespace (tests/netns.py). The lock holder reaches it over link
``a``, a second replica over link ``b``; link ``a`` is then cut while the holder is inside a
data migration. The holder must give up within seconds; on the server its sessions stay (MySQL
has no per-session keepalive), but the lock's goes within the network timeout of its last ping
(``wait_timeout``) and the new holder ends the migrating one, which holds the fence; the replica
on the healthy link then applies the interrupted migration, once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.cli import migrate_env, run_cli
from tests.netns import NetnsMariaDB, hosted, skip_reason
from tests.watch import Running, applied, ends_within, is_event, wait_until

pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")

NETWORK_TIMEOUT = 5  # ENTRYPOINT_DB_NETWORK_TIMEOUT here: short, so that the tests are too
HOLDER_GIVES_UP = 15.0  # from the cut to the holder's exit, as on PostgreSQL
# The lock's session freed one network timeout after the holder's last ping, the fence's holder
# ended one more network timeout later, plus a replica's own slack.
FLEET_HEALS = 2 * NETWORK_TIMEOUT + 12.0


@pytest.fixture(scope="module")
def host() -> Iterator[NetnsMariaDB]:
    """One test host for the module; its namespace and links are deleted whatever happens."""
    with hosted(NetnsMariaDB()) as server:
        yield server


@pytest.fixture
def db(host: NetnsMariaDB) -> Iterator[str]:
    """A database of its own; every link healthy again after the test."""
    yield host.create_database()
    host.net.heal_all()


def env(host: NetnsMariaDB, db: str, link: str, **extra: str) -> dict[str, str]:
    defaults = {
        "TESTPROJ_SEEDED": "1",
        "ENTRYPOINT_DB_NETWORK_TIMEOUT": str(NETWORK_TIMEOUT),
        "ENTRYPOINT_MIGRATE_LOCK_TIMEOUT": "60",
        "ENTRYPOINT_LOG_LEVEL": "debug",
    }
    return migrate_env(host.url(db, link=link), **(defaults | extra))


def in_flight(host: NetnsMariaDB, db: str, pause: str) -> bool:
    """The seed row inserted and not committed: sleeping on the server, or in Python."""
    if pause == "server":
        query = f"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = '{db}' AND INFO LIKE 'SELECT SLEEP%'"
    else:
        query = (
            "SELECT COUNT(*) FROM information_schema.INNODB_TRX t"
            " JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id"
            f" WHERE p.DB = '{db}' AND t.trx_rows_modified > 0"
        )
    return host.execute(query) != [(0,)]


def assert_complete_once(host: NetnsMariaDB, db: str) -> None:
    """Each seed row once, each migration recorded once, nothing left to apply."""
    assert host.execute("SELECT note FROM seeded_seed ORDER BY note", db) == [("after",), ("once",)]
    rows = host.execute("SELECT app, name FROM django_migrations ORDER BY app, name", db)
    assert len(rows) == len(set(rows))
    rerun = run_cli(env=env(host, db, "b"))
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.named("migrations_up_to_date")[0]["locked"] is False


@pytest.mark.parametrize(("pause", "how"), [("server", "drop"), ("python", "down")])
def test_holder_cut_off_gives_up_and_the_fleet_heals(
    host: NetnsMariaDB, db: str, pause: str, how: str
) -> None:
    """The holder's link goes silent while it sleeps on the server (SLEEP) or in Python inside
    its data migration: it exits 70 within 15 s; the replica on the healthy link takes the
    lock once the server dropped the holder's lock session, ends the holder's migrating session
    (the fence's), and applies the interrupted migration, once."""
    holder = Running(env=env(host, db, "a", SEEDED_PAUSE=pause, SEEDED_SECONDS="30"))
    holder.wait_for(is_event("migration_started", app="seeded", name="0002_seed"))
    wait_until(lambda: in_flight(host, db, pause))
    waiter = Running(env=env(host, db, "b"))
    waiter.wait_for(is_event("migration_lock_waiting"))
    host.net.cut("a", how)
    cut = time.time()
    first, gave_up = ends_within(holder, cut, HOLDER_GIVES_UP)
    assert first.returncode == 70, first.stderr
    lost = first.last()
    # Which of the holder's connections tells first is a race: the lock's or the migrating one.
    assert lost["event"] in ("migration_lock_lost", "migration_connection_lost"), first.stderr
    assert (lost["migration"], lost["rolled_back"]) == ("seeded.0002_seed", True)
    second, healed = ends_within(waiter, cut, FLEET_HEALS)
    assert second.returncode == 0, second.stderr
    assert second.named("migration_fence_holder_ended")  # the cut-off session held the fence
    assert {("seeded", "0002_seed"), ("seeded", "0003_after")} <= set(applied(second))
    assert_complete_once(host, db)
    how_ended = "forced exit" if lost.get("forced") else "unwound"
    print(
        f"{pause}/{how}: holder exited {gave_up:.1f}s after the cut ({how_ended}), waiter {healed:.1f}s"
    )


def test_without_a_lock_the_migrating_connection_notices_alone(host: NetnsMariaDB, db: str) -> None:
    """ENTRYPOINT_MIGRATE_LOCK_MODE=none: no lock, no keepalive, only Django's own connection,
    waiting on SLEEP when its link goes silent. The keepalives on its socket end the wait within
    the network timeout (a read timeout would end any long statement too). Without the lock's
    guard Django runs each RunPython in a transaction of its own on MySQL: the seed's stays,
    and the report says so."""
    holder = Running(
        env=env(
            host,
            db,
            "a",
            ENTRYPOINT_MIGRATE_LOCK_MODE="none",
            SEEDED_PAUSE="server",
            SEEDED_SECONDS="60",
        )
    )
    holder.wait_for(is_event("migration_started", app="seeded", name="0002_seed"))
    wait_until(lambda: in_flight(host, db, "server"))
    host.net.cut("a", "drop")
    cut = time.time()
    first, gave_up = ends_within(holder, cut, HOLDER_GIVES_UP)
    assert first.returncode == 70, first.stderr
    lost = first.last()
    assert lost["event"] == "migration_connection_lost", first.stderr
    assert (lost["migration"], lost["rolled_back"]) == ("seeded.0002_seed", False)
    print(f"no lock: exited {gave_up:.1f}s after the cut")
