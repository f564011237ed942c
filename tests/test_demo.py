"""The README's main job, end to end: scripts/demo serves the demo and the admin login works."""

from __future__ import annotations

import http.cookiejar
import re
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.cli import DEMO, ROOT, base_env, parse_events, run_cli
from tests.services import free_port, wait_port


def test_demo_serves_the_admin(tmp_path: Path) -> None:
    port = free_port()
    env = base_env(DEMO_PORT=str(port), DEMO_DATA_DIR=str(tmp_path))
    del env["DJANGO_SETTINGS_MODULE"], env["PYTHONPATH"]
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "demo")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_port(port, timeout=120, proc=proc)
        password = (tmp_path / "admin-password").read_text().strip()
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        base = f"http://127.0.0.1:{port}"
        with opener.open(f"{base}/", timeout=10) as response:
            assert response.status == 200
        with opener.open(f"{base}/admin/login/", timeout=10) as response:
            page = response.read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token
        form = urllib.parse.urlencode(
            {
                "csrfmiddlewaretoken": token.group(1),
                "username": "admin",
                "password": password,
                "next": "/admin/",
            }
        ).encode()
        request = urllib.request.Request(
            f"{base}/admin/login/", data=form, headers={"Referer": f"{base}/admin/login/"}
        )
        with opener.open(request, timeout=10) as response:
            assert response.url.endswith("/admin/")
            assert "Site administration" in response.read().decode()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    # gunicorn took over the script's PID and shut down cleanly on SIGTERM.
    assert proc.returncode == 0, stderr[-3000:]
    events = parse_events("\n".join(x for x in stderr.splitlines() if x.startswith("{")))
    names = [e["event"] for e in events]
    assert names.index("migration_applied") < names.index("exec")
    assert "admin_created" in names
    assert password not in stderr


# -- the examples as documented give no known login -----------------------------------------


def demo_secret_key(data_dir: Path, **extra: str) -> str:
    env = base_env(DJANGO_SETTINGS_MODULE="demo.settings", DEMO_DATA_DIR=str(data_dir), **extra)
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return proc.stdout.strip()


def test_demo_secret_key_is_random_per_data_directory(tmp_path: Path) -> None:
    """No key in the source for anyone to sign sessions with: one per data directory, kept."""
    first, second = tmp_path / "a", tmp_path / "b"
    key = demo_secret_key(first)
    assert len(key) >= 50
    assert demo_secret_key(first) == key
    assert demo_secret_key(second) != key
    assert oct((first / "secret-key").stat().st_mode & 0o777) == "0o600"
    assert demo_secret_key(second, DJANGO_SECRET_KEY="from-the-env") == "from-the-env"
    assert key not in (DEMO / "demo" / "settings.py").read_text()


def example_passwords() -> dict[str, str]:
    """The admin passwords written in the docs' Secret and in the plain manifests."""
    steps = (ROOT / "docs" / "steps.md").read_text()
    [inline] = re.findall(r'stringData: \{password: "([^"]*)"\}', steps)
    docs = yaml.safe_load_all((ROOT / "chart-snippets/kubernetes/secret.yaml").read_text())
    [admin] = [d for d in docs if d["metadata"]["name"] == "demo-admin"]
    return {"steps.md": inline, "secret.yaml": admin["stringData"]["password"]}


@pytest.mark.parametrize("where", ["steps.md", "secret.yaml"])
def test_example_placeholder_passwords_are_refused(tmp_path: Path, where: str) -> None:
    """Applied as documented, the placeholder is no login: the demo's validators refuse it
    when the admin is created (they run when a password is set, after the migrations)."""
    env = base_env(
        DJANGO_SETTINGS_MODULE="demo.settings",
        DEMO_DATA_DIR=str(tmp_path),
        ENTRYPOINT_STEPS="migrate,admin",
        DJANGO_ADMIN_USERNAME="admin",
        DJANGO_ADMIN_PASSWORD=example_passwords()[where],
    )
    result = run_cli(env=env)
    assert result.returncode == 78
    assert "rejected by AUTH_PASSWORD_VALIDATORS" in result.last()["error"]
    assert result.last()["step"] == "admin"
    assert not result.named("admin_created")


def test_docs_create_secrets_without_client_side_apply() -> None:
    """kubectl create secret generic, or apply --server-side: never a plain `kubectl apply` of a
    Secret manifest (its stringData would land in last-applied-configuration)."""
    prose = [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    texts = {
        **{p.name: p.read_text() for p in prose},
        **{p.name: p.read_text() for p in (ROOT / "chart-snippets/kubernetes").glob("*.yaml")},
    }
    assert "kubectl create secret generic" in texts["steps.md"]
    assert "kubectl create secret generic" in texts["secret.yaml"]
    for name, text in texts.items():
        for command in re.findall(r"kubectl apply[^`#\n]*", text):
            if "secret" in command.lower():
                assert "--server-side" in command, (name, command)
    for path in prose:
        assert not re.search(r"DJANGO_ADMIN_PASSWORD=[^\s_$]", texts[path.name]), path
