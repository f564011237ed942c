"""The hooks step: executables of ENTRYPOINT_HOOKS_DIR run in version order as subprocesses."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from entrypoint.hooks.step import version_key
from tests.cli import Result, base_env, entrypoint_cmd, parse_events, run_cli
from tests.watch import Running, is_event, wait_until

ADMIN_PASSWORD = "H00k-s3cret-pw"


def hook(directory: Path, name: str, body: str, mode: int = 0o755) -> Path:
    path = directory / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(mode)
    return path


def hooks_env(directory: Path, **extra: str) -> dict[str, str]:
    return base_env(
        ENTRYPOINT_STEPS="hooks",
        ENTRYPOINT_HOOKS_DIR=str(directory),
        ENTRYPOINT_LOG_LEVEL="debug",
        **extra,
    )


def run_hooks(directory: Path, **extra: str) -> Result:
    return run_cli(env=hooks_env(directory, **extra), timeout=60)


def started(result: Result) -> list[str]:
    return [e["hook"] for e in result.named("hook_started")]


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for a parent (PID 1 here) that may never reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class TestOrderAndOutput:
    def test_version_order(self) -> None:
        names = ["10-y", "2-x", "01-a", "1-b", "x", "2-x.sh", "9"]
        assert sorted(names, key=version_key) == ["01-a", "1-b", "2-x", "2-x.sh", "9", "10-y", "x"]

    def test_hooks_run_in_version_order_their_output_as_events(self, tmp_path: Path) -> None:
        hook(tmp_path, "10-last", "echo last")
        hook(tmp_path, "2-second", 'echo "settings=$DJANGO_SETTINGS_MODULE"; echo oops >&2')
        hook(tmp_path, "1-first", "printf 'no newline at the end'")
        result = run_hooks(tmp_path)
        assert result.returncode == 0, result.stderr
        assert started(result) == ["1-first", "2-second", "10-last"]
        lines = [(e["hook"], e["stream"], e["line"]) for e in result.named("hook_output")]
        assert [hook for hook, _, _ in lines] == ["1-first", "2-second", "2-second", "10-last"]
        assert sorted(lines) == [  # stdout and stderr are read apart: no order between them
            ("1-first", "stdout", "no newline at the end"),
            ("10-last", "stdout", "last"),
            ("2-second", "stderr", "oops"),
            ("2-second", "stdout", "settings=testproj.settings"),
        ]
        assert [e["position"] for e in result.named("hook_finished")] == ["1/3", "2/3", "3/3"]
        assert result.stdout == ""  # nothing bypasses the JSON stream

    def test_secrets_printed_by_a_hook_are_scrubbed(self, tmp_path: Path) -> None:
        hook(tmp_path, "1-leak", 'echo "password is $DJANGO_ADMIN_PASSWORD"')
        result = run_hooks(
            tmp_path, DJANGO_ADMIN_USERNAME="admin", DJANGO_ADMIN_PASSWORD=ADMIN_PASSWORD
        )
        assert result.returncode == 0, result.stderr
        assert result.named("hook_output")[0]["line"] == "password is ***"
        assert ADMIN_PASSWORD not in result.stderr

    def test_missing_directory_is_fine(self, tmp_path: Path) -> None:
        result = run_hooks(tmp_path / "nothing-here")
        assert result.returncode == 0, result.stderr
        assert not result.named("hook_started")

    def test_non_executables_are_skipped_with_a_debug_event(self, tmp_path: Path) -> None:
        hook(tmp_path, "1-notes.txt", "exit 1", mode=0o644)
        (tmp_path / "2-subdir").mkdir()
        (tmp_path / "3-dangling").symlink_to(tmp_path / "gone")
        hook(tmp_path, "4-runs", "echo ran")
        result = run_hooks(tmp_path)
        assert result.returncode == 0, result.stderr
        assert started(result) == ["4-runs"]
        skipped = {Path(e["path"]).name: e["reason"] for e in result.named("hook_skipped")}
        assert skipped["1-notes.txt"] == skipped["2-subdir"] == "not an executable file"
        assert skipped["3-dangling"].startswith("cannot be read")
        assert all(e["level"] == "debug" for e in result.named("hook_skipped"))


class TestFailure:
    def test_non_zero_exit_is_70_and_stops_the_rest(self, tmp_path: Path) -> None:
        hook(tmp_path, "1-ok", "true")
        hook(tmp_path, "2-fails", "echo 'about to fail'; exit 3")
        hook(tmp_path, "3-never", "echo never")
        result = run_hooks(tmp_path)
        assert result.returncode == 70
        error = result.last()
        assert error["event"] == "hook_failed"
        assert "hook 2/3 '2-fails' exited 3" in error["error"]
        assert started(result) == ["1-ok", "2-fails"]

    def test_timeout_stops_the_hook_and_its_children(self, tmp_path: Path) -> None:
        pid_file = tmp_path / "child.pid"
        hook(tmp_path, "1-hangs", f"sleep 60 & echo $! > {pid_file}; wait")
        began = time.monotonic()
        result = run_hooks(tmp_path, ENTRYPOINT_HOOK_TIMEOUT="1")
        assert time.monotonic() - began < 30
        assert result.returncode == 70
        assert "ran longer than ENTRYPOINT_HOOK_TIMEOUT (1s)" in result.last()["error"]
        wait_until(lambda: not alive(int(pid_file.read_text())), timeout=10)

    def test_sigterm_while_a_hook_starts_waits_until_its_pid_is_known(self) -> None:
        """Raised inside Popen, between the fork and its return, SIGTERM would leave the hook
        running with nobody to stop it: the start defers it to the end of the block (here a
        block that signals itself and goes on), and the hook is then stopped as usual."""
        code = (
            "import os, signal, time\n"
            "from entrypoint.errors import Interrupted, interrupts_deferred, raise_on_signals\n"
            "raise_on_signals()\n"
            "try:\n"
            "    with interrupts_deferred():\n"
            "        os.kill(os.getpid(), signal.SIGTERM)\n"
            "        time.sleep(0.2)\n"
            "        print('block finished', flush=True)\n"
            "except Interrupted as exc:\n"
            "    print('then interrupted', exc.signum)\n"
            "try:\n"
            "    os.kill(os.getpid(), signal.SIGTERM)\n"
            "    time.sleep(5)\n"
            "except Interrupted:\n"
            "    print('handler back')\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
        )
        assert proc.returncode == 0, proc.stderr
        expected = f"block finished\nthen interrupted {int(signal.SIGTERM)}\nhandler back\n"
        assert proc.stdout == expected

    def test_sigterm_during_a_hook_ends_it_too(self, tmp_path: Path) -> None:
        pid_file = tmp_path / "child.pid"
        hook(tmp_path, "1-hangs", f"sleep 60 & echo $! > {pid_file}; wait")
        running = Running(env=hooks_env(tmp_path))
        running.wait_for(is_event("hook_started"))
        wait_until(lambda: pid_file.exists() and pid_file.read_text().strip() != "")
        running.proc.send_signal(signal.SIGTERM)
        result = running.finish(timeout=30)
        assert result.returncode == 143
        assert result.last()["event"] == "interrupted"
        wait_until(lambda: not alive(int(pid_file.read_text())), timeout=10)


class TestPermissions:
    def test_group_writable_hook_is_refused_before_any_hook_runs(self, tmp_path: Path) -> None:
        marker = tmp_path / "ran"
        hook(tmp_path, "1-fine", f"touch {marker}")
        hook(tmp_path, "2-writable", "true", mode=0o775)
        result = run_hooks(tmp_path)
        assert result.returncode == 78
        assert "2-writable" in result.last()["error"]
        assert "writable by group or others" in result.last()["error"]
        assert not marker.exists()
        assert not result.named("step_started")

    def test_world_writable_hook_is_refused(self, tmp_path: Path) -> None:
        hook(tmp_path, "1-open", "true", mode=0o757)
        result = run_hooks(tmp_path)
        assert result.returncode == 78

    @pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
    def test_hook_owned_by_another_user_is_refused(self, tmp_path: Path) -> None:
        path = hook(tmp_path, "1-theirs", "true")
        nobody = pwd.getpwnam("nobody")
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
        result = run_hooks(tmp_path)
        assert result.returncode == 78
        assert f"owned by uid {nobody.pw_uid}" in result.last()["error"]


class TestDirectoryPermissions:
    """Whoever may write the directory may add or replace hooks: it is judged as they are."""

    @pytest.mark.parametrize(
        ("mode", "shown"), [(0o757, "drwxr-xrwx"), (0o775, "drwxrwxr-x")], ids=["others", "group"]
    )
    def test_directory_writable_by_others_is_refused(
        self, tmp_path: Path, mode: int, shown: str
    ) -> None:
        hooks = tmp_path / "hooks.d"
        hooks.mkdir()
        marker = tmp_path / "ran"
        hook(hooks, "1-fine", f"touch {marker}")
        hooks.chmod(mode)
        result = run_hooks(hooks)
        assert result.returncode == 78
        error = result.last()["error"]
        assert f"ENTRYPOINT_HOOKS_DIR '{hooks}' is writable by group or others" in error
        assert f"mode {shown}" in error
        assert not marker.exists()
        assert not result.named("step_started")

    @pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
    def test_directory_owned_by_another_user_is_refused(self, tmp_path: Path) -> None:
        hooks = tmp_path / "hooks.d"
        hooks.mkdir(mode=0o755)
        hook(hooks, "1-fine", "true")
        nobody = pwd.getpwnam("nobody")
        os.chown(hooks, nobody.pw_uid, nobody.pw_gid)
        result = run_hooks(hooks)
        assert result.returncode == 78
        assert (
            f"ENTRYPOINT_HOOKS_DIR '{hooks}' is owned by uid {nobody.pw_uid}"
            in (result.last()["error"])
        )

    @pytest.mark.skipif(os.geteuid() != 0, reason="a mount namespace needs root")
    def test_read_only_mount_is_accepted_whatever_its_mode(self, tmp_path: Path) -> None:
        """As a ConfigMap volume: drwxrwxrwt, mounted read-only; nobody can write it."""
        hooks = tmp_path / "hooks.d"
        hooks.mkdir()
        hook(hooks, "1-fine", "echo ran", mode=0o777)
        hooks.chmod(0o1777)
        mount = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"'
        proc = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount, str(hooks),
             *entrypoint_cmd()],
            env=hooks_env(hooks), capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert [e["line"] for e in parse_events(proc.stderr) if e["event"] == "hook_output"] == [
            "ran"
        ]
        assert run_hooks(hooks).returncode == 78  # the same directory, writable


class TestHeartbeat:
    def test_slow_hook_reports_while_it_runs(self, tmp_path: Path) -> None:
        hook(tmp_path, "1-slow", "sleep 1.6")
        result = run_hooks(tmp_path, ENTRYPOINT_HEARTBEAT_INTERVAL="0.4")
        assert result.returncode == 0, result.stderr
        beats = result.named("hook_running")
        assert len(beats) >= 2
        assert {(e["hook"], e["step"]) for e in beats} == {("1-slow", "hooks")}
        assert [e["elapsed_s"] for e in beats] == sorted(e["elapsed_s"] for e in beats)
