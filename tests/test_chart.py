"""chart-snippets/: rendered by the real Helm engine, validated against Kubernetes' schemas.

A small user chart (tests/chart) includes the snippets the way the README tells; it is rendered
with helm-python-sdk (Helm's Go SDK, offline) under several values. Every manifest, rendered or
plain (chart-snippets/kubernetes/), is checked with ``kubernetes-validate --strict`` for 1.30 and
the newest schema it ships, and the environment it gives the entrypoint is parsed by the
entrypoint's own config reader.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate.utils
import pytest
import yaml

from entrypoint import config, errors
from tests.cli import ROOT

SNIPPETS = ROOT / "chart-snippets"
PLAIN = SNIPPETS / "kubernetes"
CHART = ROOT / "tests" / "chart"
KUBE_VERSIONS = ("1.30.0", kubernetes_validate.utils.latest_version())
ENTRYPOINT_COMMAND = ["tini", "--", "django-entrypoint"]
ADMIN_PASSWORD_FILE = "/run/secrets/django-admin/password"
DB_SECRET_VALUE = "postgres://demo:db-pw-Zq81@db.internal:5432/demo"
ADMIN_SECRET_VALUE = "admin-pw-Kx42"
PHASE = "ENTRYPOINT_MIGRATE_PHASE"
# A direct DSN for the migrations only: what migrateExtraEnv is for.
MIGRATE_URL_ENV: dict[str, Any] = {
    "name": "ENTRYPOINT_MIGRATE_DATABASE_URL",
    "valueFrom": {"secretKeyRef": {"name": "shop-migrate", "key": "url"}},
}

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
    "migrate-extra-env": {"djangoEntrypoint": {"migrateExtraEnv": [MIGRATE_URL_ENV]}},
    "job-phases": {
        "djangoEntrypoint": {
            "migrations": {"mode": "job", "phases": True},
            "migrateExtraEnv": [MIGRATE_URL_ENV],
        }
    },
    "job-phases-secrets-created": {
        "djangoEntrypoint": {
            "migrations": {"mode": "job", "phases": True, "targets": ["main 0001"]},
            "admin": {"email": "admin@example.com"},
            "secret": {
                "create": True,
                "databaseUrl": DB_SECRET_VALUE,
                "adminPassword": ADMIN_SECRET_VALUE,
            },
        }
    },
    "job-no-ttl": {
        "djangoEntrypoint": {
            "migrations": {"mode": "job", "job": {"ttlSecondsAfterFinished": None}}
        }
    },
    "revision-job": {
        "replicaCount": 3,
        "djangoEntrypoint": {
            "migrations": {"mode": "revisionJob", "targets": ["main 0001"]},
            "migrateExtraEnv": [MIGRATE_URL_ENV],
        },
    },
    "revision-job-secrets-created": {
        "djangoEntrypoint": {
            "migrations": {"mode": "revisionJob"},
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


def user_chart(path: Path) -> Path:
    """The user's chart at ``path`` with the snippets copied in and their values fragment
    merged, as the README tells a user to do."""
    shutil.copytree(CHART, path)
    shutil.copy(SNIPPETS / "_django-entrypoint.tpl", path / "templates")
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    values.update(yaml.safe_load((SNIPPETS / "values.yaml").read_text()))
    (path / "values.yaml").write_text(yaml.safe_dump(values, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def chart_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return user_chart(tmp_path_factory.mktemp("chart") / "demo")


def render(
    chart_dir: Path, values: dict[str, Any], name: str = "shop", revision: int | None = None
) -> list[Doc]:
    with helm.Chart.load(chart_dir) as chart:
        files = chart.render(values, name=name, namespace="web", revision=revision)
    return [doc for text in files.values() for doc in yaml.safe_load_all(text) if doc]


@pytest.fixture(params=list(CASES))
def case(request: pytest.FixtureRequest, chart_dir: Path) -> tuple[str, list[Doc]]:
    return request.param, render(chart_dir, CASES[request.param])


def kinds(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def hook_of(doc: Doc) -> str:
    return str(doc["metadata"].get("annotations", {}).get("helm.sh/hook", ""))


def split_jobs(docs: list[Doc]) -> tuple[list[Doc], list[Doc]]:
    """The Jobs that run before the pods start (pre hooks, or plain), and the post hook Jobs."""
    jobs = kinds(docs, "Job")
    post = [j for j in jobs if hook_of(j).startswith("post-")]
    return [j for j in jobs if j not in post], post


def container_of(job: Doc) -> Doc:
    container: Doc
    [container] = job["spec"]["template"]["spec"]["containers"]
    return container


def app_pod(docs: list[Doc]) -> tuple[Doc, Doc, Doc]:
    """The Deployment's pod spec, its initContainer and its web container."""
    [deployment] = kinds(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    [init] = pod["initContainers"]
    [web] = pod["containers"]
    return pod, init, web


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
    if PHASE not in config.KNOWN_VARIABLES:
        # The entrypoint reads ENTRYPOINT_MIGRATE_PHASE from issue 11 item 4 on (another
        # branch); until then the tests check it in the manifests only.
        env.pop(PHASE, None)
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
        """helm lint --strict finds no warning or error in the chart, in every mode."""
        for name in ("defaults", "job-secrets-created", "job-phases", "revision-job"):
            values = CASES[name]
            report = helm.lint(chart_dir, values, strict=True, kube_version="v1.30.0")
            assert report["errors"] == []
            assert [m for m in report["messages"] if m["severity"] >= 2] == []

    def test_invalid_mode_fails_with_a_clear_message(self, chart_dir: Path) -> None:
        with pytest.raises(
            helm.HelmRenderError, match="expected initContainer, job or revisionJob"
        ):
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
        mode = values["migrations"]["mode"]
        phases = values["migrations"].get("phases", False)
        admin = values["admin"]["enabled"]
        targets = values["migrations"]["targets"]
        expected_targets = tuple(
            (t.split()[0], t.split()[1] if len(t.split()) > 1 else None) for t in targets
        )
        pod, init, web = app_pod(docs)
        jobs = kinds(docs, "Job")
        before, after = split_jobs(docs)
        assert len(before) == (0 if mode == "initContainer" else 1)
        assert len(after) == (1 if phases else 0)
        migrator = container_of(before[0]) if before else init

        # The server container skips the steps: the initContainer (or the Job) did them.
        assert parse_with_entrypoint(web, tmp_path).steps == ()
        assert "command" not in web  # the image's ENTRYPOINT and CMD: tini, entrypoint, server

        # The migrating container runs the steps and no server: a command, no args.
        assert migrator["command"] == ENTRYPOINT_COMMAND
        assert "args" not in migrator
        settings = parse_with_entrypoint(migrator, tmp_path)
        everything = ("wait", "migrate", "admin", "manage", "hooks")
        assert settings.steps == (everything if admin else ("wait", "migrate"))
        assert settings.migrate.targets == expected_targets
        assert settings.log_format == "json"
        if admin:
            assert settings.admin is not None
            assert settings.admin.username == values["admin"]["username"]
            assert settings.admin.password == "from-the-secret"
            assert settings.admin.email == values["admin"]["email"]
            spec = before[0]["spec"]["template"]["spec"] if before else pod
            mounted = {m["mountPath"]: m["name"] for m in migrator["volumeMounts"]}
            volume = mounted["/run/secrets/django-admin"]
            [secret_volume] = [v for v in spec["volumes"] if v["name"] == volume]
            assert secret_volume["secret"]["secretName"] == "shop-demo-admin"
            assert secret_volume["secret"]["items"] == [{"key": "password", "path": "password"}]
        else:
            assert settings.admin is None
            assert "DJANGO_ADMIN_PASSWORD_FILE" not in env_of(migrator)

        if mode != "initContainer":
            # The app pods' initContainer only waits until the Job's migrations are applied.
            init_settings = parse_with_entrypoint(init, tmp_path)
            assert init.get("command") == ENTRYPOINT_COMMAND
            assert init_settings.steps == ("wait",)
            assert init_settings.wait.until == "migrations"
            assert init_settings.migrate.targets == expected_targets
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
        # Without a hook Job (initContainer, revisionJob), the Secrets are plain resources.
        for name in ("secrets-created", "revision-job-secrets-created"):
            secrets = kinds(render(chart_dir, CASES[name]), "Secret")
            assert len(secrets) == 2
            for secret in secrets:
                assert "annotations" not in secret["metadata"]


class TestMigrationModes:
    def test_phases_split_the_migration_around_the_rollout(
        self, chart_dir: Path, tmp_path: Path
    ) -> None:
        """phases: the pre hook Job applies the pre phase, the pods wait for the pre phase only
        (a post hook runs after the pods are ready under --wait: waiting for it would deadlock),
        the post hook Job applies the rest; each is replaced at the next release."""
        docs = render(chart_dir, CASES["job-phases-secrets-created"])
        [pre], [post] = split_jobs(docs)
        assert hook_of(pre) == "pre-install,pre-upgrade"
        assert hook_of(post) == "post-install,post-upgrade"
        assert plain_env(container_of(pre))[PHASE] == "pre"
        assert plain_env(container_of(post))[PHASE] == "post"
        assert pre["metadata"]["name"] == "shop-demo-migrate"
        assert post["metadata"]["name"] == "shop-demo-migrate-post"
        for job in (pre, post):
            notes = job["metadata"]["annotations"]
            assert notes["helm.sh/hook-delete-policy"] == "before-hook-creation"
            assert notes["helm.sh/hook-weight"] == "0"
        _, init, web = app_pod(docs)
        assert plain_env(init)[PHASE] == "pre"
        assert plain_env(init)["ENTRYPOINT_WAIT_FOR"] == "migrations"
        assert PHASE not in env_of(web)
        assert parse_with_entrypoint(init, tmp_path).steps == ("wait",)
        # The post phase migrates towards the same targets; the admin is the pre Job's.
        post_settings = parse_with_entrypoint(container_of(post), tmp_path)
        assert post_settings.steps == ("wait", "migrate")
        assert post_settings.migrate.targets == (("main", "0001"),)
        assert post_settings.admin is None
        assert [v["name"] for v in post["spec"]["template"]["spec"]["volumes"]] == ["tmp"]

        # Without phases: one pre hook Job that applies everything, no phase anywhere.
        docs = render(chart_dir, CASES["job"])
        [job], [] = split_jobs(docs)
        containers = [container_of(job), *app_pod(docs)[1:]]
        assert [c["name"] for c in containers if PHASE in env_of(c)] == []

    def test_phases_need_the_job_mode(self, chart_dir: Path) -> None:
        """There is no post hook to run the post phase in the other modes: refused, not ignored."""
        for mode in ("initContainer", "revisionJob"):
            values = {"djangoEntrypoint": {"migrations": {"mode": mode, "phases": True}}}
            with pytest.raises(
                helm.HelmRenderError, match=f"needs migrations.mode=job, not {mode}"
            ):
                render(chart_dir, values)

    def test_revision_job_is_a_plain_job_per_revision(self, chart_dir: Path) -> None:
        """revisionJob: no hook annotation (no pre-install hook to wait for a database of the
        same release), a new name per revision (a Job's pod template cannot change), the same
        migrating container as the hook Job, and pods that wait for migrations."""
        values = CASES["revision-job"]
        names = []
        for revision in (3, 4):
            docs = render(chart_dir, values, revision=revision)
            [job], [] = split_jobs(docs)
            assert "annotations" not in job["metadata"]
            names.append(job["metadata"]["name"])
            assert re.fullmatch(rf"shop-demo-migrate-{revision}-[0-9a-f]{{8}}", names[-1])
        assert names[0].split("-")[-1] == names[1].split("-")[-1]

        # The same Job as the hook Job's but for the TTL (see test_hook_jobs_expire).
        hook_values = merged(values, {"djangoEntrypoint": {"migrations": {"mode": "job"}}})
        [hook_job] = kinds(render(chart_dir, hook_values), "Job")
        del hook_job["spec"]["ttlSecondsAfterFinished"]
        assert job["spec"] == hook_job["spec"]
        _, init, _ = app_pod(docs)
        assert plain_env(init)["ENTRYPOINT_STEPS"] == "wait"
        assert plain_env(init)["ENTRYPOINT_WAIT_FOR"] == "migrations"
        assert PHASE not in env_of(init)

    def test_revision_job_name_follows_its_content_where_the_revision_stays_1(
        self, chart_dir: Path
    ) -> None:
        """Argo CD renders every revision as 1: a new image still gets a new Job, the same
        values the same Job (a re-sync finds nothing to change); names stay within 63."""

        def name_of(values: dict[str, Any], release: str = "shop", revision: int = 1) -> str:
            [job] = kinds(render(chart_dir, values, name=release, revision=revision), "Job")
            return str(job["metadata"]["name"])

        values = CASES["revision-job"]
        assert name_of(values) == name_of(values)
        assert name_of(values) != name_of(merged(values, {"image": {"tag": "0.2.0"}}))
        long_name = name_of(values, release="r" * 60, revision=123456)
        assert len(long_name) <= 63
        assert re.fullmatch(r"r+-migrate-123456-[0-9a-f]{8}", long_name)

    @pytest.mark.parametrize("mode", ["initContainer", "job", "revisionJob"])
    def test_migrate_extra_env_reaches_the_migrating_container_only(
        self, chart_dir: Path, tmp_path: Path, mode: str
    ) -> None:
        """migrateExtraEnv goes to the container that migrates (the initContainer, or every
        Job), never to the web container nor a waiting initContainer; extraEnv goes to all."""
        shared = {"name": "ENTRYPOINT_DATABASES", "value": "default"}
        migrations = {"mode": mode, "phases": mode == "job"}
        values = {
            "djangoEntrypoint": {
                "migrations": migrations,
                "extraEnv": [shared],
                "migrateExtraEnv": [MIGRATE_URL_ENV],
            }
        }
        docs = render(chart_dir, values)
        _, init, web = app_pod(docs)
        before, after = split_jobs(docs)
        migrators = [container_of(j) for j in before + after] or [init]
        others = [web] if mode == "initContainer" else [web, init]
        assert len(migrators) == {"initContainer": 1, "job": 2, "revisionJob": 1}[mode]
        for container in migrators:
            assert env_of(container)[MIGRATE_URL_ENV["name"]] == MIGRATE_URL_ENV
            direct = parse_with_entrypoint(container, tmp_path).migrate.database_url
            assert direct == "postgres://u:p@db:5432/app"
        for container in others:
            assert MIGRATE_URL_ENV["name"] not in env_of(container)
            assert parse_with_entrypoint(container, tmp_path).migrate.database_url == ""
        for container in migrators + others:
            assert env_of(container)["ENTRYPOINT_DATABASES"] == shared

    @pytest.mark.parametrize(("rows", "expected"), [(None, None), (0, 0), (5_000_000, 5_000_000)])
    def test_max_blocking_rows_reaches_the_migrating_container(
        self, chart_dir: Path, tmp_path: Path, rows: int | None, expected: int | None
    ) -> None:
        """migrations.maxBlockingRows is the risk gate of the container that migrates (0 too);
        null leaves it unset; the web container never has it."""
        values = {"djangoEntrypoint": {"migrations": {"maxBlockingRows": rows}}}
        docs = render(chart_dir, values)
        _, init, web = app_pod(docs)
        assert parse_with_entrypoint(init, tmp_path).migrate.max_blocking_rows == expected
        assert ("ENTRYPOINT_MIGRATE_MAX_BLOCKING_ROWS" in env_of(init)) == (rows is not None)
        assert "ENTRYPOINT_MIGRATE_MAX_BLOCKING_ROWS" not in env_of(web)

    @pytest.mark.parametrize("mode", ["initContainer", "job"])
    def test_schema_check_reaches_the_containers_that_check(
        self, chart_dir: Path, tmp_path: Path, mode: str
    ) -> None:
        """schemaCheck is ENTRYPOINT_SCHEMA_CHECK of the container that migrates and of the
        initContainer that waits beside a Job; the web container, which runs no step, has none."""
        values = {"djangoEntrypoint": {"schemaCheck": "refuse", "migrations": {"mode": mode}}}
        docs = render(chart_dir, values)
        _, init, web = app_pod(docs)
        checking = [init, *(container_of(job) for job in kinds(docs, "Job"))]
        assert len(checking) == (1 if mode == "initContainer" else 2)
        assert {parse_with_entrypoint(c, tmp_path).schema_check for c in checking} == {"refuse"}
        assert "ENTRYPOINT_SCHEMA_CHECK" not in env_of(web)
        _, default_init, _ = app_pod(render(chart_dir, {}))
        assert env_of(default_init)["ENTRYPOINT_SCHEMA_CHECK"]["value"] == "warn"

    def test_hook_jobs_expire(self, chart_dir: Path) -> None:
        """Hook Jobs carry ttlSecondsAfterFinished (a day by default; 0 is kept, null removes
        it): helm uninstall does not delete hooks. A revisionJob has none: Helm deletes it with
        its revision, and Argo CD would re-create a Job that a TTL deleted."""

        def ttls(values: dict[str, Any]) -> list[Any]:
            return [
                j["spec"].get("ttlSecondsAfterFinished")
                for j in kinds(render(chart_dir, values), "Job")
            ]

        assert ttls(CASES["job"]) == [86400]
        assert ttls(CASES["job-phases"]) == [86400, 86400]
        for ttl in (3600, 0):
            job = {"mode": "job", "phases": True, "job": {"ttlSecondsAfterFinished": ttl}}
            assert ttls({"djangoEntrypoint": {"migrations": job}}) == [ttl, ttl]
        assert ttls(CASES["job-no-ttl"]) == [None]
        assert ttls(CASES["revision-job"]) == [None]

    def test_what_helm_uninstall_leaves_is_what_the_docs_say(self, chart_dir: Path) -> None:
        """Hook resources are Jobs (which expire) and Secrets; the Secrets have no hook-succeeded
        policy (the pods and the post Job read them after the pre hooks); every one is matched
        by the clean-up selector of docs/image.md."""
        docs = render(chart_dir, CASES["job-phases-secrets-created"])
        hooks = [d for d in docs if hook_of(d)]
        assert sorted(d["kind"] for d in hooks) == ["Job", "Job", "Secret", "Secret"]
        for doc in hooks:
            assert doc["metadata"]["labels"]["app.kubernetes.io/instance"] == "shop"
            policy = doc["metadata"]["annotations"]["helm.sh/hook-delete-policy"]
            assert policy == "before-hook-creation"
        for job in kinds(hooks, "Job"):
            assert job["spec"]["ttlSecondsAfterFinished"] > 0
        docs_text = (ROOT / "docs" / "image.md").read_text()
        assert "kubectl delete job,secret -l app.kubernetes.io/instance=RELEASE" in docs_text


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

    def test_come_from_the_snippets(self, chart_dir: Path) -> None:
        """The example chart writes none of the pod's and the web container's security settings
        itself: podDefaults and containerSecurityContext bring them to a user's Deployment."""
        source = (CHART / "templates" / "deployment.yaml").read_text()
        for field in ("automountServiceAccountToken", "runAsNonRoot", "allowPrivilegeEscalation"):
            assert field not in source
        pod, _, web = app_pod(render(chart_dir, {}))
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsUser"] == 10001
        assert web["securityContext"]["readOnlyRootFilesystem"] is True


class TestStartupProbe:
    """Kubernetes probes no initContainer and no Job; a container that migrates itself is
    probed while it waits, queues on the lock and migrates, so its budget covers all three."""

    def test_web_container_beside_an_init_container_covers_the_server_only(
        self, chart_dir: Path
    ) -> None:
        _, _, web = app_pod(render(chart_dir, {}))
        assert web["startupProbe"] == {
            "tcpSocket": {"port": 8000},
            "periodSeconds": 10,
            "failureThreshold": 6,
        }

    def test_container_that_runs_the_steps_fits_wait_lock_and_migrations(
        self, chart_dir: Path, tmp_path: Path
    ) -> None:
        """FROM mode: failureThreshold x periodSeconds >= wait.timeout + lockTimeout +
        migrationSeconds + serverSeconds (rounded up); the manifest passes strict validation
        and the container really runs the steps."""
        values = {
            "fromImage": {"enabled": True},
            "djangoEntrypoint": {
                "wait": {"timeout": 95},
                "migrations": {"lockTimeout": 300},
                "startupProbe": {"periodSeconds": 7, "migrationSeconds": 1200},
            },
        }
        docs = render(chart_dir, values)
        [from_image] = [
            d for d in kinds(docs, "Deployment") if "from-image" in d["metadata"]["name"]
        ]
        [web] = from_image["spec"]["template"]["spec"]["containers"]
        probe = web["startupProbe"]
        budget = 95 + 300 + 1200 + 60
        assert probe["failureThreshold"] == -(-budget // 7) == 237
        assert probe["failureThreshold"] * probe["periodSeconds"] >= budget
        settings = parse_with_entrypoint(web, tmp_path)
        assert settings.steps == ("wait", "migrate", "admin", "manage", "hooks")
        assert "command" not in web  # the image's ENTRYPOINT and CMD: steps, then the server
        proc = validate(write_docs([from_image], tmp_path))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        report = helm.lint(chart_dir, values, strict=True, kube_version="v1.30.0")
        assert report["errors"] == []

    def test_http_check_sends_the_host_header(self, chart_dir: Path) -> None:
        values = {"djangoEntrypoint": {"startupProbe": {"path": "/healthz", "port": "http"}}}
        _, _, web = app_pod(render(chart_dir, values))
        assert web["startupProbe"]["httpGet"] == {
            "path": "/healthz",
            "port": "http",
            "httpHeaders": [{"name": "Host", "value": "localhost"}],
        }
        assert "tcpSocket" not in web["startupProbe"]

    @pytest.mark.parametrize("period", [0, -5])
    def test_bad_period_fails_with_a_clear_message(self, chart_dir: Path, period: int) -> None:
        values = {"djangoEntrypoint": {"startupProbe": {"periodSeconds": period}}}
        with pytest.raises(
            helm.HelmRenderError, match=rf"periodSeconds={period} is invalid: expected"
        ):
            render(chart_dir, values)


# -- native sidecars and the Jobs' failure policy -----------------------------------------------

SIDECAR_MODES = {
    "initContainer": {"mode": "initContainer"},
    "job": {"mode": "job", "phases": True},
    "revisionJob": {"mode": "revisionJob"},
}


def documented_block(marker: str) -> Doc:
    """The YAML block of docs/image.md that holds ``marker``: the examples the docs show are
    the ones the tests render."""
    text = (ROOT / "docs" / "image.md").read_text()
    [block] = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL) if marker in b]
    doc: Doc = yaml.safe_load(block)
    return doc


def with_proxy(mode: str) -> dict[str, Any]:
    """The documented Cloud SQL Auth Proxy example, in one of the migration modes."""
    return merged(
        documented_block("cloud-sql-proxy"),
        {"fromImage": {"enabled": True}, "djangoEntrypoint": {"migrations": SIDECAR_MODES[mode]}},
    )


def without_sidecars(docs: list[Doc], names: set[str]) -> list[Doc]:
    """The documents with the named initContainers taken out (and a Job's initContainers key
    with them, when they were all it held); revisionJob names, which hash the Job's spec, made
    comparable."""
    docs = copy.deepcopy(docs)
    for spec in pod_specs(docs):
        kept = [c for c in spec.get("initContainers", []) if c["name"] not in names]
        if kept:
            spec["initContainers"] = kept
        else:
            spec.pop("initContainers", None)
    text = re.sub(r"-migrate-(\d+)-[0-9a-f]{8}", r"-migrate-\1-HASH", yaml.safe_dump_all(docs))
    return [d for d in yaml.safe_load_all(text) if d]


class TestSidecars:
    """djangoEntrypoint.sidecars: native sidecars (initContainers with restartPolicy: Always)
    that start before the steps in every pod that runs them or waits for them."""

    @pytest.mark.parametrize("mode", list(SIDECAR_MODES))
    def test_the_proxy_starts_before_the_steps_in_every_pod(
        self, chart_dir: Path, mode: str
    ) -> None:
        values = with_proxy(mode)
        [proxy] = values["djangoEntrypoint"]["sidecars"]
        docs = render(chart_dir, values)
        deployments = kinds(docs, "Deployment")
        jobs = kinds(docs, "Job")
        assert len(deployments) == 2  # the app with the snippets' initContainer, and FROM mode
        assert len(jobs) == {"initContainer": 0, "job": 2, "revisionJob": 1}[mode]
        for doc in deployments + jobs:
            spec = doc["spec"]["template"]["spec"]
            first, *rest = spec["initContainers"]
            assert first == {**proxy, "restartPolicy": "Always"}, doc["metadata"]["name"]
            # Then the entrypoint's initContainer (it migrates or waits), or nothing more where
            # the pod's own container runs the steps (a Job's, the FROM-mode app's).
            [container] = spec["containers"]
            runs_steps = plain_env(container)["ENTRYPOINT_STEPS"] != "none"
            expected = [] if runs_steps else ["django-entrypoint"]
            assert [c["name"] for c in rest] == expected, doc["metadata"]["name"]
        # The Jobs' pods run as the proxy's service account; the Deployment's is the user's.
        for job in jobs:
            assert job["spec"]["template"]["spec"]["serviceAccountName"] == "shop-cloudsql"
        for deployment in deployments:
            assert "serviceAccountName" not in deployment["spec"]["template"]["spec"]

    def test_pass_strict_schema_validation_and_lint(self, chart_dir: Path, tmp_path: Path) -> None:
        """The documented proxy in every mode, with Job pod annotations for Istio: kubernetes-
        validate --strict for 1.30 and the newest schema, and helm lint --strict."""
        istio = {
            "migrations": {"job": {"podAnnotations": {"sidecar.istio.io/nativeSidecar": "true"}}}
        }
        docs = []
        for mode in SIDECAR_MODES:
            values = merged(with_proxy(mode), {"djangoEntrypoint": istio})
            rendered = render(chart_dir, values)
            for job in kinds(rendered, "Job"):
                annotations = job["spec"]["template"]["metadata"]["annotations"]
                assert annotations == {"sidecar.istio.io/nativeSidecar": "true"}
            docs += rendered
            report = helm.lint(chart_dir, values, strict=True, kube_version="v1.30.0")
            assert report["errors"] == []
            assert [m for m in report["messages"] if m["severity"] >= 2] == []
        proc = validate(write_docs(docs, tmp_path))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.count("passed") == len(docs) * len(KUBE_VERSIONS), proc.stdout

    def test_without_sidecars_nothing_else_changes(
        self, case: tuple[str, list[Doc]], chart_dir: Path
    ) -> None:
        """Every case rendered with the proxy is the case rendered without it, but for the
        proxy itself (and the revisionJob's name, a hash of its spec): with sidecars empty,
        no Job gains an initContainers key and no pod anything else."""
        name, docs = case
        proxy = documented_block("cloud-sql-proxy")["djangoEntrypoint"]["sidecars"]
        values = merged(CASES[name], {"djangoEntrypoint": {"sidecars": proxy}})
        with_it = render(chart_dir, values)
        assert with_it != docs
        assert without_sidecars(with_it, {"cloud-sql-proxy"}) == without_sidecars(docs, set())

    def test_another_restart_policy_is_refused(self, chart_dir: Path) -> None:
        sidecar = {"name": "proxy", "image": "proxy:1", "restartPolicy": "Never"}
        with pytest.raises(
            helm.HelmRenderError, match=r"sidecars\[0\] has restartPolicy=Never: .* Always"
        ):
            render(chart_dir, {"djangoEntrypoint": {"sidecars": [sidecar]}})


# Exit codes a retry cannot change (errors.py): what the Jobs fail on at once.
NOT_RETRIED = [errors.ConfigError.exit_code]
RETRIED: set[type[errors.EntrypointError]] = {
    errors.DatabaseUnavailable,
    errors.ServiceUnavailable,
    errors.LockTimeout,
    errors.TableLockTimeout,
    errors.StepFailed,
    errors.LockLost,
    errors.ConnectionLost,
}


class TestJobFailurePolicy:
    def test_every_rendered_and_plain_job_fails_fast_on_78_only(
        self, case: tuple[str, list[Doc]]
    ) -> None:
        """FailJob on 78 (a configuration error, a plan refused before anything changed) of
        the steps' container; a disrupted pod is not counted; everything else (69, 70, 75)
        counts against backoffLimit. The policy needs restartPolicy: Never."""
        _, docs = case
        assert errors.PlanRefused.exit_code in NOT_RETRIED
        assert not {cls.exit_code for cls in RETRIED} & set(NOT_RETRIED)
        [plain_job] = kinds(plain_docs(), "Job")
        for job in [*kinds(docs, "Job"), plain_job]:
            spec = job["spec"]
            assert spec["template"]["spec"]["restartPolicy"] == "Never"
            assert spec["podFailurePolicy"] == {
                "rules": [
                    {
                        "action": "Ignore",
                        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
                    },
                    {
                        "action": "FailJob",
                        "onExitCodes": {
                            "containerName": container_of(job)["name"],
                            "operator": "In",
                            "values": NOT_RETRIED,
                        },
                    },
                ]
            }
            # The policy docs/image.md shows is the one the Jobs carry.
            documented = documented_block("podFailurePolicy")["podFailurePolicy"]
            assert spec["podFailurePolicy"] == documented


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
