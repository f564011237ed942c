"""exec of the app server: same PID, default signals, the environment minus the steps' secrets."""

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


def signal_set(status: str, field: str) -> set[int]:
    """The signal numbers in a SigIgn/SigBlk line of /proc/PID/status (bit N-1 is signal N)."""
    line = next(x for x in status.splitlines() if x.startswith(field + ":"))
    mask = int(line.split()[1], 16)
    return {n for n in range(1, 65) if mask & (1 << (n - 1))}


def parent_blocks_usr2_and_ignores_hup_and_int() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # nohup
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a shell's background job


def ignored_here() -> set[int]:
    """What this test process ignores and its children inherit (a runner started in the
    background ignores SIGQUIT): all but SIGPIPE and SIGXFSZ, which subprocess restores."""
    status = Path("/proc/self/status").read_text()
    return signal_set(status, "SigIgn") - {signal.SIGPIPE, signal.SIGXFSZ}


class TestServerStartsClean:
    def test_signals_are_back_to_their_defaults(self) -> None:
        """Python ignores SIGPIPE and SIGXFSZ, we handle SIGTERM and SIGINT: the server gets
        the defaults and no blocked signal. What our parent ignored (nohup's SIGHUP, a
        background job's SIGINT, which we would otherwise handle) stays ignored, as for a
        server started directly."""
        proc = subprocess.run(
            entrypoint_cmd("--", "cat", "/proc/self/status"),
            env=no_steps(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            preexec_fn=parent_blocks_usr2_and_ignores_hup_and_int,
        )
        assert proc.returncode == 0, proc.stderr
        assert signal_set(proc.stdout, "SigIgn") == {signal.SIGHUP, signal.SIGINT} | ignored_here()
        assert signal_set(proc.stdout, "SigBlk") == set()
        assert signal_set(proc.stdout, "SigCgt") == set()  # cat catches nothing itself

    def test_broken_pipe_is_a_quiet_sigpipe(self) -> None:
        """`yes | head -1` through the entrypoint ends as it does in a shell."""
        result = run_cli("--", "sh", "-c", "yes | head -1", env=no_steps())
        assert result.returncode == 0
        assert result.stdout == "y\n"
        assert "Broken pipe" not in result.stderr

    def test_credentials_of_the_steps_are_not_in_the_servers_environment(self) -> None:
        """The admin passwords and the DDL URL are for the steps only; DATABASE_URL stays."""
        secrets = {
            "DJANGO_ADMIN_USERNAME": "boss",
            "DJANGO_ADMIN_PASSWORD": "admin-Pass-123",
            "DJANGO_SUPERUSER_PASSWORD": "super-Pass-456",
            "ENTRYPOINT_MIGRATE_DATABASE_URL": "postgres://ddl:ddl-Pass-789@db/app",
            "DATABASE_URL": "postgres://app:app-pass@db/app",
        }
        result = run_cli("--", "cat", "/proc/self/environ", env=no_steps(**secrets))
        assert result.returncode == 0, result.stderr
        environ = dict(item.split("=", 1) for item in result.stdout.split("\0") if item)
        for name in ("DJANGO_ADMIN_PASSWORD", "DJANGO_SUPERUSER_PASSWORD"):
            assert name not in environ
        assert "ENTRYPOINT_MIGRATE_DATABASE_URL" not in environ
        assert not {"admin-Pass-123", "super-Pass-456", "ddl-Pass-789"} & set(environ.values())
        assert environ["DATABASE_URL"] == secrets["DATABASE_URL"]
        assert environ["DJANGO_ADMIN_USERNAME"] == "boss"
        assert result.named("exec")[0]["env_removed"] == [
            "DJANGO_ADMIN_PASSWORD",
            "DJANGO_SUPERUSER_PASSWORD",
            "ENTRYPOINT_MIGRATE_DATABASE_URL",
        ]


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

    @pytest.mark.parametrize(
        ("content", "code", "error"),
        [
            ("echo no shebang\n", 126, "neither a binary nor a script with a #! line"),
            ("#!\n", 126, "names the interpreter ''"),
            (
                "#!/usr/bin/env no-such-interpreter-x\n",
                127,
                "'no-such-interpreter-x' is not on PATH",
            ),
        ],
    )
    def test_script_problems_are_found_before_any_step(
        self, tmp_path: Path, pg_url: str, content: str, code: int, error: str
    ) -> None:
        """What execv would refuse after the steps is refused before them, nothing migrated."""
        script = tmp_path / "server"
        script.write_text(content)
        script.chmod(0o755)
        env = base_env(DATABASE_URL=pg_url, ENTRYPOINT_STEPS="wait,migrate")
        result = run_cli("--", str(script), env=env)
        assert result.returncode == code
        assert error in result.last()["error"]
        assert not result.named("step_started")

    def test_empty_command_is_127(self) -> None:
        result = run_cli("--", "", env=no_steps())
        assert result.returncode == 127
        assert "empty" in result.last()["error"]


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
        assert "unrecognized arguments: --no-such-option" in proc.stderr

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
