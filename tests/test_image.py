"""The base image and the example image, linted, built with buildah and run with podman.

The images are built once per session on a debootstrap-made Debian base (see tests/images.py) and
run with host networking against the tests' PostgreSQL on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests import images
from tests.cli import ROOT, base_env
from tests.images import BASE_IMAGE, DEMO_IMAGE, OS_IMAGE, Container, Engine
from tests.services import Postgres, free_port
from tests.watch import wait_until

DOCKERFILES = ["Dockerfile", "image/example/Dockerfile"]
DJANGO_LINES = ("5.2", "6.0", "6.1")
DEMO_MIGRATIONS = {"notes": 3}  # the demo app's own migrations
UID = "10001"
ADMIN_PASSWORD = "s3cret-Adm1n-pw"
SBOM_PATH = "/usr/share/doc/django-entrypoint/sbom.cdx.json"  # documented in docs/image.md


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

    @pytest.mark.parametrize("django", DJANGO_LINES)
    def test_locked_requirements_satisfy_the_package(self, django: str) -> None:
        """Each Django line's lock pins every runtime dependency of the package, within its
        declared ranges, plus gunicorn, the Django of its line, and a sha256 for every pin."""
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
        declared = {Requirement(r).name.lower(): Requirement(r) for r in project["dependencies"]}
        locked = locked_requirements(ROOT / "image" / f"requirements-django{django}.txt")
        pinned = {req.name.lower(): req for req, _ in locked}
        assert {*declared, "gunicorn"} <= set(pinned)
        for requirement, hashes in locked:
            [spec] = requirement.specifier
            assert spec.operator == "==", requirement
            assert hashes, f"{requirement} has no hash"
            assert all(h.startswith("sha256:") and len(h) == 71 for h in hashes), hashes
        for name, requirement in declared.items():
            version = next(iter(pinned[name].specifier)).version
            assert requirement.specifier.contains(version), (pinned[name], requirement)
            for extra in requirement.extras:  # psycopg[binary]: psycopg-binary, same version
                assert pinned[f"{name}-{extra}"].specifier == pinned[name].specifier
        assert next(iter(pinned["django"].specifier)).version.startswith(f"{django}.")

    def test_build_tools_are_locked_and_installed_with_hashes(self) -> None:
        """The build stage installs nothing unpinned: every pip install in the Dockerfile reads a
        hash-locked file with --require-hashes and wheels only, or the local wheel, offline."""
        locked = locked_requirements(ROOT / "image" / "requirements-build.txt")
        assert {"setuptools", "cyclonedx-bom"} <= {r.name.lower() for r, _ in locked}
        assert all(hashes for _, hashes in locked)
        text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
        installs = re.findall(r"/opt/\w+/bin/pip (?:install|wheel)[^&\n]*", text)
        assert len(installs) == 4, installs
        for command in installs:
            assert ("--require-hashes --only-binary=:all:" in command) or (
                "--no-index --no-deps" in command or "--no-build-isolation --no-deps" in command
            ), command


def locked_requirements(path: Path) -> list[tuple[Requirement, list[str]]]:
    """(requirement, hashes) per entry of a pip requirements file with --hash options."""
    text = re.sub(r"\\\n", " ", path.read_text())
    entries = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        requirement, *options = re.split(r"\s+--hash=", line)
        entries.append((Requirement(requirement.strip()), options))
    return entries


# -- fixtures ---------------------------------------------------------------------------------


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
        for key in ("title", "description", "version", "revision", "licenses", "created"):
            assert labels[f"org.opencontainers.image.{key}"]

    def test_labels_name_the_version_revision_and_base_digest(self, engine: Engine) -> None:
        """image/build.py records what the image was built from: the package version, the git
        commit, the creation time, and the base image with its digest."""
        labels = engine.inspect(BASE_IMAGE)["Labels"]
        oci = {k.removeprefix("org.opencontainers.image."): v for k, v in labels.items()}
        assert oci["version"] == images.version()
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
            check=False,
        ).stdout.strip()  # fmt: skip
        assert oci["revision"] == (head or "unknown")
        assert datetime.fromisoformat(oci["created"]).year >= 2026
        os_image = OS_IMAGE.format(arch="amd64")
        assert oci["base.name"] == os_image
        assert oci["base.digest"] == engine.inspect(os_image)["Digest"]
        assert oci["base.digest"].startswith("sha256:")

    def test_python_is_the_default_base_minor(self, engine: Engine) -> None:
        """Built on trixie: the Python minor of the default BASE_IMAGE (python:3.13-slim-trixie)."""
        dockerfile = (ROOT / "Dockerfile").read_text()
        assert f"ARG BASE_IMAGE=python:{images.PYTHON}-slim-{images.SUITE}" in dockerfile
        out = engine.podman(
            "run", "--rm", "--network", "host", "--pull", "never", "--entrypoint", "python3",
            BASE_IMAGE, "-c", "import sys, django; print(sys.version_info[:2], django.VERSION[:2])",
        )  # fmt: skip
        assert (
            out.strip()
            == f"({images.PYTHON.replace('.', ', ')}) ({images.DJANGO.replace('.', ', ')})"
        )

    def test_no_setuid_or_setgid_file(self, engine: Engine) -> None:
        """The base OS has setuid/setgid programs (su, passwd...); the final image has none."""
        find = ("find", "/", "-xdev", "-type", "f", "-perm", "/6000")
        run = ("run", "--rm", "--network", "host", "--pull", "never", "--user", "0",
               "--entrypoint", find[0])  # fmt: skip
        in_base = engine.podman(*run, OS_IMAGE.format(arch="amd64"), *find[1:]).split()
        assert "/usr/bin/su" in in_base or "/bin/su" in in_base, in_base
        assert engine.podman(*run, BASE_IMAGE, *find[1:]).split() == []

    def test_sbom_inside_lists_the_installed_environment(self, engine: Engine) -> None:
        """The CycloneDX SBOM at its documented path names every distribution of the venv with
        its version, and the copy beside the OCI archive is the same file."""
        script = (
            "import importlib.metadata as m, json, pathlib\n"
            "print(json.dumps([pathlib.Path('" + SBOM_PATH + "').read_text(),"
            " sorted(f\"{d.metadata['Name'].lower()}=={d.version}\" for d in m.distributions())]))"
        )
        out = engine.podman(
            "run", "--rm", "--network", "host", "--pull", "never",
            "--entrypoint", "python3", BASE_IMAGE, "-c", script,
        )  # fmt: skip
        text, installed = json.loads(out)
        sbom = json.loads(text)
        assert sbom["bomFormat"] == "CycloneDX"
        root = sbom["metadata"]["component"]
        assert (root["name"], root["version"]) == ("django-entrypoint", images.version())
        listed = {f"{c['name'].lower()}=={c['version']}" for c in sbom["components"]}
        assert listed | {f"django-entrypoint=={images.version()}"} == set(installed)
        tag = f"{images.version()}-py{images.PYTHON}-django{images.DJANGO}"
        beside = images.cache_dir() / "dist" / f"django-entrypoint-{tag}.amd64.cdx.json"
        assert json.loads(beside.read_text()) == sbom

    def test_oci_archive_holds_the_image(self, engine: Engine) -> None:
        """The OCI archive written beside the SBOM is an OCI layout whose index names a
        linux/amd64 image with the labels of the one built."""
        tag = f"{images.version()}-py{images.PYTHON}-django{images.DJANGO}"
        archive = images.cache_dir() / "dist" / f"django-entrypoint-{tag}.oci.tar"
        with tarfile.open(archive) as tar:
            layout = json.load(tar.extractfile("oci-layout"))  # type: ignore[arg-type]
            index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
            [manifest_list] = index["manifests"]
            digest = manifest_list["digest"].split(":")[1]
            inner = json.load(tar.extractfile(f"blobs/sha256/{digest}"))  # type: ignore[arg-type]
        assert layout["imageLayoutVersion"] == "1.0.0"
        platforms = [m["platform"]["architecture"] for m in inner["manifests"]]
        assert platforms == ["amd64"]

    def test_added_layers_within_the_size_budget(
        self, engine: Engine, request: pytest.FixtureRequest
    ) -> None:
        """The layers the entrypoint adds on top of the base (tini, the venv, config, SBOM) stay
        within 80 MB uncompressed; the figure is printed at the end of the run."""
        added = request.config.stash[images.SIZES_KEY]["amd64"]
        assert 10_000_000 < added <= images.SIZE_BUDGET_BYTES, added

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

    def test_pglast_parses_with_its_debug_symbols_stripped(self, engine: Engine) -> None:
        """The build stage strips pglast's parser module (28 of its 33 MB): it still parses,
        and neither strip nor the parser's C sources reach the image."""
        script = (
            "import json, pathlib, shutil, pglast\n"
            "[raw] = pglast.parse_sql('ALTER TABLE t ADD COLUMN c int')\n"
            "here = pathlib.Path(pglast.__file__).parent\n"
            "print(json.dumps([type(raw.stmt).__name__, shutil.which('strip'),"
            " sorted(p.name for p in here.glob('*.c')), max(p.stat().st_size"
            " for p in here.glob('parser*.so'))]))"
        )
        out = engine.podman(
            "run", "--rm", "--network", "host", "--pull", "never",
            "--entrypoint", "python3", BASE_IMAGE, "-c", script,
        )  # fmt: skip
        statement, strip, sources, size = json.loads(out)
        assert (statement, strip, sources) == ("AlterTableStmt", None, [])
        assert size < 10_000_000, size

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
        wait_until(lambda: bool(container.named("db_check_failed")), timeout=60)
        time.sleep(3)  # more failed checks, still running
        assert container.state()["Status"] == "running", container.logs()
        assert not container.named("db_ready")
        [failed] = container.named("db_check_failed")  # logged once, not once per check
        assert failed["reason"] == "connection_refused"
        pg_started = datetime.now(UTC)
        own_pg.start()
        migrate_from_host(own_pg.url())
        status, body = container.http_get(port)
        assert status == 200, body
        [ready] = container.named("db_ready")
        assert datetime.fromisoformat(ready["timestamp"]) > pg_started

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
        run a hook mounted as a ConfigMap would be (from its checked descriptor, as 10001, the
        entrypoint a subreaper), exec gunicorn; the demo answers and the admin can log in."""
        port = free_port()
        hooks = admin_secret.parent / "hooks.d"
        hooks.mkdir(mode=0o755)
        (hooks / "10-hello").write_text('#!/bin/sh\necho "uid $(id -u) ran $ENTRYPOINT_HOOK"\n')
        (hooks / "10-hello").chmod(0o755)
        container = start(
            DEMO_IMAGE,
            env=serve_env(
                pg_url,
                port,
                DJANGO_ADMIN_USERNAME="admin",
                DJANGO_ADMIN_EMAIL="admin@example.com",
                DJANGO_ADMIN_PASSWORD_FILE="/run/secrets/admin-password",
            ),
            options=(
                *("-v", f"{admin_secret}:/run/secrets/admin-password:ro"),
                *("-v", f"{hooks}:/etc/django-entrypoint/hooks.d:ro"),
            ),
        )
        status, body = container.http_get(port)
        assert status == 200, body
        assert [e["line"] for e in container.named("hook_output")] == [
            "uid 10001 ran /etc/django-entrypoint/hooks.d/10-hello"
        ]
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


# -- the build script's plan, and the arm64 image ---------------------------------------------


def build_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "image" / "build.py"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class TestBuildPlan:
    def test_one_image_per_python_and_django_line_with_its_tags(self) -> None:
        """Six variants; each has an immutable version tag and floating ones; `latest` is the
        newest Python with the Django LTS, and no tag names two variants."""
        proc = build_script("plan", "--version", "1.4.2", "--registry", "ghcr.io/acme/dje")
        assert proc.returncode == 0, proc.stderr
        matrix = json.loads(proc.stdout)
        assert [(v["python"], v["django"]) for v in matrix] == [
            (p, d) for p in ("3.12", "3.13") for d in DJANGO_LINES
        ]
        tags = [t for v in matrix for t in v["tags"]]
        assert len(tags) == len(set(tags))
        lts = next(v for v in matrix if (v["python"], v["django"]) == ("3.13", "5.2"))
        assert lts["tags"] == [
            "ghcr.io/acme/dje:1.4.2-py3.13-django5.2",
            "ghcr.io/acme/dje:1.4-py3.13-django5.2",
            "ghcr.io/acme/dje:py3.13-django5.2",
            "ghcr.io/acme/dje:latest",
        ]
        assert [t for t in tags if t.endswith(":latest")] == ["ghcr.io/acme/dje:latest"]
        assert {v["base"] for v in matrix} == {
            "docker.io/library/python:3.12-slim-trixie",
            "docker.io/library/python:3.13-slim-trixie",
        }

    def test_unsupported_django_line_is_refused(self) -> None:
        proc = build_script("plan", "--django", "4.2")
        assert proc.returncode == 2
        assert "unsupported 4.2: choose from 5.2, 6.0, 6.1" in proc.stderr

    def test_defaults_to_the_project_version(self) -> None:
        matrix = json.loads(build_script("plan").stdout)
        assert matrix[0]["tags"][0].endswith(f":{images.version()}-py3.12-django5.2")


@pytest.mark.slow
class TestArm64Image:
    def test_builds_and_runs_under_emulation(self, engine: Engine, arm64_image: str) -> None:
        """image/build.py --platform linux/arm64: an arm64 image whose entrypoint runs (under
        qemu here), with its SBOM beside the archive and within the size budget."""
        assert engine.inspect(arm64_image)["Architecture"] == "arm64"
        out = engine.podman(
            "run", "--rm", "--network", "host", "--pull", "never", "--arch", "arm64",
            "--entrypoint", "python3", arm64_image, "-c",
            "import platform, entrypoint; print(platform.machine(), entrypoint.__version__)",
            timeout=300,
        )  # fmt: skip
        assert out.split() == ["aarch64", images.version()]
        tag = f"{images.version()}-py{images.PYTHON}-django{images.DJANGO}"
        sbom = images.cache_dir() / "dist" / f"django-entrypoint-{tag}.arm64.cdx.json"
        assert json.loads(sbom.read_text())["bomFormat"] == "CycloneDX"
