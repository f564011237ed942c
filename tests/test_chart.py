"""chart-snippets/: rendered by the real Helm engine, validated against Kubernetes' schemas.

A small user chart (tests/chart) includes the snippets the way the README tells; it is rendered
with helm-python-sdk (Helm's Go SDK, offline) under several values. Every manifest, rendered or
plain (chart-snippets/kubernetes/), is checked with ``kubernetes-validate --strict`` for 1.30 and
the newest schema it ships, and the environment it gives the entrypoint is parsed by the
entrypoint's own config reader.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate.utils
import pytest
import yaml

from entrypoint import config
from tests.cli import ROOT

SNIPPETS = ROOT / "chart-snippets"
PLAIN = SNIPPETS / "kubernetes"
CHART = ROOT / "tests" / "chart"
KUBE_VERSIONS = ("1.30.0", kubernetes_validate.utils.latest_version())
ENTRYPOINT_COMMAND = ["tini", "--", "django-entrypoint"]
ADMIN_PASSWORD_FILE = "/run/secrets/django-admin/password"
DB_SECRET_VALUE = "postgres://demo:db-pw-Zq81@db.internal:5432/demo"
ADMIN_SECRET_VALUE = "admin-pw-Kx42"

Doc = dict[str, Any]

CASES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "one-target": {"djangoEntrypoint": {"migrations": {"targets": ["main 0001"]}}},
    "several-targets": {
        "djangoEntrypoint": {
            "migrations": {"targets": ["main 0001", "notes 0002_note_pinned", "auth zero"]}
        }
    },
    "replicas-3": {"replicaCount": 3},
    "no-admin": {"djangoEntrypoint": {"admin": {"enabled": False}}},
    "secrets-created": {
        "djangoEntrypoint": {
            "secret": {
                "create": True,
                "databaseUrl": DB_SECRET_VALUE,
                "adminPassword": ADMIN_SECRET_VALUE,
            }
        }
    },
    "job": {"djangoEntrypoint": {"migrations": {"mode": "job"}}},
    "job-targets": {
        "replicaCount": 3,
        "djangoEntrypoint": {
            "migrations": {"mode": "job", "targets": ["main 0001", "notes 0002_note_pinned"]}
        },
    },
    "job-secrets-created": {
        "djangoEntrypoint": {
            "migrations": {"mode": "job"},
            "admin": {"email": "admin@example.com"},
            "secret": {
                "create": True,
                "databaseUrl": DB_SECRET_VALUE,
                "adminPassword": ADMIN_SECRET_VALUE,
            },
        }
    },
}


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


@pytest.fixture(scope="module")
def chart_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The user's chart with the snippets copied in and their values fragment merged, as the
    README tells a user to do."""
    path = tmp_path_factory.mktemp("chart") / "demo"
    shutil.copytree(CHART, path)
    shutil.copy(SNIPPETS / "_django-entrypoint.tpl", path / "templates")
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    values.update(yaml.safe_load((SNIPPETS / "values.yaml").read_text()))
    (path / "values.yaml").write_text(yaml.safe_dump(values, sort_keys=False))
    return path


def render(chart_dir: Path, values: dict[str, Any], name: str = "shop") -> list[Doc]:
    with helm.Chart.load(chart_dir) as chart:
        files = chart.render(values, name=name, namespace="web")
    return [doc for text in files.values() for doc in yaml.safe_load_all(text) if doc]


@pytest.fixture(params=list(CASES))
def case(request: pytest.FixtureRequest, chart_dir: Path) -> tuple[str, list[Doc]]:
    return request.param, render(chart_dir, CASES[request.param])


def kinds(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def values_of(name: str) -> dict[str, Any]:
    """The effective values of a case: the fragment's defaults with the case's overrides."""
    defaults = yaml.safe_load((SNIPPETS / "values.yaml").read_text())
    values: dict[str, Any] = merged(defaults, CASES[name])["djangoEntrypoint"]
    return values


def env_of(container: Doc) -> dict[str, Doc]:
    entries = container.get("env", [])
    names = [e["name"] for e in entries]
    assert len(names) == len(set(names)), f"duplicate env in {container['name']}: {names}"
    return {e["name"]: e for e in entries}


def plain_env(container: Doc) -> dict[str, str]:
    return {name: e["value"] for name, e in env_of(container).items() if "value" in e}


def parse_with_entrypoint(container: Doc, tmp_path: Path) -> config.Settings:
    """What the entrypoint would make of this container's env: secrets are read the way the
    kubelet provides them (an env value from the Secret, a mounted file)."""
    env = plain_env(container)
    for name, entry in env_of(container).items():
        if "valueFrom" in entry:
            env[name] = "postgres://u:p@db:5432/app"
    if ADMIN_PASSWORD_FILE in env.values():
        secret = tmp_path / "password"
        secret.write_text("from-the-secret\n")
        env["DJANGO_ADMIN_PASSWORD_FILE"] = str(secret)
    return config.load(env, settings_module="demo.settings")


def pod_specs(docs: list[Doc]) -> list[Doc]:
    return [d["spec"]["template"]["spec"] for d in docs if d["kind"] in ("Deployment", "Job")]


def validate(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("kubernetes-validate") or str(
        Path(sys.executable).parent / "kubernetes-validate"
    )
    args = [a for v in KUBE_VERSIONS for a in ("-k", v)]
    return subprocess.run(
        [exe, "--strict", *args, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def write_docs(docs: list[Doc], folder: Path) -> list[Path]:
    paths = []
    for index, doc in enumerate(docs):
        path = folder / f"{index}-{doc['kind'].lower()}.yaml"
        path.write_text(yaml.safe_dump(doc))
        paths.append(path)
    return paths


# -- rendering --------------------------------------------------------------------------------


class TestRenderedManifests:
    def test_pass_strict_schema_validation(
        self, case: tuple[str, list[Doc]], tmp_path: Path
    ) -> None:
        """Every rendered manifest passes kubernetes-validate --strict for 1.30 and the newest."""
        _, docs = case
        proc = validate(write_docs(docs, tmp_path))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.count("passed") == len(docs) * len(KUBE_VERSIONS), proc.stdout

    def test_strict_validation_rejects_an_unknown_field(
        self, chart_dir: Path, tmp_path: Path
    ) -> None:
        """The validator is strict: a misspelt field in a container fails (control test)."""
        docs = render(chart_dir, {})
        [deployment] = kinds(docs, "Deployment")
        deployment["spec"]["template"]["spec"]["initContainers"][0]["envv"] = []
        proc = validate(write_docs([deployment], tmp_path))
        assert proc.returncode != 0
        assert "envv" in proc.stdout + proc.stderr

    def test_helm_lint_is_clean(self, chart_dir: Path) -> None:
        """helm lint --strict finds no warning or error in the chart, in either mode."""
        for values in ({}, CASES["job-secrets-created"]):
            report = helm.lint(chart_dir, values, strict=True, kube_version="v1.30.0")
            assert report["errors"] == []
            assert [m for m in report["messages"] if m["severity"] >= 2] == []

    def test_invalid_mode_fails_with_a_clear_message(self, chart_dir: Path) -> None:
        with pytest.raises(helm.HelmRenderError, match="expected initContainer, job or revisionJob"):
            render(chart_dir, {"djangoEntrypoint": {"migrations": {"mode": "sidecar"}}})

    def test_replicas(self, chart_dir: Path) -> None:
        [deployment] = kinds(render(chart_dir, CASES["replicas-3"]), "Deployment")
        assert deployment["spec"]["replicas"] == 3


class TestEnvContract:
    def test_steps_targets_and_secrets_wiring(
        self, case: tuple[str, list[Doc]], tmp_path: Path
    ) -> None:
        """Who runs which steps in each mode, with which targets; what the entrypoint makes of
        each container's env (its own config reader accepts it: no unknown ENTRYPOINT_*)."""
        name, docs = case
        values = values_of(name)
        job_mode = values["migrations"]["mode"] == "job"
        admin = values["admin"]["enabled"]
        targets = values["migrations"]["targets"]
        expected_targets = tuple(
            (t.split()[0], t.split()[1] if len(t.split()) > 1 else None) for t in targets
        )
        [deployment] = kinds(docs, "Deployment")
        pod = deployment["spec"]["template"]["spec"]
        [init] = pod["initContainers"]
        [web] = pod["containers"]
        jobs = kinds(docs, "Job")
        assert len(jobs) == (1 if job_mode else 0)
        migrator = jobs[0]["spec"]["template"]["spec"]["containers"][0] if job_mode else init

        # The server container skips the steps: the initContainer (or the Job) did them.
        assert parse_with_entrypoint(web, tmp_path).steps == ()
        assert "command" not in web  # the image's ENTRYPOINT and CMD: tini, entrypoint, server

        # The migrating container runs the steps and no server: a command, no args.
        assert migrator["command"] == ENTRYPOINT_COMMAND
        assert "args" not in migrator
        settings = parse_with_entrypoint(migrator, tmp_path)
        assert settings.steps == (("wait", "migrate", "admin") if admin else ("wait", "migrate"))
        assert settings.migrate_targets == expected_targets
        assert settings.log_format == "json"
        if admin:
            assert settings.admin is not None
            assert settings.admin.username == values["admin"]["username"]
            assert settings.admin.password == "from-the-secret"
            assert settings.admin.email == values["admin"]["email"]
            spec = jobs[0]["spec"]["template"]["spec"] if job_mode else pod
            mounted = {m["mountPath"]: m["name"] for m in migrator["volumeMounts"]}
            volume = mounted["/run/secrets/django-admin"]
            [secret_volume] = [v for v in spec["volumes"] if v["name"] == volume]
            assert secret_volume["secret"]["secretName"] == "shop-demo-admin"
            assert secret_volume["secret"]["items"] == [{"key": "password", "path": "password"}]
        else:
            assert settings.admin is None
            assert "DJANGO_ADMIN_PASSWORD_FILE" not in env_of(migrator)

        if job_mode:
            # The app pods' initContainer only waits until the Job's migrations are applied.
            init_settings = parse_with_entrypoint(init, tmp_path)
            assert init.get("command") == ENTRYPOINT_COMMAND
            assert init_settings.steps == ("wait",)
            assert init_settings.wait_for == "migrations"
            assert init_settings.migrate_targets == expected_targets
            assert init_settings.admin is None
            assert "django-admin" not in {v["name"] for v in pod["volumes"]}

        # Every container of the release gets DATABASE_URL from the same Secret.
        containers = [*pod["initContainers"], *pod["containers"]]
        containers += [c for j in jobs for c in j["spec"]["template"]["spec"]["containers"]]
        for container in containers:
            ref = env_of(container)["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
            assert ref == {"name": "shop-demo-database", "key": "DATABASE_URL"}

    def test_targets_render_in_the_seed_form(self, chart_dir: Path) -> None:
        """``migrations.targets`` items keep their 'app migration' form, comma-joined."""
        [deployment] = kinds(render(chart_dir, CASES["several-targets"]), "Deployment")
        [init] = deployment["spec"]["template"]["spec"]["initContainers"]
        assert plain_env(init)["ENTRYPOINT_MIGRATE_TARGETS"] == (
            "main 0001,notes 0002_note_pinned,auth zero"
        )
        # No targets, including what `--set targets=null` and `--set targets={}` leave.
        for targets in ([], None, [""]):
            values = {"djangoEntrypoint": {"migrations": {"targets": targets}}}
            [deployment] = kinds(render(chart_dir, values), "Deployment")
            [init] = deployment["spec"]["template"]["spec"]["initContainers"]
            assert "ENTRYPOINT_MIGRATE_TARGETS" not in env_of(init)

    def test_no_secret_value_is_inlined(self, case: tuple[str, list[Doc]]) -> None:
        """The database URL and passwords reach containers only through Secrets (valueFrom or a
        mounted file); secret values given to the chart appear in Secret objects only."""
        _, docs = case
        for spec in pod_specs(docs):
            for container in [*spec.get("initContainers", []), *spec["containers"]]:
                for name, entry in env_of(container).items():
                    if name == "DATABASE_URL" or (
                        "PASSWORD" in name and not name.endswith("_FILE")
                    ):
                        assert "value" not in entry, (container["name"], name)
                        assert "secretKeyRef" in entry["valueFrom"]
        others = yaml.safe_dump_all([d for d in docs if d["kind"] != "Secret"])
        assert DB_SECRET_VALUE not in others
        assert ADMIN_SECRET_VALUE not in others
        assert "db-pw-Zq81" not in others

    def test_secrets_are_hooks_before_the_job(self, chart_dir: Path) -> None:
        """In job mode the Job is a pre-install/pre-upgrade hook (replaced on each release) and
        the chart's Secrets are hooks of a lower weight, so they exist when the Job starts."""
        docs = render(chart_dir, CASES["job-secrets-created"])
        [job] = kinds(docs, "Job")
        notes = job["metadata"]["annotations"]
        assert notes["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert notes["helm.sh/hook-delete-policy"] == "before-hook-creation"
        secrets = kinds(docs, "Secret")
        assert {s["metadata"]["name"] for s in secrets} == {"shop-demo-database", "shop-demo-admin"}
        for secret in secrets:
            assert secret["metadata"]["annotations"]["helm.sh/hook"] == notes["helm.sh/hook"]
            assert int(secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
                notes["helm.sh/hook-weight"]
            )
        # Job pods are not selected by a Service that selects the app's pods.
        selector = kinds(docs, "Deployment")[0]["spec"]["selector"]["matchLabels"]
        job_labels = job["spec"]["template"]["metadata"]["labels"]
        assert not selector.items() <= job_labels.items()
        # In initContainer mode, the Secrets are plain resources of the release.
        for secret in kinds(render(chart_dir, CASES["secrets-created"]), "Secret"):
            assert "annotations" not in secret["metadata"]


class TestSecurityContext:
    def test_pod_and_container_defaults(self, case: tuple[str, list[Doc]]) -> None:
        """Non-root uid 10001, RuntimeDefault seccomp, read-only root with /tmp an emptyDir,
        no privilege escalation, every capability dropped, resources on every container."""
        _, docs = case
        for spec in pod_specs(docs):
            sc = spec["securityContext"]
            assert sc["runAsNonRoot"] is True
            assert (sc["runAsUser"], sc["runAsGroup"], sc["fsGroup"]) == (10001, 10001, 10001)
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
            assert spec["automountServiceAccountToken"] is False
            volumes = {v["name"]: v for v in spec["volumes"]}
            for container in [*spec.get("initContainers", []), *spec["containers"]]:
                csc = container["securityContext"]
                assert csc["allowPrivilegeEscalation"] is False
                assert csc["readOnlyRootFilesystem"] is True
                assert csc["runAsNonRoot"] is True
                assert csc["capabilities"] == {"drop": ["ALL"]}
                assert container["resources"]["requests"]
                assert container["resources"]["limits"]["memory"]
                mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
                assert "emptyDir" in volumes[mounts["/tmp"]]


# -- plain YAML for kubectl users -------------------------------------------------------------


def plain_docs() -> list[Doc]:
    return [
        doc
        for path in sorted(PLAIN.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


class TestPlainManifests:
    def test_pass_strict_schema_validation(self) -> None:
        paths = sorted(PLAIN.glob("*.yaml"))
        assert {p.name for p in paths} == {"deployment.yaml", "job.yaml", "secret.yaml"}
        proc = validate(paths)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.count("passed") == len(plain_docs()) * len(KUBE_VERSIONS)

    def test_match_what_the_chart_renders(self, chart_dir: Path) -> None:
        """The plain Deployment and Job are what the snippets render for a release named demo
        (3 replicas; initContainer mode for the Deployment, job mode for the Job)."""
        plain = plain_docs()
        [deployment] = kinds(plain, "Deployment")
        [job] = kinds(plain, "Job")
        [rendered_deployment] = kinds(render(chart_dir, {"replicaCount": 3}, "demo"), "Deployment")
        [rendered_job] = kinds(render(chart_dir, CASES["job"], "demo"), "Job")
        assert deployment["spec"] == rendered_deployment["spec"]
        assert job["spec"] == rendered_job["spec"]
        for doc, rendered in ((deployment, rendered_deployment), (job, rendered_job)):
            assert doc["metadata"]["name"] == rendered["metadata"]["name"]
        secrets = {s["metadata"]["name"]: s for s in kinds(plain, "Secret")}
        assert set(secrets) == {"demo-database", "demo-admin"}
        assert set(secrets["demo-database"]["stringData"]) == {"DATABASE_URL"}
        assert set(secrets["demo-admin"]["stringData"]) == {"password"}

    def test_no_secret_value_outside_secrets(self) -> None:
        plain = plain_docs()
        others = yaml.safe_dump_all([d for d in plain if d["kind"] != "Secret"])
        for secret in kinds(plain, "Secret"):
            for value in secret["stringData"].values():
                assert value not in others
