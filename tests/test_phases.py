"""Deploy phases with the real django-safemigrate: pre applies what its safemigrate would."""

from __future__ import annotations

import pytest

from tests.cli import Result, base_env, run_cli, run_django
from tests.services import Postgres
from tests.watch import Running, applied, is_event, lock_held, recorded, schema

DELAYED = ("phased", "0003_remove_widget_legacy_code")


def env(url: str, **extra: str) -> dict[str, str]:
    return (
        base_env(
            DATABASE_URL=url,
            DJANGO_SETTINGS_MODULE="testproj.phased_settings",
            ENTRYPOINT_STEPS="migrate",
        )
        | extra
    )


def phase(url: str, name: str, **extra: str) -> Result:
    return run_cli(env=env(url, ENTRYPOINT_MIGRATE_PHASE=name, **extra), timeout=120)


def wait_migrated(url: str, timeout: str, **extra: str) -> Result:
    waiting = {"ENTRYPOINT_STEPS": "wait", "ENTRYPOINT_WAIT_FOR": "migrations"}
    return run_cli(env=env(url, ENTRYPOINT_WAIT_TIMEOUT=timeout, **waiting, **extra), timeout=60)


def tables(pg: Postgres, db: str) -> list[tuple[object, ...]]:
    return pg.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", db)


def columns(pg: Postgres, db: str) -> list[tuple[object, ...]]:
    return pg.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_name = 'phased_widget' ORDER BY 1",
        db,
    )


def test_pre_then_post(pg: Postgres) -> None:
    """pre leaves the after_deploy RemoveField pending, pre-phase pods proceed, post applies it."""
    db = pg.create_database()
    url = pg.url(db)
    pre = phase(url, "pre")
    assert pre.returncode == 0, pre.stderr
    assert ("phased", "0002_widget_color") in applied(pre)
    assert DELAYED not in recorded(pg, db)
    assert columns(pg, db) == [("color",), ("id",), ("legacy_code",), ("name",)]
    (deferred,) = pre.named("migrations_deferred")  # once, though planned again under the lock
    assert deferred["delayed"] == ["phased.0003_remove_widget_legacy_code"]

    again = phase(url, "pre")  # nothing left for pre: no lock taken
    assert again.returncode == 0, again.stderr
    assert again.named("migrations_up_to_date")[0]["locked"] is False

    waiter = wait_migrated(url, "20", ENTRYPOINT_MIGRATE_PHASE="pre")
    assert waiter.returncode == 0, waiter.stderr
    assert waiter.named("db_migrated")
    stuck = wait_migrated(url, "2")  # an unphased waiter waits for the RemoveField too
    assert stuck.returncode == 69, stuck.stderr
    assert stuck.named("migrations_pending")[0]["count"] == 1

    post = phase(url, "post")
    assert post.returncode == 0, post.stderr
    assert applied(post) == [DELAYED]
    assert columns(pg, db) == [("color",), ("id",), ("name",)]
    assert wait_migrated(url, "20").returncode == 0


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"SAFEMIGRATE": "nonstrict", "PHASED_BLOCKED": "1"},
        {"SAFEMIGRATE": "disabled", "PHASED_BLOCKED": "1"},
        {"SAFEMIGRATE": "strict", "PHASED_BLOCKED": "1"},
    ],
    ids=["strict", "nonstrict-blocked", "disabled", "strict-blocked"],
)
def test_pre_applies_what_safemigrate_applies(pg: Postgres, extra: dict[str, str]) -> None:
    """The same project through django-safemigrate's own command and through PHASE=pre."""
    theirs, ours = pg.create_database(), pg.create_database()
    command = run_django(
        "safemigrate", "--noinput", env=env(pg.url(theirs), **extra), json_log=False
    )
    result = phase(pg.url(ours), "pre", **extra)
    if extra.get("SAFEMIGRATE") == "strict":
        assert command.returncode == 1, command.stderr
        assert "Aborting due to blocked migrations" in command.stderr
        assert result.returncode == 78, result.stderr
        assert tables(pg, ours) == tables(pg, theirs) == []
    else:
        assert command.returncode == 0, command.stderr
        assert result.returncode == 0, result.stderr
        assert schema(pg, ours) == schema(pg, theirs)
        assert len(recorded(pg, ours)) > 10


def test_blocked_before_deploy_migration_exits_78(pg: Postgres) -> None:
    """Strict mode: before_deploy behind after_deploy stops the pre phase before any DDL."""
    db = pg.create_database()
    result = phase(pg.url(db), "pre", PHASED_BLOCKED="1")
    assert result.returncode == 78, result.stderr
    error = result.last()
    assert error["event"] == "migration_plan_refused"
    assert "phasedblock.0001_initial" in error["error"]
    assert "phased.0003_remove_widget_legacy_code" in error["error"]
    assert not result.named("migration_lock_acquired")
    assert tables(pg, db) == []


def test_delay_counts_from_first_seen(pg: Postgres) -> None:
    """after_deploy(delay=1 day): recorded when first seen by a pre phase, applied once due."""
    db = pg.create_database()
    url = pg.url(db)
    first_seen = "SELECT app, name FROM django_safemigrate_safemigration"
    assert phase(url, "pre", PHASED_DELAY="1").returncode == 0  # creates their table
    second = phase(url, "pre", PHASED_DELAY="1")
    assert second.returncode == 0, second.stderr
    assert pg.execute(first_seen, db) == [("phaseddelay", "0001_initial")]
    assert ("phaseddelay", "0001_initial") not in recorded(pg, db)
    pg.execute(
        "UPDATE django_safemigrate_safemigration SET detected = detected - interval '2 days'", db
    )
    due = phase(url, "pre", PHASED_DELAY="1")
    assert due.returncode == 0, due.stderr
    assert applied(due) == [("phaseddelay", "0001_initial")]
    assert DELAYED not in recorded(pg, db)


@pytest.mark.parametrize("meanwhile", ["released", "recorded"])
def test_a_plan_before_the_lock_writes_nothing(pg: Postgres, meanwhile: str) -> None:
    """django-safemigrate's first-seen date is written under the lock, once the plan made there
    is final: neither --plan nor a replica waiting for the lock writes it. The waiter records
    it once the lock is released, or ends without the lock when another replica did."""
    db = pg.create_database()
    url = pg.url(db)
    first_seen = "SELECT app, name FROM django_safemigrate_safemigration"
    delayed = env(url, ENTRYPOINT_MIGRATE_PHASE="pre", PHASED_DELAY="1")
    assert run_cli(env=delayed).returncode == 0  # creates their table: nothing seen yet
    assert pg.execute(first_seen, db) == []
    report = run_cli("--plan", env=delayed)
    assert report.returncode == 0, report.stderr
    assert pg.execute(first_seen, db) == []
    with lock_held(url):
        waiter = Running(env=delayed)
        waiter.wait_for(is_event("migration_lock_waiting"))  # planned, found a date to record
        assert pg.execute(first_seen, db) == []
        if meanwhile == "recorded":  # by the replica that holds the lock
            pg.execute(
                "INSERT INTO django_safemigrate_safemigration (created, app, name, detected)"
                " VALUES (now(), 'phaseddelay', '0001_initial', now())",
                db,
            )
            waiter.wait_for(is_event("migration_lock_wait_ended", reason="nothing_pending"))
    result = waiter.finish()
    assert result.returncode == 0, result.stderr
    assert pg.execute(first_seen, db) == [("phaseddelay", "0001_initial")]
    assert not applied(result)
    assert bool(result.named("migration_lock_acquired")) == (meanwhile == "released")


def test_pre_without_safemigrate_exits_78(pg: Postgres) -> None:
    db = pg.create_database()
    for steps in ("migrate", "wait"):
        result = run_cli(
            env=env(
                pg.url(db),
                DJANGO_SETTINGS_MODULE="migproj.settings",
                ENTRYPOINT_STEPS=steps,
                ENTRYPOINT_WAIT_FOR="migrations",
                ENTRYPOINT_MIGRATE_PHASE="pre",
            )
        )
        assert result.returncode == 78, result.stderr
        assert "needs django-safemigrate" in result.last()["error"]
    assert tables(pg, db) == []
