from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.services import Postgres


@pytest.fixture(scope="session")
def pg() -> Iterator[Postgres]:
    """One shared cluster; tests get their own database from ``pg_url``."""
    cluster = Postgres()
    cluster.start()
    yield cluster
    cluster.remove()


@pytest.fixture
def pg_url(pg: Postgres) -> str:
    return pg.url(pg.create_database())


@pytest.fixture
def own_pg() -> Iterator[Postgres]:
    """A private cluster, not started, for tests that stop, start or crash it."""
    cluster = Postgres()
    yield cluster
    cluster.remove()


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """How long the image builds took (seconds), when the image tests ran."""
    from tests.images import TIMINGS_KEY  # noqa: PLC0415

    timings = config.stash.get(TIMINGS_KEY, None)
    if timings:
        terminalreporter.write_line(
            "image builds (s): " + ", ".join(f"{k}={v}" for k, v in timings.items())
        )
