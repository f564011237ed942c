"""A read-only server (a hot standby after a failover, a role whose transactions are read-only):
not yet, never a configuration error. The wait step waits for it to take writes when a later
step writes, the migrate step exits 69 at once without the wait, --status says so."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cli import migrate_env, run_cli
from tests.services import Postgres
from tests.watch import Running, is_event, recorded

READ_ONLY_ADVICE = "read-only: a standby?"


@pytest.fixture(scope="module")
def primary() -> Iterator[Postgres]:
    """A private primary: a standby copies the whole cluster, which must stay small."""
    cluster = Postgres(max_connections=20)
    cluster.start()
    cluster.execute("CREATE DATABASE app")
    yield cluster
    cluster.remove()


@pytest.fixture
def standby(primary: Postgres) -> Iterator[Postgres]:
    cluster = Postgres(standby_of=primary)
    cluster.start()
    yield cluster
    cluster.remove()


def env(url: str, steps: str, **extra: str) -> dict[str, str]:
    return migrate_env(url, ENTRYPOINT_STEPS=steps, **extra)


def test_a_standby_is_69_at_once_without_the_wait_and_at_the_deadline_with_it(
    standby: Postgres,
) -> None:
    """The migrate step alone: 69 before the lock or the plan, with the message. With the wait
    step: not ready, said once, 69 at the deadline naming it. The wait alone (nothing writes
    after it) is satisfied. --status: reachable, read_only."""
    url = standby.url("app")
    alone = run_cli(env=env(url, "migrate"))
    assert alone.returncode == 69, alone.stderr
    assert alone.last()["event"] == "db_read_only"
    assert READ_ONLY_ADVICE in alone.last()["error"]
    assert "in recovery" in alone.last()["error"]
    assert not alone.named("migration_lock_acquired")

    waited = run_cli(env=env(url, "wait,migrate", ENTRYPOINT_WAIT_TIMEOUT="3"))
    assert waited.returncode == 69, waited.stderr
    [failed] = waited.named("db_check_failed")  # once, however many checks
    assert (failed["reason"], failed["detail"]) == (
        "read_only",
        "the server is in recovery (a hot standby)",
    )
    assert waited.last()["event"] == "db_unavailable_timeout"
    assert "(last reason: read_only)" in waited.last()["error"]
    assert READ_ONLY_ADVICE in waited.last()["error"]
    assert not waited.named("step_started")[1:]  # the migrate step never started

    assert run_cli(env=env(url, "wait")).returncode == 0

    status = run_cli("--status", env=env(url, "migrate"))
    assert status.returncode == 0, status.stderr
    assert '"read_only": true' in status.stdout
    assert '"reachable": true' in status.stdout


def test_a_standby_promoted_during_the_wait_is_migrated(standby: Postgres) -> None:
    """A failover finishing while the pods start: the wait goes on once the standby takes
    writes, and the start migrates it and exits 0."""
    running = Running(env=env(standby.url("app"), "wait,migrate", ENTRYPOINT_WAIT_TIMEOUT="120"))
    running.wait_for(is_event("db_check_failed", reason="read_only"))
    standby.promote()
    result = running.finish()
    assert result.returncode == 0, result.stderr
    assert result.named("db_ready")
    assert ("main", "0002_item_size") in recorded(standby, "app")


def test_read_only_transactions_of_a_role_are_read_only_too(pg: Postgres) -> None:
    """default_transaction_read_only on the role: the same 69 and the same --status field."""
    name = pg.create_database()
    pg.execute("CREATE ROLE reader LOGIN SUPERUSER")
    pg.execute("ALTER ROLE reader SET default_transaction_read_only = on")
    url = pg.url(name, user="reader")
    result = run_cli(env=env(url, "wait,migrate", ENTRYPOINT_WAIT_TIMEOUT="2"))
    assert result.returncode == 69, result.stderr
    [failed] = result.named("db_check_failed")
    assert failed["detail"] == (
        "the server is read-only for this session (default_transaction_read_only)"
    )
    status = run_cli("--status", env=env(url, "migrate"))
    assert (status.returncode, status.stdout.count('"read_only": true')) == (0, 1)
