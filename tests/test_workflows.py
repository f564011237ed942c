"""The GitHub workflows, checked offline: schema, zizmor, pinned actions, least privilege; and
the release notes they publish (scripts/changelog.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
BIN = Path(sys.executable).parent
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def load(path: Path) -> dict[str, Any]:
    data: dict[Any, Any] = yaml.safe_load(path.read_text())
    if True in data:  # PyYAML reads the key `on` as True (YAML 1.1)
        data["on"] = data.pop(True)
    return data


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_both_workflows_exist() -> None:
    assert [f.name for f in FILES] == ["ci.yml", "release.yml"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_schema(path: Path) -> None:
    """check-jsonschema's vendored GitHub workflow schema accepts the file."""
    proc = subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", path],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_zizmor_finds_nothing_of_medium_severity_or_above() -> None:
    proc = subprocess.run(
        [BIN / "zizmor", "--offline", "--format", "json", WORKFLOWS],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.stdout.strip(), proc.stderr
    findings = json.loads(proc.stdout)
    serious = [
        (f["ident"], f["determinations"]["severity"])
        for f in findings
        if f["determinations"]["severity"] not in ("Unknown", "Informational", "Low")
    ]
    assert serious == [], json.dumps(findings, indent=1)[:4000]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_actions_pinned_by_commit_sha(path: Path) -> None:
    """Every action is a full 40-hex commit, with the release it is in a comment."""
    uses = [s["uses"] for s in steps(load(path)) if "uses" in s]
    assert uses
    for ref in uses:
        assert PINNED.match(ref), ref
    for line in path.read_text().splitlines():
        if "uses:" in line:
            assert re.search(r"@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), line


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_least_privilege(path: Path) -> None:
    """Nothing by default; each job asks for what it needs, and only signing and publishing
    get an OIDC token, only the release job may write the repository."""
    workflow = load(path)
    assert workflow["permissions"] == {}
    for name, job in workflow["jobs"].items():
        permissions = job["permissions"]
        if permissions.get("id-token") == "write":
            assert name in ("image", "pypi"), name
        if permissions.get("contents") == "write":
            assert name == "github-release", name
        assert "write-all" not in json.dumps(permissions)
    for step in steps(workflow):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False


def test_ci_runs_the_readme_test_command() -> None:
    workflow = load(WORKFLOWS / "ci.yml")
    assert set(workflow["on"]) == {"push", "pull_request"}
    assert any("scripts/test" in s.get("run", "") for s in steps(workflow))


def test_release_runs_on_version_tags_and_does_everything() -> None:
    """Image matrix for both platforms published by `image/build.py publish` (what
    tests/test_publish.py runs against a real registry): pushed by digest, signed keyless with
    cosign, SBOM and provenance attached, then tagged; PyPI by trusted publishing (no token); a
    GitHub release from the CHANGELOG."""
    workflow = load(WORKFLOWS / "release.yml")
    assert workflow["on"] == {"push": {"tags": ["v[0-9]+.[0-9]+.[0-9]+"]}}
    jobs = workflow["jobs"]
    assert jobs["image"]["strategy"]["matrix"]["include"] == (
        "${{ fromJSON(needs.plan.outputs.matrix) }}"
    )
    [publish] = [s for s in jobs["image"]["steps"] if "image/build.py publish" in s.get("run", "")]
    command = " ".join(publish["run"].replace("\\\n", " ").split())
    for flag in ("--platform linux/amd64,linux/arm64", "--sign-keyless", '--revision "$GITHUB_SHA"',
                 '--version "$VERSION"', "--python", "--django"):  # fmt: skip
        assert flag in command, flag
    # cosign reaches the OIDC token and the registry login through sudo
    assert "ACTIONS_ID_TOKEN_REQUEST_TOKEN" in command
    assert "REGISTRY_AUTH_FILE" in command
    assert "DOCKER_CONFIG" in command
    uses = [s.get("uses", "") for s in jobs["image"]["steps"]]
    assert uses.index(next(u for u in uses if "cosign-installer" in u)) < uses.index(
        next(u for u in uses if "upload-artifact" in u)
    )
    assert not [u for u in uses if "build-push-action" in u]  # one path: build.py publish
    [publish] = [s for s in jobs["pypi"]["steps"] if "pypi-publish" in s.get("uses", "")]
    assert "with" not in publish  # no password: trusted publishing
    assert "secrets." not in (WORKFLOWS / "release.yml").read_text().replace(
        "secrets.GITHUB_TOKEN", ""
    )
    assert any("scripts/changelog.py" in s.get("run", "") for s in jobs["github-release"]["steps"])


class TestChangelog:
    def run(self, version: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, ROOT / "scripts" / "changelog.py", version],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def test_the_version_the_workflow_would_publish_has_its_section(self) -> None:
        proc = self.run(VERSION)
        assert proc.returncode == 0, proc.stderr
        assert "### " in proc.stdout
        assert "## [" not in proc.stdout  # one section only, not the next one

    def test_a_version_without_section_stops_the_release(self) -> None:
        proc = self.run("99.0.0")
        assert proc.returncode == 1
        assert "no non-empty '## [99.0.0]' section" in proc.stderr
