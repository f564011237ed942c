"""``manage.py lockedmigrate``: migrate's interface on the migrate step's code path."""

from __future__ import annotations

import pytest

from tests.cli import Result, base_env, run_django
from tests.services import Postgres
from tests.watch import applied, lock_held, recorded


def manage(url: str, *args: str, **extra: str) -> Result:
    env = base_env(DATABASE_URL=url, DJANGO_SETTINGS_MODULE="migproj.settings") | extra
    return run_django("lockedmigrate", *args, env=env)


def tables(pg: Postgres, db: str) -> list[tuple[object, ...]]:
    return pg.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", db)


def test_plan_and_check_take_no_lock(pg: Postgres) -> None:
    """--plan and --check answer while another process holds the lock, touching nothing."""
    db = pg.create_database()
    url = pg.url(db)
    with lock_held(url):
        plan = manage(url, "--plan", ENTRYPOINT_MIGRATE_LOCK_TIMEOUT="0")
        check = manage(url, "--check", ENTRYPOINT_MIGRATE_LOCK_TIMEOUT="0")
    assert plan.returncode == 0, plan.stderr
    planned = plan.named("migration_planned")
    assert len(planned) >= 25
    assert planned[-1]["position"] == f"{len(planned)}/{len(planned)}"
    assert check.returncode == 1, check.stderr
    assert check.named("migrations_pending")[0]["count"] == len(planned)
    assert tables(pg, db) == []
    assert manage(url).returncode == 0
    assert manage(url, "--check").returncode == 0


def test_app_label_and_migration_name_like_migrate(pg: Postgres) -> None:
    """`lockedmigrate blog` migrates blog only; `lockedmigrate blog 0001` goes back one."""
    db = pg.create_database()
    url = pg.url(db)
    only_blog = manage(url, "blog")
    assert only_blog.returncode == 0, only_blog.stderr
    assert applied(only_blog) == [("blog", "0001_initial"), ("blog", "0002_post_slug")]
    assert manage(url).returncode == 0
    back = manage(url, "main", "0001")
    assert back.returncode == 0, back.stderr
    assert [(e["app"], e["name"]) for e in back.named("migration_unapplied")] == [
        ("main", "0002_item_size")
    ]
    assert ("main", "0002_item_size") not in recorded(pg, db)
    assert not back.stdout  # Django's output, if any, went into the log


def test_lock_id_option_chooses_the_key(pg: Postgres) -> None:
    """-L 4242 waits for key 4242, not the default key."""
    url = pg.url(pg.create_database())
    with lock_held(url, key=4242):
        result = manage(url, "-L", "4242", ENTRYPOINT_MIGRATE_LOCK_TIMEOUT="1")
    assert result.returncode == 75, result.stderr
    assert "test-holder" in result.named("migration_lock_timeout")[0]["error"]


def test_fake_records_without_running(pg: Postgres) -> None:
    db = pg.create_database()
    url = pg.url(db)
    result = manage(url, "blog", "--fake")
    assert result.returncode == 0, result.stderr
    faked = [e["fake"] for e in result.named("migration_applied")]
    assert faked, result.stderr
    assert all(faked)
    assert ("blog", "0002_post_slug") in recorded(pg, db)
    assert ("blog_post",) not in tables(pg, db)


def test_run_syncdb_is_delegated_under_the_lock(pg: Postgres) -> None:
    db = pg.create_database()
    url = pg.url(db)
    with lock_held(url):
        blocked = manage(url, "--run-syncdb", ENTRYPOINT_MIGRATE_LOCK_TIMEOUT="1")
    assert blocked.returncode == 75, blocked.stderr
    result = manage(url, "--run-syncdb")
    assert result.returncode == 0, result.stderr
    assert result.named("migration_lock_released")
    assert result.named("django_output")  # Django's own migrate printed, as log events
    assert len(recorded(pg, db)) >= 25


def test_prune_without_an_app_is_a_usage_error_before_the_lock(pg: Postgres) -> None:
    """As migrate says, 2 and not 70; the held lock is never waited for."""
    url = pg.url(pg.create_database())
    with lock_held(url):
        result = manage(url, "--prune", ENTRYPOINT_MIGRATE_LOCK_TIMEOUT="600")
    assert result.returncode == 2, result.stderr
    assert result.last()["event"] == "usage_error"
    assert "--prune needs an app_label" in result.last()["error"]
    assert not result.named("migration_lock_waiting")


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("nosuchapp",), "the app_label/migration_name arguments names app 'nosuchapp'"),
        (("blog", "0009"), "the app_label/migration_name arguments: app 'blog' has no migration"),
    ],
)
def test_bad_arguments_are_named_as_arguments(
    pg: Postgres, args: tuple[str, ...], error: str
) -> None:
    """Not blamed on ENTRYPOINT_MIGRATE_TARGETS, which is not even set; nothing touched."""
    db = pg.create_database()
    result = manage(pg.url(db), *args)
    assert result.returncode == 2, result.stderr
    assert error in result.last()["error"]
    assert "ENTRYPOINT_MIGRATE_TARGETS" not in result.last()["error"]
    assert tables(pg, db) == []
