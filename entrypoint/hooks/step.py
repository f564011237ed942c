"""The hooks step: the executables in ENTRYPOINT_HOOKS_DIR, in version order, as subprocesses.

Each hook gets the entrypoint's environment and no stdin; its output lines become events, it
may run ENTRYPOINT_HOOK_TIMEOUT seconds, and a non-zero exit stops the step (exit 70). A hook,
or the directory itself, that someone other than root or the current user could have written is
refused (exit 78); on a read-only mount the mode's write bits do not count.
"""

from __future__ import annotations

import contextvars
import os
import re
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import structlog

from entrypoint import heartbeat, log
from entrypoint.errors import ConfigError, HookFailed, interrupts_deferred
from entrypoint.hooks.config import HooksSettings

STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL for a hook we stop


def version_key(name: str) -> tuple[str | int, ...]:
    """``2-x`` before ``10-y``, as ``sort -V``: runs of digits compare as numbers."""
    # re.split with a group alternates text and digits, so the types line up position by position.
    return tuple(int(p) if i % 2 else p for i, p in enumerate(re.split(r"(\d+)", name)))


def _unsafe(path: Path, info: os.stat_result) -> str | None:
    if info.st_uid not in (0, os.geteuid()):
        return f"owned by uid {info.st_uid}"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not _read_only(path):
        return f"writable by group or others (mode {stat.filemode(info.st_mode)})"
    return None


def _read_only(path: Path) -> bool:
    """On a read-only mount nobody can write, whatever the mode says: a Kubernetes ConfigMap
    volume's directory is drwxrwxrwt, but it is mounted read-only."""
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _refused(kind: str, path: Path, why: str) -> str:
    return (
        f"{kind} {str(path)!r} is {why}: refused, as this container could have changed it; "
        f"make it owned by root (or uid {os.geteuid()}) and writable by its owner only, e.g. "
        "COPY --chown=root:root and chmod 755 in the image build"
    )


def _check_directory(directory: Path) -> None:
    """Whoever may write the directory may add, replace or rename hooks: judged as a hook is."""
    if not directory.is_dir():
        raise ConfigError(f"ENTRYPOINT_HOOKS_DIR={str(directory)!r} is not a directory")
    why = _unsafe(directory, directory.stat())
    if why:
        raise ConfigError(_refused("ENTRYPOINT_HOOKS_DIR", directory, why))


def scan(directory: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The hooks to run in order, and the files skipped with why; ConfigError when unsafe."""
    if not directory.exists():
        return [], []
    _check_directory(directory)
    hooks: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    problems: list[str] = []
    for path in sorted(directory.iterdir(), key=lambda p: version_key(p.name)):
        try:
            info = path.stat()  # a symlink is judged by what it points to
        except OSError as exc:
            skipped.append((path, f"cannot be read: {exc.strerror}"))
            continue
        if not stat.S_ISREG(info.st_mode) or not os.access(path, os.X_OK):
            skipped.append((path, "not an executable file"))
            continue
        why = _unsafe(path, info)
        if why:
            problems.append(_refused("hook", path, why))
        hooks.append(path)
    if problems:
        raise ConfigError(*problems)
    return hooks, skipped


def _forward(stream: IO[bytes], name: str) -> None:
    """Each line the hook writes becomes an event (scrubbed like every other field)."""
    for raw in stream:
        line = raw.decode("utf-8", errors="replace").rstrip()
        if line:
            log.get().info("hook_output", stream=name, line=line)
    stream.close()


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


def run_hook(path: Path, *, timeout: float, position: str) -> None:
    with structlog.contextvars.bound_contextvars(hook=path.name, position=position):
        log.get().info("hook_started", path=str(path))
        started = time.perf_counter()
        proc: subprocess.Popen[bytes] | None = None
        readers: list[threading.Thread] = []
        try:  # however we leave (SIGTERM included), the hook does not outlive us
            # Not inside Popen: there, an interrupt would leave us without the hook's pid.
            with interrupts_deferred():
                # A session of its own: a timeout or SIGTERM reaches the hook's children too.
                proc = subprocess.Popen(  # noqa: S603 - the path was checked by scan()
                    [str(path)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                )
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
            for reader in readers:
                reader.join(2)  # a background child may keep the pipe open: do not wait on it
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
    for path, why in skipped:
        log.get().debug("hook_skipped", path=str(path), reason=why)
    if not hooks:
        log.get().debug("hooks_none", directory=settings.directory)
    for number, path in enumerate(hooks, 1):
        run_hook(path, timeout=settings.timeout, position=f"{number}/{len(hooks)}")
