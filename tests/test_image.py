"""The base image and the example image, linted, built with buildah and run with podman.

The images are built once per session on a debootstrap-made Debian base (see tests/images.py) and
run with host networking against the tests' PostgreSQL on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement

from tests import images
from tests.cli import ROOT, base_env
from tests.images import BASE_IMAGE, DEMO_IMAGE, OS_IMAGE, Container, Engine
from tests.services import Postgres, free_port

DOCKERFILES = ["Dockerfile", "image/example/Dockerfile"]
DEMO_MIGRATIONS = {"notes": 3}  # the demo app's own migrations
UID = "10001"
ADMIN_PASSWORD = "s3cret-Adm1n-pw"


class TestDockerfiles:
    @pytest.mark.parametrize("dockerfile", DOCKERFILES)
    def test_hadolint_passes(self, dockerfile: str) -> None:
        """hadolint reports nothing, not even style or info findings."""
        hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
        proc = subprocess.run(
            [hadolint, "--failure-threshold", "style", str(ROOT / dockerfile)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.strip() == ""

    def test_pinned_requirements_satisfy_the_package(self) -> None:
        """image/requirements.txt pins every runtime dependency of the package, within its
        declared ranges, plus gunicorn."""
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
        declared = {Requirement(r).name.lower(): Requirement(r) for r in project["dependencies"]}
        pinned = {
            Requirement(line).name.lower(): Requirement(line)
            for line in (ROOT / "image" / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        }
        assert set(pinned) == {*declared, "gunicorn"}
        for name, requirement in pinned.items():
            [spec] = requirement.specifier
            assert spec.operator == "==", requirement
            if name in declared:
                assert declared[name].specifier.contains(spec.version), (
                    requirement,
                    declared[name],
                )
                assert requirement.extras == declared[name].extras


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """Both images, built once per session; layers and the Debian rootfs cached between runs."""
    if os.geteuid() != 0:
        pytest.skip("buildah --isolation chroot and podman with runc need root here")
    missing = images.missing_tools()
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: scripts/test installs them")
    cache = images.cache_dir()
    with images.locked(cache / "lock"):
        eng = Engine(cache / "containers")
        eng.remove_test_containers()
        eng.ensure_os_image(cache)
        eng.build(BASE_IMAGE, "--build-arg", f"BASE_IMAGE={OS_IMAGE}")
        eng.build(
            DEMO_IMAGE,
            "-f",
            str(ROOT / "image" / "example" / "Dockerfile"),
            "--build-arg",
            f"BASE={BASE_IMAGE}",
        )
        request.config.stash[images.TIMINGS_KEY] = eng.timings
        yield eng
        eng.remove_test_containers()
        # Old builds' layers: kept a day as cache, then dropped.
        eng.podman("image", "prune", "-f", "--filter", "until=24h", check=False)


Start = Callable[..., Container]


@pytest.fixture
def start(engine: Engine) -> Iterator[Start]:
    """Start a container (removed after the test) with the env every test needs."""
    started: list[Container] = []

    def _start(
        image: str,
        *command: str,
        env: dict[str, str],
        options: tuple[str, ...] = (),
    ) -> Container:
        full_env = {
            "ENTRYPOINT_LOG_FORMAT": "json",
            "ENTRYPOINT_WAIT_STABLE": "0",
            "ENTRYPOINT_WAIT_INTERVAL": "0.2",
            "WEB_CONCURRENCY": "1",
            **env,
        }
        name = f"dje-test-{uuid.uuid4().hex[:8]}"
        container = engine.start(image, *command, name=name, env=full_env, options=options)
        started.append(container)
        return container

    yield _start
    for container in started:
        engine.podman("rm", "-f", "-t", "0", container.name, check=False)


@pytest.fixture
def migrated_url(pg: Postgres) -> str:
    """A database the demo's migrations were applied to from the host: for the tests that
    exercise wait + exec only, independently of the migrate step."""
    url = pg.url(pg.create_database())
    migrate_from_host(url)
    return url


def migrate_from_host(url: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
        env=base_env(DATABASE_URL=url, DJANGO_SETTINGS_MODULE="demo.settings"),
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture
def admin_secret() -> Iterator[Path]:
    """The admin password as a file, mounted like a Kubernetes Secret volume."""
    folder = Path(tempfile.mkdtemp(prefix="dje-secret-"))
    folder.chmod(0o755)
    secret = folder / "admin-password"
    secret.write_text(ADMIN_PASSWORD + "\n")
    secret.chmod(0o644)
    yield secret
    shutil.rmtree(folder, ignore_errors=True)


def serve_env(url: str, port: int, **extra: str) -> dict[str, str]:
    return {"DATABASE_URL": url, "PORT": str(port), **extra}


def process_status(container: Container) -> dict[int, dict[str, str]]:
    """/proc/N/status of every process in the container, by PID."""
    out = container.exec(
        "python3",
        "-c",
        "import json, pathlib\n"
        "print(json.dumps({p.parent.name: p.read_text() for p in pathlib.Path('/proc')"
        ".glob('[0-9]*/status')}))",
    ).stdout
    statuses: dict[int, dict[str, str]] = {}
    for pid, text in json.loads(out).items():
        fields = dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)
        statuses[int(pid)] = fields
    return statuses


# -- the base image on its own ----------------------------------------------------------------


@pytest.mark.slow
class TestBaseImage:
    def test_configuration(self, engine: Engine) -> None:
        """tini then the entrypoint, no CMD (init mode), uid 10001, the documented env, labels."""
        config = json.loads(
            engine.podman("image", "inspect", "--format", "{{json .Config}}", BASE_IMAGE)
        )
        assert config["Entrypoint"] == ["tini", "--", "django-entrypoint"]
        assert not config.get("Cmd")
        assert config["User"] == f"{UID}:{UID}"
        assert config["WorkingDir"] == "/app"
        env = dict(item.split("=", 1) for item in config["Env"])
        assert env["PATH"].startswith("/opt/venv/bin:")
        assert env["PYTHONUNBUFFERED"] == "1"
        assert env["PYTHONDONTWRITEBYTECODE"] == "1"
        assert not any("CERT" in key for key in env)  # the build's CA bundle stays out
        labels = config["Labels"]
        for key in ("title", "description", "version", "revision", "licenses"):
            assert labels[f"org.opencontainers.image.{key}"]

    def test_runtime_has_no_compiler_and_no_build_secrets(self, engine: Engine) -> None:
        """The runtime stage has tini and the venv's packages but no compiler or wheel cache."""
        script = (
            "import importlib.metadata as m, json, shutil, pathlib\n"
            "print(json.dumps([shutil.which('tini'), shutil.which('gcc'), shutil.which('cc'),"
            " pathlib.Path('/wheels').exists(), pathlib.Path('/run/secrets').exists(),"
            " sorted(d.metadata['Name'].lower() for d in m.distributions())]))"
        )
        out = engine.podman(
            "run", "--rm", "--network", "host", "--pull", "never",
            "--entrypoint", "python3", BASE_IMAGE, "-c", script,
        )  # fmt: skip
        tini, gcc, cc, wheels, secrets, dists = json.loads(out)
        assert tini == "/usr/bin/tini"
        assert (gcc, cc, wheels, secrets) == (None, None, False, False)
        for name in ("django", "psycopg", "psycopg-binary", "dj-database-url", "structlog",
                     "gunicorn", "django-entrypoint"):  # fmt: skip
            assert name in dists

    def test_has_an_empty_root_owned_hooks_directory(self, engine: Engine) -> None:
        """/etc/django-entrypoint/hooks.d: there for downstream images, not writable by 10001."""
        script = (
            "import json, os\n"
            "p = '/etc/django-entrypoint/hooks.d'\n"
            "s = os.stat(p)\n"
            "print(json.dumps([s.st_uid, s.st_gid, oct(s.st_mode & 0o7777), os.listdir(p),"
            " os.access(p, os.W_OK)]))"
        )
        out = engine.podman(
            "run", "--rm", "--network", "host", "--pull", "never",
            "--entrypoint", "python3", BASE_IMAGE, "-c", script,
        )  # fmt: skip
        assert json.loads(out) == [0, 0, "0o755", [], False]

    def test_holds_the_source_it_was_built_from(self, engine: Engine) -> None:
        """The installed package is the build context's, file for file (a build cache that
        ignored a change would fail here)."""
        script = (
            "import entrypoint, hashlib, json, pathlib\n"
            "root = pathlib.Path(entrypoint.__file__).parent\n"
            "print(json.dumps({str(p.relative_to(root)): hashlib.sha256(p.read_bytes())"
            ".hexdigest() for p in root.rglob('*.py')}))"
        )
        out = engine.podman(
            "run", "--rm", "--network", "host", "--pull", "never",
            "--entrypoint", "python3", BASE_IMAGE, "-c", script,
        )  # fmt: skip
        source = ROOT / "entrypoint"
        expected = {
            str(p.relative_to(source)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in source.rglob("*.py")
        }
        assert json.loads(out) == expected

    def test_init_mode_runs_steps_and_exits(self, start: Start, migrated_url: str) -> None:
        """Without CMD the base image runs the steps and exits 0 (initContainer / Job mode);
        a project mounted at /app is importable (PYTHONPATH=/app)."""
        container = start(
            BASE_IMAGE,
            env={
                "DATABASE_URL": migrated_url,
                "DJANGO_SETTINGS_MODULE": "demo.settings",
                "ENTRYPOINT_STEPS": "wait",
            },
            options=("-v", f"{ROOT / 'image' / 'demo'}:/app:ro"),
        )
        assert container.wait_exit() == 0, container.logs()
        assert container.named("db_ready")
        assert container.named("startup_summary")
        assert not container.named("exec")


# -- the example (downstream) image -----------------------------------------------------------


@pytest.mark.slow
class TestExampleImage:
    def test_waits_then_execs_gunicorn_which_serves(self, start: Start, migrated_url: str) -> None:
        """The entrypoint waits for the database, then gunicorn takes over its PID under tini."""
        port = free_port()
        container = start(DEMO_IMAGE, env=serve_env(migrated_url, port, ENTRYPOINT_STEPS="wait"))
        status, body = container.http_get(port)
        assert status == 200, body
        assert json.loads(body) == {"app": "demo", "notes": 0}
        [exec_event] = container.named("exec")
        assert exec_event["command"] == "gunicorn"
        # gunicorn's master kept the entrypoint's PID; tini is PID 1.
        assert f"({exec_event['pid']})" in next(
            line for line in container.logs().splitlines() if "Listening at:" in line
        )
        assert f"0.0.0.0:{port}" in container.logs()
        procs = process_status(container)
        assert procs[1]["Name"] == "tini"
        assert procs[exec_event["pid"]]["Name"].startswith("gunicorn")
        assert procs[exec_event["pid"]]["PPid"] == "1"

    def test_waits_for_a_database_that_starts_late(self, start: Start, own_pg: Postgres) -> None:
        """Started before PostgreSQL is up, the container waits instead of failing, then serves."""
        port = free_port()
        container = start(DEMO_IMAGE, env=serve_env(own_pg.url(), port, ENTRYPOINT_STEPS="wait"))
        time.sleep(3)
        assert container.state()["Status"] == "running", container.logs()
        assert not container.named("db_ready")
        [failed] = container.named("db_check_failed")  # logged once, not once per check
        assert failed["reason"] == "connection_refused"
        pg_started = datetime.now(timezone.utc)
        own_pg.start()
        migrate_from_host(own_pg.url())
        status, body = container.http_get(port)
        assert status == 200, body
        [ready] = container.named("db_ready")
        assert datetime.fromisoformat(ready["timestamp"].replace("Z", "+00:00")) > pg_started

    def test_podman_stop_is_graceful(self, start: Start, engine: Engine, migrated_url: str) -> None:
        """podman stop sends SIGTERM through tini: gunicorn shuts down and exits 0 well inside
        Kubernetes' 30 s grace period (a server ignoring it would be killed: 137)."""
        port = free_port()
        container = start(DEMO_IMAGE, env=serve_env(migrated_url, port, ENTRYPOINT_STEPS="wait"))
        assert container.http_get(port)[0] == 200
        started = time.monotonic()
        engine.podman("stop", "--time", "30", container.name, timeout=60)
        elapsed = time.monotonic() - started
        assert container.state()["ExitCode"] == 0, container.logs()
        assert elapsed < 25, elapsed
        logs = container.logs()
        assert "Handling signal: term" in logs
        assert "Shutting down: Master" in logs

    def test_stop_during_wait_exits_143(self, start: Start, engine: Engine) -> None:
        """SIGTERM while the entrypoint still waits for the database reaches it through tini."""
        url = f"postgres://postgres@127.0.0.1:{free_port()}/nothing"
        container = start(DEMO_IMAGE, env=serve_env(url, free_port(), ENTRYPOINT_STEPS="wait"))
        deadline = time.monotonic() + 30
        while not container.named("step_started") and time.monotonic() < deadline:
            time.sleep(0.2)
        started = time.monotonic()
        engine.podman("stop", "--time", "30", container.name, timeout=60)
        assert time.monotonic() - started < 5
        assert container.state()["ExitCode"] == 143, container.logs()
        assert container.named("interrupted")

    def test_every_process_runs_as_uid_10001(self, start: Start, migrated_url: str) -> None:
        """tini, the gunicorn master and its workers all run as 10001:10001, not root."""
        port = free_port()
        container = start(DEMO_IMAGE, env=serve_env(migrated_url, port, ENTRYPOINT_STEPS="wait"))
        assert container.http_get(port)[0] == 200
        procs = process_status(container)
        assert len(procs) >= 3  # tini, master, worker (and the python3 reading /proc)
        for pid, fields in procs.items():
            assert fields["Uid"].split() == [UID] * 4, (pid, fields["Name"])
            assert fields["Gid"].split() == [UID] * 4, (pid, fields["Name"])

    def test_ensures_admin_from_a_mounted_secret_file(
        self, start: Start, migrated_url: str, admin_secret: Path
    ) -> None:
        """DJANGO_ADMIN_PASSWORD_FILE read from a mounted file (a Kubernetes Secret volume) by
        uid 10001: the admin is created, can log in through gunicorn, and the password is not
        in the logs."""
        port = free_port()
        env = serve_env(
            migrated_url,
            port,
            ENTRYPOINT_STEPS="wait,admin",
            DJANGO_ADMIN_USERNAME="admin",
            DJANGO_ADMIN_PASSWORD_FILE="/run/secrets/admin-password",
        )
        options = ("-v", f"{admin_secret}:/run/secrets/admin-password:ro")
        container = start(DEMO_IMAGE, env=env, options=options)
        assert container.http_get(port)[0] == 200
        assert len(container.named("admin_created")) == 1
        assert images.admin_login(port, "admin", ADMIN_PASSWORD)
        assert not images.admin_login(port, "admin", "wrong-password")
        assert ADMIN_PASSWORD not in container.logs()

    def test_read_only_root_filesystem_with_tmpfs_tmp(
        self, start: Start, migrated_url: str
    ) -> None:
        """With a read-only root and only /tmp writable the whole start-up and serving works."""
        port = free_port()
        container = start(
            DEMO_IMAGE,
            env=serve_env(migrated_url, port, ENTRYPOINT_STEPS="wait"),
            options=(
                "--read-only",
                "--read-only-tmpfs=false",
                "--tmpfs",
                "/tmp:rw,mode=1777,size=64m",
            ),
        )
        status, body = container.http_get(port)
        assert status == 200, body
        assert container.http_get(port, "/admin/login/")[0] == 200
        assert container.exec("touch", "/app/x", check=False).returncode != 0
        assert container.exec("touch", "/tmp/x", check=False).returncode == 0


# -- the full start: needs the migrate and admin steps ----------------------------------------


def applied(container: Container) -> list[tuple[str, str]]:
    return [(e["app"], e["name"]) for e in container.named("migration_applied")]


@pytest.mark.slow
class TestFullStart:
    def test_migrates_ensures_admin_and_serves(
        self, start: Start, pg: Postgres, pg_url: str, admin_secret: Path
    ) -> None:
        """Against an empty database: wait, migrate, ensure the admin from a mounted secret file,
        exec gunicorn; the demo answers and the admin can log in."""
        port = free_port()
        container = start(
            DEMO_IMAGE,
            env=serve_env(
                pg_url,
                port,
                DJANGO_ADMIN_USERNAME="admin",
                DJANGO_ADMIN_EMAIL="admin@example.com",
                DJANGO_ADMIN_PASSWORD_FILE="/run/secrets/admin-password",
            ),
            options=("-v", f"{admin_secret}:/run/secrets/admin-password:ro"),
        )
        status, body = container.http_get(port)
        assert status == 200, body
        assert ("notes", "0003_note_created") in applied(container)
        assert len(container.named("admin_created")) == 1
        assert ADMIN_PASSWORD not in container.logs()
        assert images.admin_login(port, "admin", ADMIN_PASSWORD)
        summary = container.named("startup_summary")[0]
        assert summary["steps"] == ["wait", "migrate", "admin", "manage", "hooks"]
        dbname = pg_url.rsplit("/", 1)[1]
        assert pg.execute(
            "SELECT is_superuser FROM auth_user WHERE username = 'admin'", dbname
        ) == [(True,)]

    def test_three_replicas_on_one_empty_database(
        self, start: Start, pg: Postgres, pg_url: str, admin_secret: Path
    ) -> None:
        """Three containers started at once all become ready; each migration is applied once
        and one admin is created."""
        ports = [free_port() for _ in range(3)]
        admin = {
            "DJANGO_ADMIN_USERNAME": "admin",
            "DJANGO_ADMIN_PASSWORD_FILE": "/run/secrets/admin-password",
        }
        mount = ("-v", f"{admin_secret}:/run/secrets/admin-password:ro")
        containers = [
            start(DEMO_IMAGE, env=serve_env(pg_url, port, **admin), options=mount) for port in ports
        ]
        for container, port in zip(containers, ports, strict=True):
            status, body = container.http_get(port, timeout=120)
            assert status == 200, body
        everything = [m for c in containers for m in applied(c)]
        assert len(everything) == len(set(everything))
        dbname = pg_url.rsplit("/", 1)[1]
        rows = pg.execute("SELECT app, name FROM django_migrations", dbname)
        assert sorted(everything) == sorted((str(a), str(n)) for a, n in rows)
        assert len([m for m in everything if m[0] == "notes"]) == DEMO_MIGRATIONS["notes"]
        assert sum(len(c.named("admin_created")) for c in containers) == 1
