"""Whatever a hook started ends with it, escaped descendants included.

A signal to the hook's process group misses a child that left it (``setsid``, a daemon's double
fork). During the hooks step the entrypoint is a child subreaper (Linux ``prctl``
``PR_SET_CHILD_SUBREAPER``): a process whose parent exits is handed to us instead of to PID 1,
so once a hook has exited, every process it left behind is, sooner or later, our child. The
step ends them all (SIGTERM, SIGKILL after a grace) before the next hook, and before the exec:
a process left behind would otherwise write into a pipe nobody reads after the exec, and die of
SIGPIPE at its first line. Hooks are the only children the entrypoint has.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from entrypoint import log

PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h
POLL = 0.05
KILL_WAIT = 5.0  # after SIGKILL: a process in uninterruptible sleep may take a moment


@contextmanager
def subreaper() -> Iterator[None]:
    """The block runs with this process a child subreaper; the setting does not outlive it
    (it would survive the exec, into the server)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        # Not Linux, or a seccomp filter: the process group is still signalled.
        log.get().warning("hooks_subreaper_unavailable", errno=ctypes.get_errno())
        yield
        return
    try:
        yield
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def children() -> list[int]:
    """Our child processes, zombies included, from /proc (``task/*/children`` needs a kernel
    option that not every kernel has)."""
    me, found = os.getpid(), []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        # Fields after the command name, which may hold spaces and parentheses: state, ppid.
        if int(stat.rsplit(")", 1)[1].split()[1]) == me:
            found.append(int(entry.name))
    return found


def _reaped(pid: int) -> bool:
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:  # not ours (any more)
        return True


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)
        # A leader of its own group (setsid): its group goes too, children not handed to us yet.
        if os.getpgid(pid) == pid:
            os.killpg(pid, signum)


def end_descendants(grace: float) -> list[int]:
    """End every child we have, and the children handed to us as their parents end, until
    none is left: SIGTERM, then SIGKILL after ``grace`` seconds. Returns their pids.

    Call it only once the hook itself has been waited for: every child left is its descendant.
    """
    ended: list[int] = []
    killed: set[int] = set()
    term_until = time.monotonic() + grace
    give_up = term_until + KILL_WAIT
    while True:
        alive = [pid for pid in children() if not _reaped(pid)]
        if not alive:
            return ended
        now = time.monotonic()
        if now > give_up:
            log.get().warning("hook_descendants_not_ended", pids=alive)
            return ended
        for pid in alive:
            if pid not in ended:
                ended.append(pid)
                _signal(pid, signal.SIGTERM)
            elif now > term_until and pid not in killed:
                killed.add(pid)
                _signal(pid, signal.SIGKILL)
        time.sleep(POLL)
