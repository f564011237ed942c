"""README.md and docs/*.md: every snippet works as written, or this test says where it does not.

Shell (the fenced blocks, and the commands in inline code that start with a tool's name) parses
with ``bash -n``, names files that exist, and passes only the build arguments its Dockerfile
declares. Dockerfiles pass hadolint and set only variables the entrypoint knows. YAML parses;
Kubernetes objects validate with ``kubernetes-validate --strict`` (a pod spec fragment inside a
Pod); a Helm template is rendered with the chart snippets, as a user's chart would, and
validated. JSON parses, a plan against tests/plan.schema.json. Every ``ENTRYPOINT_*`` name on
these pages is a variable the entrypoint reads, and every image path is the published one.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from entrypoint import config
from tests.cli import ROOT
from tests.test_chart import CHART, render, user_chart, validate, write_docs

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
# Inline code that is a command a reader would paste into a shell.
TOOLS = ("docker ", "podman ", "helm ", "kubectl ", "python3 ", "scripts/", "benchmarks/run")
# Paths in this repository that a command may name.
REPO_PATH = re.compile(
    r"(?<![\w./$-])((?:scripts|image|chart-snippets|tests|docs|benchmarks|entrypoint)/[\w./-]*\w)"
)
ADMIN_NAMES = {
    f"DJANGO_ADMIN_{n}{s}" for n in ("USERNAME", "PASSWORD", "EMAIL") for s in ("", "_FILE")
}
PLAN_SCHEMA = json.loads((ROOT / "tests" / "plan.schema.json").read_text())
# hadolint on a snippet: FROM names the image the page has just built, untagged as the README
# writes it (DL3006: "always tag the version of an image explicitly").
HADOLINT_IGNORED = ("DL3006",)


@dataclass(frozen=True)
class Snippet:
    page: str
    line: int
    lang: str
    text: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def snippets() -> list[Snippet]:
    found = []
    for path in PAGES:
        text = path.read_text()
        page = str(path.relative_to(ROOT))
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(Snippet(page, line, match.group(1), match.group(2)))
        outside = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
        for match in INLINE.finditer(outside):
            if match.group(1).startswith(TOOLS):
                line = outside.count("\n", 0, match.start()) + 1
                found.append(Snippet(page, line, "sh", match.group(1)))
    return found


ALL = snippets()


def of(*langs: str) -> list[Any]:
    return [pytest.param(s, id=str(s)) for s in ALL if s.lang in langs]


def commands(text: str) -> list[list[str]]:
    """The shell commands of a snippet: words, split at operators, comments dropped."""
    found: list[list[str]] = [[]]
    for line in text.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        for word in lexer:
            if word in {"&&", "||", ";", "|", "&"}:
                found.append([])
            else:
                found[-1].append(word)
        found.append([])
    return [words for words in found if words]


def build_args(dockerfile: Path) -> set[str]:
    return set(re.findall(r"^ARG\s+(\w+)", dockerfile.read_text(), re.MULTILINE))


class TestShell:
    @pytest.mark.parametrize("snippet", of("sh"))
    def test_parses(self, snippet: Snippet) -> None:
        proc = subprocess.run(
            ["bash", "-n"], input=snippet.text, capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, f"{snippet}: {proc.stderr}"

    @pytest.mark.parametrize("snippet", of("sh", "dockerfile"))
    def test_names_files_that_exist(self, snippet: Snippet) -> None:
        missing = [p for p in REPO_PATH.findall(snippet.text) if not (ROOT / p).exists()]
        assert not missing, f"{snippet}: {missing}"

    @pytest.mark.parametrize("snippet", of("sh"))
    def test_build_arguments_are_declared(self, snippet: Snippet) -> None:
        """``docker build --build-arg X`` of a Dockerfile without ``ARG X`` only warns."""
        for words in commands(snippet.text):
            if words[:2] != ["docker", "build"]:
                continue
            dockerfile = ROOT / (words[words.index("-f") + 1] if "-f" in words else "Dockerfile")
            passed = {words[i + 1].split("=")[0] for i, w in enumerate(words) if w == "--build-arg"}
            assert passed <= build_args(dockerfile), f"{snippet}: {passed} in {dockerfile}"


class TestDockerfiles:
    @pytest.mark.parametrize("snippet", of("dockerfile"))
    def test_hadolint_passes(self, snippet: Snippet, tmp_path: Path) -> None:
        path = tmp_path / "Dockerfile"
        path.write_text(snippet.text)
        hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
        ignored = [a for rule in HADOLINT_IGNORED for a in ("--ignore", rule)]
        proc = subprocess.run(
            [hadolint, "--failure-threshold", "style", *ignored, str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, f"{snippet}: {proc.stdout}{proc.stderr}"


class TestNames:
    def test_every_entrypoint_variable_named_exists(self) -> None:
        """A variable a page names but the entrypoint does not read is a 78 when copied."""
        unknown = {
            f"{path.name}: {name}"
            for path in PAGES
            for name in re.findall(r"\bENTRYPOINT_[A-Z0-9_]*[A-Z0-9]\b(?!_?\*)", path.read_text())
            if name not in config.KNOWN_VARIABLES
        }
        assert not unknown

    @pytest.mark.parametrize("snippet", of("sh", "dockerfile", "yaml"))
    def test_admin_variables_are_a_whole_seed(self, snippet: Snippet) -> None:
        """Known names; and a username comes with a password (without one: exit 78)."""
        named = set(re.findall(r"\bDJANGO_ADMIN_[A-Z_]*[A-Z]\b", snippet.text))
        assert named <= ADMIN_NAMES, f"{snippet}: {named - ADMIN_NAMES}"
        if "DJANGO_ADMIN_USERNAME" in named:
            assert named & {"DJANGO_ADMIN_PASSWORD", "DJANGO_ADMIN_PASSWORD_FILE"}, snippet

    def test_image_paths_are_the_published_one(self) -> None:
        """ghcr.io/<owner>/<name> from the repository pyproject names, never a placeholder."""
        source = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Source"]
        owner, name = source.removeprefix("https://github.com/").split("/")[:2]
        seen: set[str] = set()
        for path in PAGES:
            text = path.read_text()
            paths = set(re.findall(r"ghcr\.io/[^\s:`'\"]+", text))
            assert paths <= {f"ghcr.io/{owner}/{name}"}, f"{path.name}: {paths}"
            seen |= paths
            assert "<owner>" not in text, path.name
            assert "ghcr.io/OWNER" not in text, path.name
        assert seen, "no page names the image: the pattern finds nothing"


POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}}
JOB_TEMPLATE = {
    "spec": {"restartPolicy": "Never", "containers": [{"name": "migrate", "image": "x"}]}
}


def kubernetes_objects(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """What a page's YAML document is, as Kubernetes objects to validate: itself; a fragment
    inside the object it belongs in (a pod spec in a Pod, a Job's spec in a Job); a values
    fragment rendered by the chart; or nothing, for a file that is not Kubernetes' (the
    registries.d file of containers/image)."""
    if "kind" in doc:
        return [doc]
    if "containers" in doc:
        return [POD | {"spec": doc}]
    if "podFailurePolicy" in doc:
        job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"}}
        return [job | {"spec": doc | {"template": JOB_TEMPLATE}}]
    if "djangoEntrypoint" in doc:
        with tempfile.TemporaryDirectory() as tmp:
            return render(user_chart(Path(tmp) / "chart"), doc)
    return []


def whole_template(snippet: Snippet) -> bool:
    return "{{" in snippet.text and re.search(r"^kind: ", snippet.text, re.MULTILINE) is not None


def fragment_template(snippet: Snippet) -> bool:
    return "{{" in snippet.text and not whole_template(snippet)


class TestYaml:
    @pytest.mark.parametrize("snippet", [p for p in of("yaml") if "{{" not in p.values[0].text])
    def test_objects_validate(self, snippet: Snippet, tmp_path: Path) -> None:
        docs = [o for d in yaml.safe_load_all(snippet.text) if d for o in kubernetes_objects(d)]
        if docs:
            proc = validate(write_docs(docs, tmp_path))
            assert proc.returncode == 0, f"{snippet}: {proc.stdout}{proc.stderr}"

    @pytest.mark.parametrize("snippet", [p for p in of("yaml") if whole_template(p.values[0])])
    @pytest.mark.parametrize("mode", ["initContainer", "job"])
    def test_helm_templates_render_and_validate(
        self, snippet: Snippet, mode: str, tmp_path: Path
    ) -> None:
        """The page's template in a user's chart, in the place it says, with the snippets."""
        chart = user_chart(tmp_path / "chart")
        (chart / "templates" / "deployment.yaml").write_text(snippet.text)
        docs = render(chart, {"djangoEntrypoint": {"migrations": {"mode": mode}}})
        proc = validate(write_docs(docs, tmp_path))
        assert proc.returncode == 0, f"{snippet}: {proc.stdout}{proc.stderr}"
        [deployment] = [d for d in docs if d["kind"] == "Deployment"]
        [web] = deployment["spec"]["template"]["spec"]["containers"]
        assert web["ports"], snippet
        assert web["startupProbe"], snippet
        host = web["readinessProbe"]["httpGet"]["httpHeaders"]
        assert {"name": "Host", "value": "localhost"} in host, snippet

    @pytest.mark.parametrize("snippet", [p for p in of("yaml") if fragment_template(p.values[0])])
    def test_template_fragments_come_from_the_tested_chart(self, snippet: Snippet) -> None:
        """A piece of a template is written as tests/chart has it, which test_chart renders."""
        chart_lines = {
            line
            for path in (CHART / "templates").glob("*.yaml")
            for line in path.read_text().splitlines()
        }
        missing = [
            line for line in snippet.text.splitlines() if line.strip() and line not in chart_lines
        ]
        assert not missing, f"{snippet}: {missing}"


class TestJson:
    @pytest.mark.parametrize("snippet", of("json"))
    def test_parses_and_a_plan_validates(self, snippet: Snippet) -> None:
        doc = json.loads(snippet.text)
        if {"phase", "databases"} <= set(doc):
            Draft202012Validator(PLAN_SCHEMA).validate(doc)
        elif "effects" in doc:  # one operation of a plan
            operation = {"$ref": "#/$defs/operation", "$defs": PLAN_SCHEMA["$defs"]}
            Draft202012Validator(operation).validate(doc)
