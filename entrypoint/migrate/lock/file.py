"""The SQLite migration lock: an exclusive flock on a file next to the database."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import socket

from entrypoint.migrate.lock.options import Polled


class FileLock(Polled):
    """An exclusive flock next to the SQLite file; the kernel frees it if the holder dies."""

    kind = "flock"

    def __init__(self, path: str) -> None:
        self.path = path
        # Never deleted: unlinking a lock file lets two processes lock two different inodes.
        self.fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)

    def try_acquire(self) -> bool:
        assert self.fd is not None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        info = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "since": dt.datetime.now(dt.UTC).isoformat(),
        }
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, json.dumps(info).encode(), 0)
        return True

    def holder(self) -> dict[str, object]:
        with contextlib.suppress(OSError, ValueError):
            with open(self.path, encoding="utf-8") as handle:  # noqa: PTH123
                info = json.load(handle)
            return {f"holder_{k}": v for k, v in info.items()}
        return {}

    def is_held(self) -> bool:
        return self.fd is not None

    def release(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)  # closing the descriptor drops the flock
