from tests.cli import base_env, run_cli


def test_wait_on_shared_cluster(pg_url: str) -> None:
    """The wait step answers against a real PostgreSQL and execs the command."""
    result = run_cli("--", "true", env=base_env(DATABASE_URL=pg_url, ENTRYPOINT_STEPS="wait"))
    assert result.returncode == 0, result.stderr
    assert result.named("db_ready")
