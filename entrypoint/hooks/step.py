"""The hooks step: the executables in ENTRYPOINT_HOOKS_DIR, in version order, as subprocesses.

Each hook gets the entrypoint's environment without the step-only credentials and no stdin; it
runs from the file descriptor its check opened (``safety``), its output becomes events, read in
bounded chunks, it may run ENTRYPOINT_HOOK_TIMEOUT seconds, a non-zero exit stops the step
(exit 70), and what it leaves running is ended when it exits (``reaper``).
"""

from __future__ import annotations

import codecs
import contextvars
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

import structlog

from entrypoint import heartbeat, log
from entrypoint.env_reader import without_step_credentials
from entrypoint.errors import HookFailed, interrupts_deferred
from entrypoint.hooks import reaper
from entrypoint.hooks.config import HOOK_VARIABLE, HooksSettings
from entrypoint.hooks.safety import open_checked, scan

STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL for a hook we stop
CHUNK = 65536  # bytes read at once: what one pipe buffer holds


def _forward(stream: IO[bytes], name: str) -> None:
    """Each line the hook writes becomes an event (scrubbed like every other field).

    Read in chunks, never by line: a hook printing 300 MB without a newline (or a progress bar
    redrawn with ``\\r``) must not make us hold it. A line past 32 KiB is cut and marked
    (log.LogStream), and ``\\r`` ends a line as ``\\n`` does.
    """
    events = log.LogStream(event="hook_output", stream=name)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    with stream:
        while chunk := stream.read1(CHUNK):  # type: ignore[attr-defined]
            events.write(decoder.decode(chunk))
    events.write(decoder.decode(b"", final=True))
    events.flush()


def _start_readers(proc: subprocess.Popen[bytes]) -> list[threading.Thread]:
    readers = [
        threading.Thread(
            target=contextvars.copy_context().run, args=(_forward, pipe, name), daemon=True
        )
        for pipe, name in ((proc.stdout, "stdout"), (proc.stderr, "stderr"))
    ]
    for reader in readers:
        reader.start()
    return readers


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the hook's process group, SIGKILL when it is still there after the grace."""
    for signum, grace in ((signal.SIGTERM, STOP_GRACE), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:
            return
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            continue
        return


def _start(path: Path, fd: int, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """The hook, run from the descriptor that was checked, never again by its path.

    ``/proc/self/fd/N`` names the opened file itself. The descriptor stays open across the exec
    (``pass_fds``): for a ``#!`` script the kernel hands the interpreter that name to open, and
    it must still exist then; so a script's ``$0`` is ``/proc/self/fd/N``, and its own path is
    in ENTRYPOINT_HOOK.
    """
    # A session of its own: a timeout or SIGTERM reaches the hook's children too.
    return subprocess.Popen(  # noqa: S603 - the file was checked by open_checked()
        [str(path)],
        executable=f"/proc/self/fd/{fd}",
        pass_fds=(fd,),
        env={**env, HOOK_VARIABLE: str(path)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _end_left_behind() -> None:
    ended = reaper.end_descendants(STOP_GRACE)
    if ended:
        log.get().warning(
            "hook_descendants_ended",
            pids=ended,
            hint="a hook's processes end with it: run a daemon beside the server as a sidecar "
            "container, or start it from COMMAND",
        )


def run_hook(path: Path, *, timeout: float, position: str, env: Mapping[str, str]) -> None:
    with structlog.contextvars.bound_contextvars(hook=path.name, position=position):
        log.get().info("hook_started", path=str(path))
        started = time.perf_counter()
        try:
            fd = open_checked(path)  # ConfigError (78) when someone else could have changed it
        except OSError as exc:
            raise HookFailed(f"hook {position} {path.name!r} cannot be opened: {exc}") from None
        proc: subprocess.Popen[bytes] | None = None
        readers: list[threading.Thread] = []
        try:  # however we leave (SIGTERM included), the hook does not outlive us
            try:
                # Not inside Popen: there, an interrupt would leave us without the hook's pid.
                with interrupts_deferred():
                    proc = _start(path, fd, env)
            except OSError as exc:
                raise HookFailed(
                    f"hook {position} {path.name!r} cannot be run: {exc.strerror} (a missing "
                    "#! interpreter, or no #! line in a script)"
                ) from None
            finally:
                os.close(fd)
            readers = _start_readers(proc)
            with heartbeat.running("hook_running", hook=path.name):
                code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            assert proc is not None  # only its wait times out
            _stop(proc)
            raise HookFailed(
                f"hook {position} {path.name!r} ran longer than ENTRYPOINT_HOOK_TIMEOUT "
                f"({timeout:g}s) and was stopped: make it faster, or raise the timeout"
            ) from None
        except BaseException:  # SIGTERM to the entrypoint: the hook goes too
            if proc is not None:
                _stop(proc)
            raise
        finally:
            _end_left_behind()  # the hook is waited for: what is left are its descendants
            for reader in readers:
                reader.join(2)  # their pipes are closed now; a stray holder must not hold us
        duration = round(time.perf_counter() - started, 3)
        if code != 0:
            how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited {code}"
            raise HookFailed(
                f"hook {position} {path.name!r} {how} after {duration:g}s; the hooks after it "
                "did not run"
            )
        log.get().info("hook_finished", duration_s=duration)


def validate(settings: HooksSettings) -> None:
    scan(Path(settings.directory))


def run(settings: HooksSettings, aliases: Sequence[str]) -> None:
    """The hooks step: nothing to do when the directory is missing or empty."""
    del aliases
    hooks, skipped = scan(Path(settings.directory))
    for item in skipped:
        # A regular file without its x bit is likely a forgotten chmod +x: worth an info.
        report = log.get().info if item.notable else log.get().debug
        report("hook_skipped", path=str(item.path), reason=item.reason)
    if not hooks:
        log.get().debug("hooks_none", directory=settings.directory)
        return
    env = without_step_credentials(settings.environment)
    with reaper.subreaper():
        for number, path in enumerate(hooks, 1):
            run_hook(path, timeout=settings.timeout, position=f"{number}/{len(hooks)}", env=env)
