"""The log stream: one JSON event per line, and no secret in any of them."""

from __future__ import annotations

from tests.cli import base_env, run_cli
from tests.services import Postgres

LEAKY_PASSWORD = "Leak-Me-9876-zz"


def test_secrets_printed_by_a_migration_are_scrubbed(pg: Postgres) -> None:
    """Whatever a migration prints becomes events, with the database password masked."""
    pg.add_password_user("leaky", LEAKY_PASSWORD)
    name = pg.create_database()
    pg.execute(f'ALTER DATABASE "{name}" OWNER TO leaky')
    url = pg.url(name, user="leaky", password=LEAKY_PASSWORD)
    env = base_env(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="testproj.leaky_settings",
        ENTRYPOINT_STEPS="migrate",
    )
    result = run_cli(env=env)
    assert result.returncode == 0, result.stderr
    printed = [e["line"] for e in result.named("django_output")]
    assert "password: ***" in printed
    assert f"url: postgres://leaky:***@127.0.0.1:{pg.port}/{name}" in printed
    assert LEAKY_PASSWORD not in result.stdout + result.stderr
    # A Python warning is an event too, not a raw line in the JSON stream (parsed above).
    warning = result.named("python_warning")[0]
    assert (warning["category"], warning["message"]) == (
        "RuntimeWarning",
        "careless data migration",
    )
