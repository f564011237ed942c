from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from xdist.remote import Producer
from xdist.scheduler import LoadScopeScheduling

from tests import images, matrix
from tests.cli import ROOT
from tests.images import BASE_IMAGE, DEMO_IMAGE, Engine
from tests.services import MariaDB, PgBouncer, Postgres, silent_listener
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


# Under pytest-xdist (scripts/test) a file's tests stay on one worker, so a module's fixtures are
# made once; the files that build or pull the image share one worker, as they share the image
# cache and its lock, and go first: they are the longest unit of work. (A scheduler rather than
# xdist_group marks: loadgroup's marks do not reach the node ids under pytest 9.2.)
IMAGE_FILES = ("tests/test_image.py", "tests/test_publish.py")


def _unit(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    return "image" if path in IMAGE_FILES else path


class _FileScheduling(LoadScopeScheduling):  # type: ignore[misc]  # xdist is untyped
    def _split_scope(self, nodeid: str) -> str:
        return _unit(nodeid)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> LoadScopeScheduling:
    return _FileScheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if matrix.selected(item.nodeid):
            item.add_marker(matrix.MARKER)
    items.sort(key=lambda item: _unit(item.nodeid) != "image")  # stable: file order kept


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


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDB]:
    """One shared MariaDB server; tests create their own databases."""
    server = MariaDB()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def bouncer(pg: Postgres) -> Iterator[PgBouncer]:
    """One PgBouncer in transaction pooling in front of ``pg``, shared like it."""
    server = PgBouncer(pg)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def black_hole() -> Iterator[int]:
    """The port of a TCP listener that completes handshakes and never says a word."""
    with silent_listener() as sock:
        yield int(sock.getsockname()[1])


@pytest.fixture
def own_pg() -> Iterator[Postgres]:
    """A private cluster, not started, for tests that stop, start or crash it."""
    cluster = Postgres()
    yield cluster
    cluster.remove()


@pytest.fixture(scope="session")
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """The base image built by image/build.py (as a release builds it) on a debootstrapped Debian
    trixie, and the example image on it; built once per session, layers and rootfs cached."""
    if os.geteuid() != 0:
        pytest.skip("buildah --isolation chroot and podman with runc need root here")
    missing = images.missing_tools()
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: scripts/test installs them")
    cache = images.cache_dir()
    with images.locked(cache / "lock"):
        eng = Engine(cache / "containers")
        eng.remove_test_containers()
        os_image = eng.ensure_os_image(cache, "amd64")
        [built] = eng.build_with_script(cache / "dist", "amd64")
        eng.podman("tag", built, BASE_IMAGE)
        eng.build(
            DEMO_IMAGE,
            "-f",
            str(ROOT / "image" / "example" / "Dockerfile"),
            "--build-arg",
            f"BASE={BASE_IMAGE}",
        )
        request.config.stash[images.TIMINGS_KEY] = eng.timings
        request.config.stash[images.SIZES_KEY] = {"amd64": eng.added_bytes(BASE_IMAGE, os_image)}
        yield eng
        eng.remove_test_containers()
        # Old builds' layers: kept a day as cache, then dropped.
        eng.podman("image", "prune", "-f", "--filter", "until=24h", check=False)


@pytest.fixture(scope="session")
def arm64_image(engine: Engine, request: pytest.FixtureRequest) -> str:
    """The same image for linux/arm64, built under qemu-user-static (binfmt_misc). Opt-in: on
    a 2-core machine the emulated build took 11 min 44 s with a cold cache (debootstrap of the
    arm64 rootfs another 3 min 50 s), too much for CI's budget; see docs/internals.md, Development."""
    if os.environ.get("DJANGO_ENTRYPOINT_TEST_ARM64") != "1":
        pytest.skip(
            "linux/arm64 image not built: set DJANGO_ENTRYPOINT_TEST_ARM64=1 "
            "(emulated build, about 12 minutes on 2 cores with a cold cache)"
        )
    if not Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists():
        pytest.skip(
            "linux/arm64 not built: qemu-aarch64 is not registered in binfmt_misc "
            "(scripts/test installs qemu-user-static and binfmt-support and enables it)"
        )
    cache = images.cache_dir()
    os_image = engine.ensure_os_image(cache, "arm64")
    [built] = engine.build_with_script(cache / "dist", "arm64")
    request.config.stash[images.SIZES_KEY]["arm64"] = engine.added_bytes(built, os_image)
    return built


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """How long the image builds took (seconds) and what the image adds to its base, when the
    image tests ran."""
    timings = config.stash.get(images.TIMINGS_KEY, None)
    if timings:
        terminalreporter.write_line(
            "image builds (s): " + ", ".join(f"{k}={v}" for k, v in timings.items())
        )
    sizes = config.stash.get(images.SIZES_KEY, None)
    if sizes:
        terminalreporter.write_line(
            "image layers added on top of the base, uncompressed (budget "
            f"{images.SIZE_BUDGET_BYTES / 1e6:.0f} MB): "
            + ", ".join(f"{arch} {size / 1e6:.1f} MB" for arch, size in sizes.items())
        )
