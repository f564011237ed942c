"""exec of the app server: same PID, unchanged environment, signals delivered straight to it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from entrypoint.config import KNOWN_VARIABLES
from tests.cli import DEMO, ROOT, base_env, entrypoint_cmd, parse_events, run_cli

SIGECHO = str(ROOT / "tests" / "helpers" / "sigecho.py")


def no_steps(**extra: str) -> dict[str, str]:
    return base_env(ENTRYPOINT_STEPS="none", **extra)


def read_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    return proc.stdout.readline()


class TestExec:
    def test_server_keeps_the_pid_env_and_gets_signals(self) -> None:
        env = no_steps(MARKER="kept")
        proc = subprocess.Popen(
            entrypoint_cmd("--", sys.executable, SIGECHO),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        ready = read_line(proc)
        assert ready.strip() == f"ready (pid: {proc.pid}) marker=kept"
        proc.send_signal(signal.SIGUSR1)
        assert read_line(proc).strip() == "signal SIGUSR1"
        proc.send_signal(signal.SIGTERM)
        assert read_line(proc).strip() == "signal SIGTERM"
        _, stderr = proc.communicate(timeout=10)
        assert proc.returncode == 128 + signal.SIGTERM
        events = parse_events(stderr)
        assert [e["event"] for e in events] == ["startup_summary", "exec"]
        assert events[-1]["pid"] == proc.pid

    @pytest.mark.skipif(
        os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root for a PID namespace"
    )
    def test_server_is_pid_1_in_a_container_like_namespace(self) -> None:
        cmd = ["unshare", "--pid", "--fork", "--mount-proc"]
        cmd += entrypoint_cmd("--", sys.executable, SIGECHO)
        proc = subprocess.Popen(
            cmd, env=no_steps(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert re.fullmatch(r"ready \(pid: 1\) marker=", read_line(proc).strip())
        # A signal to unshare is not forwarded: signal its child, which is PID 1 inside.
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        os.kill(int(children[0]), signal.SIGTERM)
        assert read_line(proc).strip() == "signal SIGTERM"
        proc.communicate(timeout=10)
        assert proc.returncode == 128 + signal.SIGTERM

    def test_no_command_runs_the_steps_and_exits_0(self) -> None:
        result = run_cli(env=no_steps())
        assert result.returncode == 0
        assert result.last()["event"] == "startup_summary"
        assert not result.named("exec")

    def test_arguments_after_double_dash_reach_the_command(self) -> None:
        result = run_cli("--", "sh", "-c", "echo $0 $1", "--steps", "x", env=no_steps())
        assert result.returncode == 0
        assert result.stdout.strip() == "--steps x"


class TestCommandErrors:
    def test_command_not_found_is_127_before_any_step(self, pg_url: str) -> None:
        env = base_env(DATABASE_URL=pg_url, ENTRYPOINT_STEPS="wait")
        result = run_cli("--", "no-such-server-binary", env=env)
        assert result.returncode == 127
        assert result.last()["event"] == "command_not_found"
        assert "no-such-server-binary" in result.last()["error"]
        assert not result.named("step_started")

    def test_command_not_executable_is_126(self, tmp_path: Path) -> None:
        script = tmp_path / "server.sh"
        script.write_text("#!/bin/sh\necho hi\n")
        result = run_cli("--", str(script), env=no_steps())
        assert result.returncode == 126
        assert result.last()["event"] == "command_not_executable"

    def test_script_without_interpreter_is_126(self, tmp_path: Path) -> None:
        script = tmp_path / "server"
        script.write_text("#!/nonexistent/interpreter\n")
        script.chmod(0o755)
        result = run_cli("--", str(script), env=no_steps())
        assert result.returncode == 126
        assert result.last()["event"] == "command_not_executable"


class TestUsage:
    def test_help_documents_every_variable_and_exit_code(self) -> None:
        result = run_cli("--help", env=no_steps())
        assert result.returncode == 0
        for name in KNOWN_VARIABLES:
            assert name in result.stdout
        for code in ("0", "2", "69", "70", "75", "78", "126", "127", "143"):
            assert re.search(rf"\b{code}\b", result.stdout)

    def test_bad_option_is_usage_error_2(self) -> None:
        proc = subprocess.run(
            entrypoint_cmd("--no-such-option"),
            env=no_steps(),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert proc.returncode == 2

    def test_steps_option_overrides_env(self) -> None:
        start = time.monotonic()
        result = run_cli("--steps", "none", env=base_env(ENTRYPOINT_STEPS="wait"))
        assert result.returncode == 0
        assert result.last()["steps"] == []
        assert time.monotonic() - start < 60


class TestProjectDiscovery:
    def test_project_in_working_directory_is_importable(self) -> None:
        """Run from the project's folder with no PYTHONPATH, like WORKDIR /app in an image."""
        env = no_steps(DJANGO_SETTINGS_MODULE="demo.settings")
        del env["PYTHONPATH"]
        console_script = Path(sys.executable).parent / "django-entrypoint"
        proc = subprocess.run(
            [str(console_script)],
            env=env,
            cwd=DEMO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert parse_events(proc.stderr)[-1]["event"] == "startup_summary"


class TestSettingsErrors:
    def test_settings_that_fail_to_load_are_a_config_error(self) -> None:
        result = run_cli(env=no_steps(DJANGO_SETTINGS_MODULE="testproj.broken_settings"))
        assert result.returncode == 78
        assert result.last()["event"] == "config_invalid"
        assert "KeyError" in result.last()["error"]
        assert "TESTPROJ_REQUIRED_SECRET_KEY" in result.last()["error"]
