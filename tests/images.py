"""Build and run the real images without a Docker engine: debootstrap, buildah, podman.

No registry can be pulled from, so the base OS is a Debian rootfs made with debootstrap (the
release and Python minor of the default BASE_IMAGE, python:3.13-slim-trixie: trixie has 3.13) and
committed as a local image per platform by ``image/build.py base``, the documented offline
recipe; ``image/build.py build`` builds the project's Dockerfile on it.
Everything lives under one cache directory that survives test runs (a rootfs takes ~40 s to make
for amd64, minutes for arm64 under qemu, and the overlay storage keeps buildah's layers):
/var/cache/django-entrypoint for root, or ``$DJANGO_ENTRYPOINT_TEST_CACHE``. Containers run with
host networking only.
"""

from __future__ import annotations

import fcntl
import http.cookiejar
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.cli import ROOT

SUITE = "trixie"
PYTHON = "3.13"  # trixie's python3, the minor of the default BASE_IMAGE
DJANGO = "5.2"
MIRROR = "http://deb.debian.org/debian"
OS_IMAGE = f"localhost/django-entrypoint-test-os:{SUITE}-{{arch}}"
BUILT = "localhost/django-entrypoint-test"  # image/build.py --name: its per-platform images
BASE_IMAGE = "localhost/django-entrypoint:test"
DEMO_IMAGE = "localhost/django-entrypoint-demo:test"
LABEL = "django-entrypoint-test"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
TIMINGS_KEY = pytest.StashKey[dict[str, float]]()
SIZES_KEY = pytest.StashKey[dict[str, int]]()
SIZE_BUDGET_BYTES = 80_000_000


def version() -> str:
    project: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["version"]


def cache_dir() -> Path:
    configured = os.environ.get("DJANGO_ENTRYPOINT_TEST_CACHE")
    if configured:
        return Path(configured)
    if os.geteuid() == 0:
        return Path("/var/cache/django-entrypoint")
    return Path.home() / ".cache" / "django-entrypoint"


def missing_tools() -> list[str]:
    return [t for t in ("buildah", "podman", "runc", "debootstrap") if not _which(t)]


LOCK_WAIT_S = 900


def _which(tool: str) -> str | None:
    return shutil.which(tool) or next(
        (str(p) for p in (Path("/usr/sbin") / tool, Path("/sbin") / tool) if p.exists()), None
    )


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """One test session at a time uses the shared cache and container storage."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        # Bounded: a stuck earlier session must fail this one, not hang CI.
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{path} is locked by another test session") from None
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class Engine:
    """buildah and podman pointed at a storage and configuration the tests own."""

    root: Path
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.storage_conf = self.root / "storage.conf"
        self.storage_conf.write_text(
            "[storage]\n"
            'driver = "overlay"\n'
            f'graphroot = "{self.root / "graph"}"\n'
            f'runroot = "{self.root / "run"}"\n'
        )
        self.containers_conf = self.root / "containers.conf"
        # crun fails on these machines; the ulimits must stay below the host's.
        self.containers_conf.write_text(
            "[containers]\n"
            'default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n'
            'netns = "host"\n'
            "[engine]\n"
            'runtime = "runc"\n'
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
        )
        self.env = {
            **os.environ,
            "CONTAINERS_STORAGE_CONF": str(self.storage_conf),
            "CONTAINERS_CONF": str(self.containers_conf),
        }

    def run(
        self, *cmd: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            list(cmd), env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
            )
        return proc

    def podman(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        return self.run("podman", *args, timeout=timeout, check=check).stdout

    def buildah(self, *args: str, timeout: float = 120) -> str:
        return self.run("buildah", *args, timeout=timeout).stdout

    def image_exists(self, ref: str) -> bool:
        return self.run("podman", "image", "exists", ref, check=False).returncode == 0

    def timed(self, name: str, *cmd: str, timeout: float) -> None:
        started = time.monotonic()
        self.run(*cmd, timeout=timeout)
        self.timings[name] = round(time.monotonic() - started, 1)

    # -- building ---------------------------------------------------------------------------

    def ensure_os_image(self, cache: Path, arch: str = "amd64") -> str:
        """A Debian base with python3 and python3-venv, as if pulled from a registry: made by
        ``image/build.py base``, the documented offline recipe (rootfs kept in the cache)."""
        started = time.monotonic()
        out = self.run(
            sys.executable, str(ROOT / "image" / "build.py"), "base",
            "--suite", SUITE, "--platform", f"linux/{arch}", "--mirror", MIRROR,
            "--name", OS_IMAGE, "--cache", str(cache),
            timeout=1800,
        ).stdout  # fmt: skip
        self.timings[f"os_image_{arch}"] = round(time.monotonic() - started, 1)
        [image] = json.loads(out)
        return str(image)

    def build_with_script(self, out: Path, *arches: str) -> list[str]:
        """image/build.py, as a release would run it, on the local base: one archive in ``out``
        over the platforms given; the per-platform images' names."""
        started = time.monotonic()
        self.run(
            sys.executable,
            str(ROOT / "image" / "build.py"),
            "build",
            "--python", PYTHON,
            "--django", DJANGO,
            "--platform", ",".join(f"linux/{arch}" for arch in arches),
            "--base", OS_IMAGE,
            "--pull", "never",
            "--name", BUILT,
            "--out", str(out),
            *(["--pip-ca", str(HOST_CA)] if HOST_CA.exists() else []),
            timeout=3600,
        )  # fmt: skip
        self.timings[f"image_build_{'_'.join(arches)}"] = round(time.monotonic() - started, 1)
        return [f"{BUILT}:{version()}-py{PYTHON}-django{DJANGO}-{arch}" for arch in arches]

    def build(self, tag: str, *args: str) -> None:
        cert = (
            # A build secret, not -v: a -v mount point is left behind as an empty file.
            ["--secret", f"id=pip-ca,src={HOST_CA}", "--build-arg", "PIP_CERT=/run/secrets/pip-ca"]
            if HOST_CA.exists()
            else []
        )
        self.timed(
            tag,
            "buildah",
            "bud",
            "--isolation",
            "chroot",
            "--layers",
            "--pull=never",
            *cert,
            *args,
            "-t",
            tag,
            str(ROOT),
            timeout=900,
        )

    def inspect(self, image: str) -> dict[str, Any]:
        [found] = json.loads(self.podman("image", "inspect", image))
        return dict(found)

    def added_bytes(self, image: str, base: str) -> int:
        """What the image's own layers add on top of its base (uncompressed)."""
        return int(self.inspect(image)["Size"]) - int(self.inspect(base)["Size"])

    # -- running ----------------------------------------------------------------------------

    def start(
        self,
        image: str,
        *command: str,
        name: str,
        env: dict[str, str],
        options: tuple[str, ...] = (),
    ) -> Container:
        env_args = [a for key, value in env.items() for a in ("-e", f"{key}={value}")]
        self.podman(
            "run",
            "-d",
            "--name",
            name,
            "--label",
            LABEL,
            "--network",
            "host",
            "--pull",
            "never",
            *env_args,
            *options,
            image,
            *command,
        )
        return Container(self, name)

    def remove_test_containers(self) -> None:
        names = self.podman("ps", "-a", "--filter", f"label={LABEL}", "--format", "{{.Names}}")
        for name in names.split():
            self.podman("rm", "-f", "-t", "0", name, check=False)


@dataclass
class Container:
    engine: Engine
    name: str

    def state(self) -> dict[str, Any]:
        out = self.engine.podman("inspect", "--format", "{{json .State}}", self.name)
        state: dict[str, Any] = json.loads(out)
        return state

    def logs(self) -> str:
        proc = self.engine.run("podman", "logs", self.name, check=False)
        return proc.stdout + proc.stderr

    def events(self) -> list[dict[str, Any]]:
        """The entrypoint's JSON log lines (gunicorn's own lines are plain text)."""
        return [
            json.loads(line)
            for line in self.logs().splitlines()
            if line.startswith("{") and '"event"' in line
        ]

    def named(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events() if e.get("event") == event]

    def wait_exit(self, timeout: float = 60) -> int:
        out = self.engine.podman("wait", self.name, timeout=timeout)
        return int(out.strip().splitlines()[-1])

    def exec(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.engine.run("podman", "exec", self.name, *cmd, check=check)

    def http_get(self, port: int, path: str = "/", timeout: float = 60) -> tuple[int, str]:
        """Poll until the server answers; fail early, with the logs, if the container exits."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
                    return resp.status, resp.read().decode()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read().decode()
            except OSError as exc:
                last = exc
            if self.state()["Status"] != "running":
                raise AssertionError(f"{self.name} exited before serving:\n{self.logs()}")
            time.sleep(0.3)
        raise AssertionError(f"{self.name} did not answer on {port}: {last}\n{self.logs()}")


def admin_login(port: int, username: str, password: str) -> bool:
    """Log in to the Django admin through the server, as a browser would (CSRF token, cookies)."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    base = f"http://127.0.0.1:{port}"
    with opener.open(f"{base}/admin/login/", timeout=10) as response:
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.read().decode())
    assert token, "no CSRF token on the admin login page"
    form = {
        "csrfmiddlewaretoken": token.group(1),
        "username": username,
        "password": password,
        "next": "/admin/",
    }
    request = urllib.request.Request(
        f"{base}/admin/login/",
        data=urllib.parse.urlencode(form).encode(),
        headers={"Referer": f"{base}/admin/login/"},
    )
    with opener.open(request, timeout=10) as response:
        return bool(
            response.url.endswith("/admin/") and "Site administration" in response.read().decode()
        )
