"""Heartbeats: ``*_running`` events while one long piece of work runs, none once it is done."""

from __future__ import annotations

from tests.cli import base_env, run_cli
from tests.services import Postgres


def test_slow_migration_reports_while_it_runs(pg: Postgres) -> None:
    """shop 0002 sleeps 2 s on the server: heartbeats name it, and stop when it is applied."""
    env = base_env(
        DATABASE_URL=pg.url(pg.create_database()),
        DJANGO_SETTINGS_MODULE="migproj.settings",
        ENTRYPOINT_STEPS="migrate",
        SLOW_MIGRATION_SECONDS="2",
        ENTRYPOINT_HEARTBEAT_INTERVAL="0.5",
    )
    result = run_cli(env=env)
    assert result.returncode == 0, result.stderr
    beats = result.named("migration_running")
    assert len(beats) >= 3
    for beat in beats:
        assert (beat["app"], beat["name"], beat["alias"]) == ("shop", "0002_order_slow", "default")
        assert beat["step"] == "migrate"
        assert beat["position"].endswith(f"/{len(result.named('migration_applied'))}")
    assert [b["elapsed_s"] for b in beats] == sorted(b["elapsed_s"] for b in beats)
    applied = next(e for e in result.named("migration_applied") if e["name"] == "0002_order_slow")
    assert result.events.index(beats[-1]) < result.events.index(applied)


def test_startup_summary_has_every_step(pg: Postgres) -> None:
    env = base_env(DATABASE_URL=pg.url(pg.create_database()))
    result = run_cli(env=env)
    assert result.returncode == 0, result.stderr
    summary = result.named("startup_summary")[0]
    steps = ["wait", "migrate", "admin", "manage", "hooks"]
    assert summary["steps"] == steps
    assert list(summary["durations_s"]) == steps
