"""A fleet bigger than the server's connection slots: it waits instead of failing.

16 replicas of migproj with the ledger app (27 migrations, one of them a data migration that
inserts one row) start together against a role allowed 12 connections (``CONNECTION LIMIT``:
'too many connections for role', SQLSTATE 53300, the same refusal as a full server). Every
replica exits 0, each migration is recorded once and the data migration's row exists once;
sampled from pg_stat_activity meanwhile, each replica holds the sessions docs/steps.md
promises: a waiter one, the holder three or four.
"""

from __future__ import annotations

import re
import threading
import time
from collections import defaultdict

import psycopg
import pytest

from tests.cli import Result, finish, migrate_env, run_cli, start_cli
from tests.services import MariaDB, Postgres
from tests.watch import Running, is_event

REPLICAS, SLOTS = 16, 12
HOLDER_MOST = 4  # Django's, the lock's, the fence's, and the watcher's when a slot is free
WAITER_MOST = 1
STEADY = 0.3  # seconds a replica's set of sessions must last to count (not a hand-over)
SESSIONS = (
    "SELECT a.pid, a.application_name, EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid"
    " AND l.locktype = 'advisory' AND l.granted AND l.objsubid = 1)"
    " FROM pg_stat_activity a WHERE a.usename = %s AND a.datname = %s"
)
REPLICA = re.compile(r"^django-entrypoint \S+ \S+ pid=(\d+)$")


class Sampler:
    """pg_stat_activity every 50 ms: each replica's sessions (server pids), and who holds the
    lock. A replica's set of sessions counts once it lasted STEADY seconds unchanged: a
    connection closed while the next opens may show both for an instant."""

    def __init__(self, pg: Postgres, role: str, db: str) -> None:
        self.conn = psycopg.connect(pg.url(db), autocommit=True)
        self.args = (role, db)
        self.current: dict[int, tuple[frozenset[int], float]] = {}  # replica: sessions, since
        self.steady: dict[str, int] = defaultdict(int)  # "holder", "waiter": most sessions held
        self.holder_seen = 0  # most sessions a holder was seen with, steady or not
        self.seen: set[tuple[str, tuple[str, ...]]] = set()  # steady states, by session names
        self.named: set[str] = set()  # application names no replica's name pattern matched
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(0.05):
            self.sample(self.conn.execute(SESSIONS, self.args).fetchall())

    def sample(self, rows: list[tuple[int, str, bool]]) -> None:
        now = time.monotonic()
        sessions: dict[int, set[int]] = defaultdict(set)
        names: dict[int, list[str]] = defaultdict(list)
        holders: set[int] = set()
        for backend, name, holds_lock in rows:
            found = REPLICA.match(name or "")
            if found is None:
                self.named.add(name)
                continue
            replica = int(found[1])
            sessions[replica].add(backend)
            names[replica].append(name.split()[1])
            if holds_lock:
                holders.add(replica)
        for replica, backends in sessions.items():
            state = "holder" if replica in holders else "waiter"
            if state == "holder":
                self.holder_seen = max(self.holder_seen, len(backends))
            now_set = frozenset(backends)
            previous = self.current.get(replica)
            since = previous[1] if previous and previous[0] == now_set else now
            self.current[replica] = (now_set, since)
            if now - since >= STEADY:
                self.steady[state] = max(self.steady[state], len(backends))
                self.seen.add((state, tuple(sorted(names[replica]))))

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.conn.close()


@pytest.fixture
def fleet_url(pg: Postgres) -> tuple[str, str, str]:
    """A database owned by a role allowed SLOTS connections, not a superuser (whom no limit
    binds); its URL, the role and the database."""
    db = pg.create_database()
    role = f"fleet_{db}"
    return pg.owned_by_role(db, role, SLOTS), role, db


def start_fleet(url: str, count: int) -> list[Result]:
    env = migrate_env(url, TESTPROJ_LEDGER="1", ENTRYPOINT_STEPS="wait,migrate")
    procs = [start_cli(env=env) for _ in range(count)]
    return [finish(proc, timeout=600) for proc in procs]


def test_sixteen_replicas_against_twelve_slots(
    pg: Postgres, fleet_url: tuple[str, str, str]
) -> None:
    """All exit 0 (none 70), everything once, the sessions per state as documented."""
    url, role, db = fleet_url
    sampler = Sampler(pg, role, db)
    try:
        results = start_fleet(url, REPLICAS)
    finally:
        sampler.finish()
    failed = [r.events[-3:] for r in results if r.returncode]
    assert not failed, failed
    rows = pg.execute("SELECT app, name, count(*) FROM django_migrations GROUP BY 1, 2", db)
    assert len(rows) == 27
    assert {count for _, _, count in rows} == {1}
    assert pg.execute("SELECT note FROM ledger_entry", db) == [("once",)]
    assert sum(1 for r in results for _ in r.named("migration_applied")) == 27
    # The server refused some connections: what the fleet waited out, never a failure.
    refusals = [e for r in results for e in r.events if "too many connections" in str(e)]
    assert refusals
    assert sampler.named <= {""}  # every session of ours is named after its replica
    assert sampler.holder_seen >= 3, sampler.seen  # it opened what it needs to finish
    assert sampler.steady["holder"] <= HOLDER_MOST, sampler.seen
    assert sampler.steady["waiter"] == WAITER_MOST, sampler.seen


def test_mariadb_fleet_against_a_user_limit(mariadb: MariaDB) -> None:
    """The same on MariaDB, smaller: 8 replicas, a user allowed 4 connections (error 1203,
    max_user_connections); a holder there needs two, Django's and the lock's."""
    db = mariadb.create_database()
    user = f"fleet_{db}"
    mariadb.execute(f"CREATE USER '{user}'@'127.0.0.1' WITH MAX_USER_CONNECTIONS 4")
    mariadb.execute(f"GRANT ALL ON {db}.* TO '{user}'@'127.0.0.1'")
    url = f"mysql://{user}@127.0.0.1:{mariadb.port}/{db}"
    results = start_fleet(url, 8)
    failed = [r.events[-3:] for r in results if r.returncode]
    assert not failed, failed
    assert mariadb.execute("SELECT note FROM ledger_entry", db) == [("once",)]
    rows = mariadb.execute("SELECT app, name, count(*) FROM django_migrations GROUP BY 1, 2", db)
    assert {count for _, _, count in rows} == {1}


@pytest.fixture
def one_slot(pg: Postgres) -> tuple[str, str]:
    """A migrated database whose owner may hold one connection; its URL and name."""
    db = pg.create_database()
    role = f"single_{db}"
    url = pg.owned_by_role(db, role)
    assert start_fleet(url, 1)[0].returncode == 0  # a holder needs three: migrated first
    pg.execute(f'ALTER ROLE "{role}" CONNECTION LIMIT 1')
    return url, db


@pytest.mark.parametrize(
    ("args", "steps"), [(("--status",), "migrate"), ((), "admin")], ids=["status", "admin"]
)
def test_a_full_server_is_waited_for_by_status_and_the_admin(
    one_slot: tuple[str, str], args: tuple[str, ...], steps: str
) -> None:
    """The only slot is taken: --status and the admin step say so once (db_not_yet, the
    server's words) and ask again; once it is free, they go on, exit 0."""
    url, _ = one_slot
    env = migrate_env(
        url, ENTRYPOINT_STEPS=steps, DJANGO_ADMIN_USERNAME="boss", DJANGO_ADMIN_PASSWORD="Fl33t-pw"
    )
    with psycopg.connect(url) as taken:
        running = Running(*args, env=env)
        refused = running.wait_for(is_event("db_not_yet", reason="too_many_clients"))
        assert "too many connections for role" in refused["detail"]
        taken.close()
        result = running.finish()
    assert result.returncode == 0, result.stderr
    assert len(result.named("db_not_yet")) == 1  # once per change, not once per attempt
    if args:
        assert '"reachable": true' in result.stdout


@pytest.mark.parametrize(
    ("args", "steps", "code", "event"),
    [
        (("--status",), "migrate", 69, "db_unavailable_timeout"),
        ((), "migrate", 75, "migration_lock_timeout"),
        ((), "admin", 69, "db_unavailable_timeout"),
    ],
    ids=["status", "migrate", "admin"],
)
def test_a_full_server_at_the_deadline_is_the_step_s_own_code(
    one_slot: tuple[str, str], args: tuple[str, ...], steps: str, code: int, event: str
) -> None:
    """The slot stays taken: --status 69 (5 s to connect), the migrate step 75 (its lock
    timeout), the admin step 69 (the wait's timeout); never 70."""
    url, _ = one_slot
    env = migrate_env(
        url,
        ENTRYPOINT_STEPS=steps,
        ENTRYPOINT_MIGRATE_LOCK_TIMEOUT="2",
        ENTRYPOINT_WAIT_TIMEOUT="2",
        DJANGO_ADMIN_USERNAME="boss",
        DJANGO_ADMIN_PASSWORD="Fl33t-pw",
    )
    with psycopg.connect(url):
        result = run_cli(*args, env=env)
    assert (result.returncode, result.last()["event"]) == (code, event), result.stderr
    assert "too many connections for role" in result.last()["error"]
