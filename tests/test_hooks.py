"""The hooks step: executables of ENTRYPOINT_HOOKS_DIR run in version order as subprocesses."""

from __future__ import annotations

import base64
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from entrypoint.hooks.safety import version_key
from tests.cli import Result, base_env, entrypoint_cmd, parse_events, run_cli
from tests.watch import Running, is_event, wait_until

ADMIN_PASSWORD = "H00k-s3cret-pw"


def hook(directory: Path, name: str, body: str, mode: int = 0o755) -> Path:
    path = directory / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(mode)
    return path


# Runs its arguments as a child and prints that child's peak RSS (KiB) and exit code.
PEAK_RSS = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
print(usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


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


def escape(pid_file: Path) -> str:
    """Shell: a child in a session of its own writes its pid, and the hook waits for that."""
    return (
        f"setsid sh -c 'echo $$ > {pid_file}.tmp && mv {pid_file}.tmp {pid_file}; "
        f"exec sleep 300' & while [ ! -s {pid_file} ]; do sleep 0.05; done"
    )


def kill_if_alive(*pid_files: Path) -> None:
    """A test that failed must not leave its sleep 300 behind."""
    for pid_file in pid_files:
        if pid_file.exists() and alive(pid := int(pid_file.read_text())):
            os.kill(pid, signal.SIGKILL)


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

    def test_progress_bar_lines_end_at_a_carriage_return(self, tmp_path: Path) -> None:
        hook(tmp_path, "1-progress", r"printf '10%%\r20%%\r30%%\r\n'; printf 'done\r\n'")
        result = run_hooks(tmp_path)
        assert result.returncode == 0, result.stderr
        assert [e["line"] for e in result.named("hook_output")] == ["10%", "20%", "30%", "done"]


class TestEnvironment:
    def test_step_only_credentials_are_not_given_to_hooks(self, tmp_path: Path) -> None:
        """Not even encoded: a hook's base64 of the password passes any scrubber, so the hook
        never has it. The _FILE paths and DATABASE_URL stay, as for the server."""
        secret_file = tmp_path / "password"
        secret_file.write_text(ADMIN_PASSWORD)
        directory = tmp_path / "hooks.d"
        directory.mkdir()
        names = ["DJANGO_ADMIN_PASSWORD", "DJANGO_SUPERUSER_PASSWORD",
                 "ENTRYPOINT_MIGRATE_DATABASE_URL", "DJANGO_ADMIN_PASSWORD_FILE", "DATABASE_URL"]  # fmt: skip
        body = "".join(f'printf %s "{n}=${{{n}-unset}}" | base64 -w0; echo\n' for n in names)
        hook(directory, "1-leak", body + 'echo "hook=$ENTRYPOINT_HOOK 0=$0"')
        result = run_hooks(
            directory,
            DATABASE_URL="sqlite:///:memory:",
            DJANGO_ADMIN_USERNAME="admin",
            DJANGO_ADMIN_PASSWORD=ADMIN_PASSWORD,
            DJANGO_SUPERUSER_PASSWORD=ADMIN_PASSWORD,
            DJANGO_ADMIN_PASSWORD_FILE=str(secret_file),
            ENTRYPOINT_MIGRATE_DATABASE_URL=f"postgres://u:{ADMIN_PASSWORD}@h/db",
        )
        assert result.returncode == 0, result.stderr
        *encoded, last = [e["line"] for e in result.named("hook_output")]
        seen = [base64.b64decode(line).decode() for line in encoded]
        assert seen == [
            "DJANGO_ADMIN_PASSWORD=unset",
            "DJANGO_SUPERUSER_PASSWORD=unset",
            "ENTRYPOINT_MIGRATE_DATABASE_URL=unset",
            f"DJANGO_ADMIN_PASSWORD_FILE={secret_file}",
            "DATABASE_URL=sqlite:///:memory:",
        ]
        # Run from the descriptor that was checked: $0 names it, ENTRYPOINT_HOOK the hook.
        assert re.fullmatch(rf"hook={directory}/1-leak 0=/proc/self/fd/\d+", last)

    def test_missing_directory_is_fine(self, tmp_path: Path) -> None:
        result = run_hooks(tmp_path / "nothing-here")
        assert result.returncode == 0, result.stderr
        assert not result.named("hook_started")

    def test_files_that_are_not_hooks_are_skipped(self, tmp_path: Path) -> None:
        """A regular file without an x bit is likely a forgotten chmod +x: an info event saying
        so. Directories (a ConfigMap's ..data) and dangling links: debug events. A binary,
        symlinked, runs from its descriptor too."""
        hook(tmp_path, "1-notes.txt", "exit 1", mode=0o644)
        (tmp_path / "2-subdir").mkdir()
        (tmp_path / "3-dangling").symlink_to(tmp_path / "gone")
        hook(tmp_path, "4-runs", "echo ran")
        (tmp_path / "5-binary").symlink_to(shutil.which("printenv") or "/usr/bin/printenv")
        result = run_hooks(tmp_path, PRINTED="by printenv")
        assert result.returncode == 0, result.stderr
        assert started(result) == ["4-runs", "5-binary"]
        skipped = {Path(e["path"]).name: e for e in result.named("hook_skipped")}
        assert skipped["1-notes.txt"]["reason"] == "not executable (-rw-r--r--): chmod +x it"
        assert skipped["1-notes.txt"]["level"] == "info"
        assert skipped["2-subdir"]["reason"] == "not a regular file"
        assert skipped["3-dangling"]["reason"].startswith("cannot be read")
        assert {skipped[n]["level"] for n in ("2-subdir", "3-dangling")} == {"debug"}
        assert "PRINTED=by printenv" in [e["line"] for e in result.named("hook_output")]


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

    def test_escaped_child_is_ended_at_the_timeout(self, tmp_path: Path) -> None:
        """setsid leaves the hook's process group, which the timeout signals: the entrypoint,
        a child subreaper while hooks run, gets it once the hook is gone, and ends it."""
        pid_file = tmp_path / "escaped.pid"
        hook(tmp_path, "1-escapes", f"{escape(pid_file)}; sleep 60")
        try:
            result = run_hooks(tmp_path, ENTRYPOINT_HOOK_TIMEOUT="2")
            assert result.returncode == 70
            assert "ran longer than ENTRYPOINT_HOOK_TIMEOUT" in result.last()["error"]
            pid = int(pid_file.read_text())
            assert result.named("hook_descendants_ended")[0]["pids"] == [pid]
            wait_until(lambda: not alive(pid), timeout=10)
        finally:
            kill_if_alive(pid_file)

    def test_what_a_hook_leaves_running_ends_when_it_exits(self, tmp_path: Path) -> None:
        """A background child and an escaped one: a process left behind would die of SIGPIPE
        at its first line after the exec; it is ended with the hook instead, and said so."""
        escaped, background = tmp_path / "escaped.pid", tmp_path / "background.pid"
        hook(tmp_path, "1-leaves", f"{escape(escaped)}; sleep 300 & echo $! > {background}")
        hook(tmp_path, "2-next", "echo next")
        try:
            result = run_hooks(tmp_path)
            assert result.returncode == 0, result.stderr
            pids = [int(escaped.read_text()), int(background.read_text())]
            (ended,) = result.named("hook_descendants_ended")
            assert (sorted(ended["pids"]), ended["hook"]) == (sorted(pids), "1-leaves")
            assert ended["level"] == "warning"
            assert "sidecar" in ended["hint"]
            assert [e["hook"] for e in result.named("hook_finished")] == ["1-leaves", "2-next"]
            wait_until(lambda: not any(alive(pid) for pid in pids), timeout=10)
        finally:
            kill_if_alive(escaped, background)

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


class TestOutputBound:
    def test_300_mb_without_a_newline(self, tmp_path: Path) -> None:
        """Read in chunks and cut at 32 KiB: the entrypoint's peak RSS stays bounded (150 MB;
        1.17 GB when it read by line). ru_maxrss of the entrypoint, in KiB, taken by a small
        parent: a child forked from pytest itself starts with pytest's pages counted (its peak
        RSS read 161 MB in a long run where the entrypoint's own was 58 MB)."""
        hook(tmp_path, "1-flood", "head -c 300000000 /dev/zero | tr '\\0' x")
        with (tmp_path / "stderr").open("w+") as err:
            measured = subprocess.run(
                [sys.executable, "-c", PEAK_RSS, *entrypoint_cmd()],
                env=hooks_env(tmp_path),
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                check=True,
                timeout=120,
            )
            err.seek(0)
            text = err.read()
        peak, code = map(int, measured.stdout.split())
        result = Result(code, "", text, parse_events(text))
        assert result.returncode == 0, result.stderr
        (line,) = result.named("hook_output")
        assert (line["line"], line["truncated"]) == ("x" * 8192, True)
        assert peak < 150 * 1024, f"peak RSS {peak} KiB"
        print(f"peak RSS {peak} KiB")


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
        error = result.last()["error"]
        assert f"{str(tmp_path / '1-open')!r} is writable by group or others" in error
        assert "(mode -rwxr-xrwx)" in error
        assert not result.named("hook_started")

    @pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
    def test_hook_owned_by_another_user_is_refused(self, tmp_path: Path) -> None:
        path = hook(tmp_path, "1-theirs", "true")
        nobody = pwd.getpwnam("nobody")
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
        result = run_hooks(tmp_path)
        assert result.returncode == 78
        assert f"owned by uid {nobody.pw_uid}" in result.last()["error"]


def shared_directory(mode: int) -> Path:
    """A directory outside pytest's root-only tree, so that another user can reach it."""
    path = Path(tempfile.mkdtemp(prefix="dj-entrypoint-hooks-"))
    path.chmod(0o755)
    (path / "shared").mkdir()
    (path / "shared").chmod(mode)
    return path / "shared"


@pytest.mark.skipif(os.geteuid() != 0, reason="another user's write needs root to set up")
class TestSymlinkedHooks:
    """A hook is judged by every directory on the way to its target, as it starts: whoever
    may write one of them decides what runs as root."""

    def test_target_in_a_directory_others_may_write_is_refused(self, tmp_path: Path) -> None:
        shared = shared_directory(0o777)
        try:
            hook(shared, "target", "echo ran")
            (tmp_path / "1-linked").symlink_to(shared / "target")
            result = run_hooks(tmp_path)
            assert result.returncode == 78
            error = result.last()["error"]
            assert f"'{tmp_path}/1-linked': the directory '{shared}'" in error
            assert "writable by group or others" in error
            assert not result.named("step_started")
        finally:
            shutil.rmtree(shared.parent)

    def test_target_swapped_while_an_earlier_hook_runs_never_runs(self, tmp_path: Path) -> None:
        """Safe when the hooks were scanned; while the first hook runs, the target's directory
        is opened to another user, who replaces the target: checked again as it starts, the
        second hook is refused (78), and neither file runs."""
        shared = shared_directory(0o755)
        marker = shared.parent / "swapped-ran"
        try:
            hook(shared, "target", "echo original ran")
            nobody = pwd.getpwnam("nobody")
            swap = (
                f"chmod 777 {shared}; setpriv --reuid={nobody.pw_uid} --regid={nobody.pw_gid} "
                f'--clear-groups sh -c \'printf "#!/bin/sh\\ntouch {marker}\\n" > {shared}/new'
                f" && chmod 755 {shared}/new && mv -f {shared}/new {shared}/target'"
            )
            hook(tmp_path, "1-first", swap)
            (tmp_path / "2-linked").symlink_to(shared / "target")
            result = run_hooks(tmp_path)
            assert result.returncode == 78, result.stderr
            assert result.last()["event"] == "config_invalid"
            assert f"the directory '{shared}'" in result.last()["error"]
            assert started(result) == ["1-first", "2-linked"]
            assert (shared / "target").stat().st_uid == nobody.pw_uid  # the swap happened
            assert not marker.exists()
            assert not result.named("hook_output")
        finally:
            shutil.rmtree(shared.parent)

    def test_executable_but_not_by_this_user_is_refused(self) -> None:
        """Mode 744 and the entrypoint running as nobody: refused (78), not silently skipped."""
        hooks = shared_directory(0o755)
        try:
            hook(hooks, "1-root-only", "echo ran", mode=0o744)
            nobody = pwd.getpwnam("nobody")
            as_nobody = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
                         "--clear-groups"]  # fmt: skip
            # A checkout under a directory only root may enter (mktemp -d) is out of its reach.
            reach = subprocess.run(
                [*as_nobody, sys.executable, "-c", "import entrypoint"],
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            if reach.returncode != 0:
                pytest.skip(
                    f"nobody cannot run this checkout: {reach.stderr.strip().splitlines()[-1:]}"
                )
            proc = subprocess.run(
                [*as_nobody, *entrypoint_cmd()],
                env=hooks_env(hooks, HOME="/"), capture_output=True, text=True, timeout=60,
                check=False,
            )  # fmt: skip
            assert proc.returncode == 78, proc.stderr
            error = parse_events(proc.stderr)[-1]["error"]
            assert f"is executable, but not by uid {nobody.pw_uid} (-rwxr--r--)" in error
        finally:
            shutil.rmtree(hooks.parent)


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
