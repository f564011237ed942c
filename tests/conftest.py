from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import matrix
from tests.services import Postgres
from tests.watch import reap


def pytest_configure() -> None:
    """A runner started as a shell's background job ignores SIGINT, and the entrypoints the
    tests start would inherit that and keep it ignored (as they should): tests send SIGINT."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Under ``-m django`` (the other Python/Django combinations, see tests/matrix.py) modules
    without a selected test are not imported: their tools are not installed there."""
    if config.getoption("markexpr") != matrix.MARKER or collection_path.suffix != ".py":
        return None
    relative = collection_path.relative_to(config.rootpath).as_posix()
    return relative.startswith("tests/test_") and not matrix.selects_file(relative)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if matrix.selected(item.nodeid):
            item.add_marker(matrix.MARKER)


@pytest.fixture(autouse=True)
def _reap() -> Iterator[None]:
    """Kill what a failed test left running (only the processes tests.watch.Running started)."""
    yield
    reap()


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
    """How long the image builds took (seconds) and what the image adds to its base, when the
    image tests ran."""
    from tests.images import SIZE_BUDGET_BYTES, SIZES_KEY, TIMINGS_KEY  # noqa: PLC0415

    timings = config.stash.get(TIMINGS_KEY, None)
    if timings:
        terminalreporter.write_line(
            "image builds (s): " + ", ".join(f"{k}={v}" for k, v in timings.items())
        )
    sizes = config.stash.get(SIZES_KEY, None)
    if sizes:
        terminalreporter.write_line(
            "image layers added on top of the base, uncompressed (budget "
            f"{SIZE_BUDGET_BYTES / 1e6:.0f} MB): "
            + ", ".join(f"{arch} {size / 1e6:.1f} MB" for arch, size in sizes.items())
        )
