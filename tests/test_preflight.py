"""The rollback preflight: a backward plan is checked whole before anything is unapplied."""

from __future__ import annotations

from tests.cli import Result, migrate_env, run_cli, run_django
from tests.services import Postgres
from tests.watch import recorded, schema


def env(url: str, **extra: str) -> dict[str, str]:
    return migrate_env(url, **({"TESTPROJ_ONEWAY": "1"} | extra))


def migrate(url: str, **extra: str) -> Result:
    return run_cli(env=env(url, **extra), timeout=120)


def test_rollback_behind_irreversible_migration_exits_78_unapplying_nothing(
    pg: Postgres,
) -> None:
    """oneway 0001 needs 0003 (reversible) then 0002 (RunPython, no reverse) unapplied: refused."""
    db = pg.create_database()
    url = pg.url(db)
    assert migrate(url).returncode == 0
    before = schema(pg, db)
    result = migrate(url, ENTRYPOINT_MIGRATE_TARGETS="oneway 0001")
    assert result.returncode == 78, result.stderr
    error = result.last()
    assert error["event"] == "migration_plan_refused"
    assert "oneway.0002_backfill cannot be unapplied" in error["error"]
    assert "RunPython(backfill)" in error["error"]
    assert "reverse_code" in error["error"]
    assert not result.named("migration_unapplied")
    assert not result.named("migration_lock_acquired")  # refused before the lock
    assert schema(pg, db) == before  # oneway 0003 and its title column are still there


def test_lockedmigrate_refuses_the_same_rollback(pg: Postgres) -> None:
    db = pg.create_database()
    url = pg.url(db)
    assert migrate(url).returncode == 0
    before = recorded(pg, db)
    result = run_django("lockedmigrate", "oneway", "0001", env=env(url))
    assert result.returncode == 78, result.stderr
    assert "oneway.0002_backfill" in result.last()["error"]
    assert recorded(pg, db) == before
    faked = run_django("lockedmigrate", "oneway", "0001", "--fake", env=env(url))
    assert faked.returncode == 0, faked.stderr  # --fake runs no operation: nothing to refuse
    assert [r for r in recorded(pg, db) if r[0] == "oneway"] == [("oneway", "0001_initial")]


def test_reversible_rollback_warns_of_dropped_data(pg: Postgres) -> None:
    """oneway 0002 unapplies 0003 only: allowed, and the warning names the column it drops."""
    db = pg.create_database()
    url = pg.url(db)
    assert migrate(url).returncode == 0
    result = migrate(url, ENTRYPOINT_MIGRATE_TARGETS="oneway 0002")
    assert result.returncode == 0, result.stderr
    (warning,) = result.named("migrations_backward")
    assert warning["unapply"] == ["oneway.0003_note_title"]
    assert warning["drops_data"] == ["oneway.0003_note_title: AddField: Add field title to note"]
    zero = migrate(url, ENTRYPOINT_MIGRATE_TARGETS="main zero")
    assert zero.returncode == 0, zero.stderr
    assert zero.named("migrations_backward")[0]["drops_data"] == [
        "main.0002_item_size: AddField: Add field size to item",
        "main.0001_initial: CreateModel: Create model Item",
    ]
