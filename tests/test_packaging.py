"""The Python package as PyPI gets it: built with ``python -m build``, checked with twine,
uploaded with twine to a package index (a local pypiserver) and installed from there by name into
a clean venv."""

from __future__ import annotations

import email.parser
import json
import shutil
import subprocess
import sys
import tarfile
import tomllib
import urllib.request
import zipfile
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest

import entrypoint
from tests.cli import DEMO, ROOT
from tests.services import free_port, http_server

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
VERSION = PROJECT["version"]
COMMANDS = ("wait4db", "lockedmigrate", "ensureadmin", "entrypointstatus")


def run(*cmd: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sdist and wheel from a copy of the sources (the build leaves nothing in the work tree)."""
    work = tmp_path_factory.mktemp("build")
    source = work / "src"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv*", ".cache", "dist", "build", "*.egg-info", "__pycache__", ".*_cache"
        ),
    )
    out = work / "dist"
    run(sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", out, source)
    return out


def wheel_of(dist: Path) -> Path:
    [wheel] = dist.glob("*.whl")
    return wheel


def metadata(dist: Path) -> Message:
    with zipfile.ZipFile(wheel_of(dist)) as archive:
        text = archive.read(f"django_entrypoint-{VERSION}.dist-info/METADATA").decode()
    return email.parser.Parser().parsestr(text)


class TestDistributions:
    def test_twine_check_strict_passes(self, dist: Path) -> None:
        """Both files render on PyPI: twine finds no warning (strict) in their metadata."""
        files = sorted(dist.iterdir())
        assert sorted(f.suffix for f in files) == [".gz", ".whl"]
        out = run(sys.executable, "-m", "twine", "check", "--strict", *files)
        assert out.count("PASSED") == 2, out

    def test_wheel_holds_the_commands_and_py_typed(self, dist: Path) -> None:
        with zipfile.ZipFile(wheel_of(dist)) as archive:
            names = set(archive.namelist())
        for command in COMMANDS:
            assert f"entrypoint/management/commands/{command}.py" in names
        assert "entrypoint/py.typed" in names
        assert f"django_entrypoint-{VERSION}.dist-info/licenses/LICENSE" in names
        assert not [n for n in names if n.startswith(("tests/", "image/", "benchmarks/"))]

    def test_sdist_holds_the_sources_and_licence(self, dist: Path) -> None:
        [sdist] = dist.glob("*.tar.gz")
        with tarfile.open(sdist) as archive:
            names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
        assert {"LICENSE", "README.md", "pyproject.toml", "entrypoint/py.typed"} <= names
        assert {f"entrypoint/management/commands/{c}.py" for c in COMMANDS} <= names

    def test_metadata_is_complete(self, dist: Path) -> None:
        """Version in step with the code, SPDX licence, the supported Python and Django versions
        as classifiers and bounds, project URLs, the README as description."""
        meta = metadata(dist)
        assert meta["Version"] == VERSION == entrypoint.__version__
        assert meta["License-Expression"] == "BSD-3-Clause"
        assert meta["Requires-Python"] == ">=3.11"
        classifiers = set(meta.get_all("Classifier") or [])
        for python in ("3.11", "3.12", "3.13"):
            assert f"Programming Language :: Python :: {python}" in classifiers
        for django in ("5.2", "6.0", "6.1"):
            assert f"Framework :: Django :: {django}" in classifiers
        assert "Framework :: Django :: 4.2" not in classifiers
        assert "Django<7,>=5.2" in (meta.get_all("Requires-Dist") or [])
        urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
        assert set(urls) >= {"Homepage", "Source", "Issues", "Changelog"}
        assert meta["Description-Content-Type"] == "text/markdown"
        assert "## Quickstart" in meta.get_payload()


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A package index on a free loopback port that takes uploads without credentials; what it
    does not hold (the dependencies) it redirects to its default upstream."""
    packages = tmp_path_factory.mktemp("index")
    url = f"http://127.0.0.1:{free_port()}"
    command = [
        str(Path(sys.executable).parent / "pypi-server"), "run", "--host", "127.0.0.1",
        "--port", url.rsplit(":", 1)[1], "--authenticate", ".", "--passwords", ".", str(packages),
    ]  # fmt: skip
    with http_server(command, f"{url}/simple/", log=packages.parent / "pypi-server.log"):
        yield url


class TestPublished:
    def test_uploaded_then_installed_by_name_runs_the_cli_and_the_commands(
        self, dist: Path, index: str, tmp_path: Path
    ) -> None:
        """twine uploads the sdist and wheel; a venv that has never seen the sources installs
        `django-entrypoint` by name from that index: the console script answers --help and
        --version, and a project's manage.py knows lockedmigrate."""
        out = run(
            sys.executable, "-m", "twine", "upload", "--non-interactive", "--disable-progress-bar",
            "--repository-url", f"{index}/", "-u", "release", "-p", "unused", *sorted(dist.iterdir()),
        )  # fmt: skip
        assert out.count("Uploading django_entrypoint-") == 2, out
        with urllib.request.urlopen(f"{index}/simple/django-entrypoint/", timeout=10) as page:
            listed = page.read().decode()
        assert f"django_entrypoint-{VERSION}.tar.gz" in listed
        venv = tmp_path / "venv"
        run(sys.executable, "-m", "venv", venv)
        report = tmp_path / "report.json"
        run(
            venv / "bin" / "python", "-m", "pip", "install", "-q", "--index-url",
            f"{index}/simple/", "--report", report, f"django-entrypoint=={VERSION}",
        )  # fmt: skip
        [installed] = [
            item for item in json.loads(report.read_text())["install"]
            if item["metadata"]["name"] == "django-entrypoint"
        ]  # fmt: skip
        assert installed["download_info"]["url"].startswith(f"{index}/"), installed
        env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
        assert run(venv / "bin" / "django-entrypoint", "--version", env=env).strip() == VERSION
        assert "DATABASE_URL" in run(venv / "bin" / "django-entrypoint", "--help", env=env)
        project = tmp_path / "project"
        shutil.copytree(DEMO, project, ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3"))
        where = run(
            venv / "bin" / "python", "-c", "import entrypoint; print(entrypoint.__file__)",
            cwd=project, env=env,
        )  # fmt: skip
        assert where.startswith(str(venv)), where
        help_text = run(
            venv / "bin" / "python", "manage.py", "lockedmigrate", "--help",
            cwd=project, env={**env, "DEMO_DATA_DIR": str(tmp_path)},
        )  # fmt: skip
        assert "--lock-id" in help_text
