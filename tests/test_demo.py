"""The README's main job, end to end: scripts/demo serves the demo and the admin login works."""

from __future__ import annotations

import http.cookiejar
import re
import signal
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

from tests.cli import ROOT, base_env, parse_events
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
