"""The migrate step against a real PostgreSQL: exactly-once, the lock, targets, signals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from tests.cli import Result, base_env, finish, migrate_env, parse_events, run_cli, start_cli
from tests.services import Postgres
from tests.watch import (
    HOLDER_APP,
    Running,
    advisory_locks,
    applied,
    is_event,
    lock_held,
    recorded,
    schema,
    sleeping_on_server,
    wait_until,
)


def env(url: str, **extra: str) -> dict[str, str]:
    return migrate_env(url, **extra)


def migrate(url: str, **extra: str) -> Result:
    return run_cli(env=env(url, **extra), timeout=120)


def new_db(pg: Postgres) -> tuple[str, str]:
    name = pg.create_database()
    return name, pg.url(name)


def test_twenty_replicas_apply_each_migration_once(pg: Postgres) -> None:
    """20 entrypoints at once on an empty database: all succeed, one of them migrates, and
    the waiters find the work done without queuing for the lock: woken by the holder's
    release, they re-check what is pending and end their wait without taking the lock."""
    db, url = new_db(pg)
    procs = [start_cli(env=env(url)) for _ in range(20)]
    results = [finish(p, timeout=300) for p in procs]
    assert [r.returncode for r in results] == [0] * 20, [r.stderr for r in results if r.returncode]
    appliers = [r for r in results if applied(r)]
    assert len(appliers) == 1
    rows = recorded(pg, db)
    assert len(rows) == len(set(rows)) == len(applied(appliers[0])) >= 25
    others = [r for r in results if r is not appliers[0]]
    for r in others:  # they saw the work done, before, while or after waiting for the lock
        assert r.named("migrations_up_to_date"), r.stderr
    # A replica that planned before the holder finished but reached the lock after it may
    # still take it (and find nothing to do): a few, not the whole fleet one after another.
    takers = [r for r in results if r.named("migration_lock_acquired")]
    assert len(takers) <= 3, [r.named("migrations_up_to_date") for r in results]
    ended = [r for r in others if r.named("migration_lock_wait_ended")]
    assert ended, "no waiter ended its wait on the re-check"
    assert all(e["locked"] is False for r in ended for e in r.named("migrations_up_to_date"))
    assert not any(r.named("migration_lock_acquired") for r in ended)
    waits = [e for r in results for e in r.named("migration_lock_waiting")]
    assert waits, "no replica waited"
    assert {e["wake"] for e in waits} == {"notify"}  # a direct connection: LISTEN/NOTIFY


def test_killed_holder_is_replaced_by_a_waiter(pg: Postgres) -> None:
    """kill -9 of the holder mid-migration: a waiter takes over and the schema is complete."""
    reference, ref_url = new_db(pg)
    assert migrate(ref_url).returncode == 0
    db, url = new_db(pg)
    slow = env(url, SLOW_MIGRATION_SECONDS="4", ENTRYPOINT_LOG_LEVEL="debug")
    holder = Running(env=slow)
    holder.wait_for(is_event("migration_started", app="shop", name="0002_order_slow"))
    waiter = Running(env=slow)
    waiter.wait_for(is_event("migration_lock_waiting"))
    holder.proc.kill()
    assert holder.finish().returncode == -signal.SIGKILL
    result = waiter.finish()
    assert result.returncode == 0, result.stderr
    assert ("shop", "0002_order_slow") in applied(result)
    assert schema(pg, db) == schema(pg, reference)


def test_lock_held_elsewhere_times_out_naming_the_holder(pg: Postgres) -> None:
    """LOCK_TIMEOUT=2 while another client holds the lock: exit 75 with who holds it."""
    db, url = new_db(pg)
    with lock_held(url):
        started = time.monotonic()
        result = migrate(url, ENTRYPOINT_MIGRATE_LOCK_TIMEOUT="2")
        elapsed = time.monotonic() - started
    assert result.returncode == 75, result.stderr
    assert elapsed < 10  # 2 s of waiting plus start-up; timing belongs in benchmarks
    error = result.named("migration_lock_timeout")[0]
    assert HOLDER_APP in error["error"]
    assert result.named("migration_lock_waiting")[0]["holder_application_name"] == HOLDER_APP
    assert pg.execute("SELECT to_regclass('django_migrations')", db) == [(None,)]


def test_up_to_date_database_takes_no_lock(pg: Postgres) -> None:
    """Steady-state restart: nothing to apply means no lock, even while another holds it."""
    _, url = new_db(pg)
    assert migrate(url).returncode == 0
    with lock_held(url):
        result = migrate(url, ENTRYPOINT_MIGRATE_LOCK_TIMEOUT="0")
    assert result.returncode == 0, result.stderr
    assert result.named("migrations_up_to_date")[0]["locked"] is False
    assert not result.named("migration_lock_acquired")


def test_waiter_does_not_deadlock_create_index_concurrently(pg: Postgres) -> None:
    """A waiter polling while the holder builds an index CONCURRENTLY: both finish."""
    db, url = new_db(pg)
    cic = env(url, TESTPROJ_PG_APPS="1", SLOW_MIGRATION_SECONDS="2", ENTRYPOINT_LOG_LEVEL="debug")
    holder = Running(env=cic)
    holder.wait_for(is_event("migration_started", app="pgonly", name="0002_concurrent_index"))
    waiter = Running(env=cic)
    # Both lock connections open: the waiter is waiting for the lock, however it waits.
    sessions = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE application_name LIKE 'django-entrypoint migrate %'"
    )
    wait_until(lambda: pg.execute(sessions) == [(2,)])
    first, second = holder.finish(timeout=60), waiter.finish(timeout=60)
    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    assert pg.execute(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'pgonly_thing_name_idx'::regclass", db
    ) == [(True,)]


def test_target_backwards_unapplies_only_what_it_must(pg: Postgres) -> None:
    """`main 0001` after 0002: 0002 is unapplied, every other app stays at its latest."""
    db, url = new_db(pg)
    assert migrate(url).returncode == 0
    before = recorded(pg, db)
    result = migrate(url, ENTRYPOINT_MIGRATE_TARGETS="main 0001")
    assert result.returncode == 0, result.stderr
    assert [(e["app"], e["name"]) for e in result.named("migration_unapplied")] == [
        ("main", "0002_item_size")
    ]
    assert result.named("migrations_backward")[0]["unapply"] == ["main.0002_item_size"]
    assert result.named("migrations_backward")[0]["level"] == "warning"
    assert recorded(pg, db) == [r for r in before if r != ("main", "0002_item_size")]
    columns = pg.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'main_item'", db
    )
    assert ("size",) not in columns
    again = migrate(url, ENTRYPOINT_MIGRATE_TARGETS="main 0001")
    assert again.named("migrations_up_to_date"), again.stderr
    forward = migrate(url)  # rolling forward again is an ordinary migrate
    assert applied(forward) == [("main", "0002_item_size")]


def test_target_zero_unapplies_the_app(pg: Postgres) -> None:
    db, url = new_db(pg)
    assert migrate(url).returncode == 0
    result = migrate(url, ENTRYPOINT_MIGRATE_TARGETS="main zero")
    assert result.returncode == 0, result.stderr
    assert [e["name"] for e in result.named("migration_unapplied")] == [
        "0002_item_size",
        "0001_initial",
    ]
    assert [e["position"] for e in result.named("migration_unapplied")] == ["1/2", "2/2"]
    assert pg.execute("SELECT to_regclass('main_item')", db) == [(None,)]
    assert not [r for r in recorded(pg, db) if r[0] == "main"]


def test_invalid_targets_exit_78_before_any_ddl(pg: Postgres) -> None:
    """Every bad target is reported at once, and the empty database stays empty."""
    db, url = new_db(pg)
    result = migrate(url, ENTRYPOINT_MIGRATE_TARGETS="nosuchapp 0001, main 0009\nmain2 x y")
    assert result.returncode == 78, result.stderr
    error = result.named("config_invalid")[0]["error"]
    assert "main2 x y" in error
    contradiction = migrate(url, ENTRYPOINT_MIGRATE_TARGETS="blog zero")
    assert contradiction.returncode == 78, contradiction.stderr
    assert "shop" in contradiction.named("config_invalid")[0]["error"]
    unknown = migrate(url, ENTRYPOINT_MIGRATE_TARGETS="nosuchapp, blog 0009, main 000")
    assert unknown.returncode == 78
    error = unknown.named("config_invalid")[0]["error"]
    assert "'nosuchapp'" in error
    assert "'0009'" in error
    assert "matches several migrations" in error
    tables = pg.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", db)
    assert tables == []


def test_sigterm_rolls_back_the_running_migration(pg: Postgres) -> None:
    """SIGTERM mid-migration: 143 at once, migration rolled back, lock freed, rerun completes."""
    db, url = new_db(pg)
    proc = Running(env=env(url, SLOW_MIGRATION_SECONDS="60", ENTRYPOINT_LOG_LEVEL="debug"))
    proc.wait_for(is_event("migration_started", app="shop", name="0002_order_slow"))
    sleeping_on_server(pg)  # inside the pg_sleep, after the CREATE TABLE
    started = time.monotonic()
    proc.proc.send_signal(signal.SIGTERM)
    result = proc.finish(timeout=30)
    assert result.returncode == 143, result.stderr
    assert time.monotonic() - started < 10  # the server-side sleep was cancelled, not awaited
    interrupted = result.named("migration_interrupted")[0]
    assert (interrupted["app"], interrupted["name"]) == ("shop", "0002_order_slow")
    assert result.named("migration_lock_released")
    assert advisory_locks(pg) == []
    assert pg.execute("SELECT to_regclass('shop_order')", db) == [(None,)]
    assert ("shop", "0001_initial") in recorded(pg, db)
    rerun = migrate(url, ENTRYPOINT_MIGRATE_LOCK_TIMEOUT="5")
    assert rerun.returncode == 0, rerun.stderr
    assert applied(rerun) == [("shop", "0002_order_slow"), ("shop", "0003_seed")]


def test_lost_lock_cancels_the_migration_in_flight(pg: Postgres) -> None:
    """The lock's connection killed mid-migration: the keepalive notices, the server-side work
    is cancelled and rolled back (not left to commit unprotected), exit 70 naming it."""
    db, url = new_db(pg)
    proc = Running(env=env(url, SLOW_MIGRATION_SECONDS="60", ENTRYPOINT_LOG_LEVEL="debug"))
    proc.wait_for(is_event("migration_started", app="shop", name="0002_order_slow"))
    sleeping_on_server(pg)  # in flight, past the fence's check
    killed = pg.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name LIKE 'django-entrypoint migrate %'"
    )
    assert killed == [(True,)]
    result = proc.finish(timeout=30)  # far less than the 60 s the migration would sleep
    assert result.returncode == 70, result.stderr
    error = result.named("migration_lock_lost")[0]["error"]
    assert "shop.0002_order_slow" in error
    assert "rolled back" in error
    assert result.named("migration_lock_connection_lost")
    assert ("shop", "0001_initial") in recorded(pg, db)
    assert ("shop", "0002_order_slow") not in recorded(pg, db)
    assert pg.execute("SELECT to_regclass('shop_order')", db) == [(None,)]
    assert pg.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'", db
    ) == [(0,)]


def test_every_alias_is_migrated_under_its_own_lock(pg: Postgres) -> None:
    db, url = new_db(pg)
    other, other_url = new_db(pg)
    result = migrate(url, OTHER_DATABASE_URL=other_url, ENTRYPOINT_DATABASES="default,other")
    assert result.returncode == 0, result.stderr
    assert [e["alias"] for e in result.named("migration_lock_acquired")] == ["default", "other"]
    assert recorded(pg, db) == recorded(pg, other) != []


def test_direct_database_url_is_used_and_its_password_never_logged(pg: Postgres) -> None:
    """DATABASE_URL's role cannot create tables; ENTRYPOINT_MIGRATE_DATABASE_URL's can."""
    db, _ = new_db(pg)
    pg.execute("DO $$BEGIN CREATE ROLE app LOGIN; EXCEPTION WHEN duplicate_object THEN END$$")
    pooled = pg.url(db, user="app")
    direct = pg.url(db, password="s3cret-Direct-pw")
    denied = migrate(pooled)
    assert denied.returncode == 70, denied.stderr
    result = migrate(pooled, ENTRYPOINT_MIGRATE_DATABASE_URL=direct)
    assert result.returncode == 0, result.stderr
    assert result.named("migrate_direct_connection")[0]["user"] == "postgres"
    assert len(recorded(pg, db)) >= 25
    assert "s3cret-Direct-pw" not in result.stderr + result.stdout


GRAPH_ERRORS = {
    "two leaves": (
        {"TESTPROJ_CONFLICT": "1"},
        "migration_conflict",
        ["conflicted: 0002_left, 0002_right", "makemigrations --merge"],
    ),
    "missing dependency": (
        {"TESTPROJ_ORPHAN": "1"},
        "migration_graph_invalid",
        [
            "orphaned.0002_after_missing refers to orphaned.0001_initial",
            "ship orphaned's migration 0001_initial",
        ],
    ),
}


def refused_everywhere(environ: dict[str, str], event: str, named: list[str]) -> None:
    """The migrate step, --plan and --status: each 78, naming the migrations and the fix; and
    the pods that wait for the migrations stop waiting."""
    step = run_cli(env=environ)
    assert step.returncode == 78, step.stderr
    assert step.last()["event"] == event
    waiting = environ | {"ENTRYPOINT_STEPS": "wait", "ENTRYPOINT_WAIT_FOR": "migrations"}
    waited = run_cli(env=waiting | {"ENTRYPOINT_WAIT_TIMEOUT": "60"})
    assert waited.returncode == 78, waited.stderr
    assert waited.last()["error"] == step.last()["error"]
    plan = run_cli("--plan", env=environ)
    assert plan.returncode == 78, plan.stderr
    [planned] = json.loads(plan.stdout)["databases"]["default"]["problems"]
    status = run_cli("--status", env=environ)
    assert status.returncode == 78, status.stderr
    found = json.loads(status.stdout)["databases"]["default"]["problem"]
    for text in (step.last()["error"], planned, found):
        assert all(name in text for name in named), text
        assert "Traceback" not in text


@pytest.mark.parametrize("case", list(GRAPH_ERRORS))
def test_graph_errors_are_refused_naming_the_fix(case: str) -> None:
    """Conflicting leaves, a dependency on a migration that is not there: no retry or restart
    can cure them, so 78 (not 70, "unexpected error") with what to ship."""
    extra, event, named = GRAPH_ERRORS[case]
    environ = base_env(DJANGO_SETTINGS_MODULE="migproj.settings", ENTRYPOINT_STEPS="migrate")
    refused_everywhere(environ | extra, event, named)


def test_sigterm_while_waiting_for_the_lock(pg: Postgres) -> None:
    _, url = new_db(pg)
    with lock_held(url):
        proc = Running(env=env(url))
        proc.wait_for(is_event("migration_lock_waiting"))
        proc.proc.send_signal(signal.SIGTERM)
        result = proc.finish(timeout=30)
    assert result.returncode == 143, result.stderr
    assert result.named("interrupted")


def test_system_checks_run_once_per_process() -> None:
    """The step and the command each run Django's checks exactly once, as events."""
    extra = {"DJANGO_SETTINGS_MODULE": "migproj.settings", "TESTPROJ_CHECK_WARNING": "1"}
    step = run_cli(env=base_env(ENTRYPOINT_STEPS="migrate", **extra))
    command = subprocess.run(
        [sys.executable, "-m", "django", "lockedmigrate"],
        env=base_env(**extra),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (step.returncode, command.returncode) == (0, 0), step.stderr + command.stderr
    for events in (step.events, parse_events(command.stderr)):
        warnings = [e for e in events if e.get("event") == "system_check_warning"]
        assert [w["id"] for w in warnings] == ["blog.W001"]


def test_backward_then_forward_in_one_run(pg: Postgres) -> None:
    """A release that rolls main back and ships new blog/shop migrations: both phases, in order."""
    db, url = new_db(pg)
    assert migrate(url, ENTRYPOINT_MIGRATE_TARGETS="blog 0001, shop zero").returncode == 0
    result = migrate(url, ENTRYPOINT_MIGRATE_TARGETS="main 0001")
    assert result.returncode == 0, result.stderr
    moves = [
        (e["event"], e["app"], e["name"], e["position"])
        for e in result.events
        if e["event"] in ("migration_applied", "migration_unapplied")
    ]
    assert moves == [
        ("migration_unapplied", "main", "0002_item_size", "1/5"),
        ("migration_applied", "blog", "0002_post_slug", "2/5"),
        ("migration_applied", "shop", "0001_initial", "3/5"),
        ("migration_applied", "shop", "0002_order_slow", "4/5"),
        ("migration_applied", "shop", "0003_seed", "5/5"),
    ]
    assert pg.execute("SELECT name FROM shop_product", db) == [("seed",)]


def test_lock_survives_idle_in_transaction_timeout(pg: Postgres) -> None:
    """A database-wide idle_in_transaction_session_timeout must not kill the lock's connection."""
    db, url = new_db(pg)
    pg.execute(f'ALTER DATABASE "{db}" SET idle_in_transaction_session_timeout = 500')
    result = migrate(url, SLOW_MIGRATION_SECONDS="2")
    assert result.returncode == 0, result.stderr
    assert ("shop", "0003_seed") in recorded(pg, db)


def test_inconsistent_history_is_refused(pg: Postgres) -> None:
    """As Django's migrate does: an applied migration whose dependency is not stops the step,
    78 with the two named and the row that would repair it."""
    name, url = new_db(pg)
    assert migrate(url, ENTRYPOINT_MIGRATE_TARGETS="main zero").returncode == 0
    pg.execute(
        "INSERT INTO django_migrations (app, name, applied) VALUES ('main', '0002_item_size', now())",
        name,
    )
    named = [
        "main.0002_item_size is applied before its dependency main.0001_initial",
        "VALUES ('main', '0001_initial', CURRENT_TIMESTAMP)",
    ]
    refused_everywhere(env(url), "migration_graph_invalid", named)
    assert pg.execute("SELECT count(*) FROM django_migrations WHERE app = 'main'", name) == [(1,)]


def test_waiter_survives_losing_its_connection(pg: Postgres) -> None:
    """A failover or pooler cuts the waiter's lock connection: it reconnects and carries on."""
    db, url = new_db(pg)
    with lock_held(url):
        waiter = Running(env=env(url, ENTRYPOINT_MIGRATE_LOCK_TIMEOUT="60"))
        waiter.wait_for(is_event("migration_lock_waiting"))
        pg.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name LIKE 'django-entrypoint migrate%'"
        )
        waiter.wait_for(is_event("migration_lock_attempt_failed"))
    result = waiter.finish()
    assert result.returncode == 0, result.stderr
    assert result.named("migration_lock_acquired")
    assert result.named("migration_applied")
    assert pg.execute("SELECT count(*) FROM django_migrations WHERE app = 'shop'", db) == [(3,)]


def test_migrations_unknown_to_this_code_are_reported(pg: Postgres) -> None:
    """An older image on a newer database: nothing to do, but it says why rollback cannot work."""
    db, url = new_db(pg)
    assert migrate(url).returncode == 0
    pg.execute(
        "INSERT INTO django_migrations (app, name, applied) VALUES ('main', '0003_newer', now())",
        db,
    )
    result = migrate(url)
    assert result.returncode == 0, result.stderr
    assert result.named("migrations_unknown_applied")[0]["migrations"] == ["main.0003_newer"]
