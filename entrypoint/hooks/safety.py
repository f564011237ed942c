"""Which hooks may run: the scan before any step, and the check of each hook as it starts.

A hook runs as the entrypoint's user, root in many images, so nobody else may have been able to
change what runs: not the file, not the hooks directory (whoever writes it may add or replace
hooks), not a directory on the way to the file, symlinks followed (a ConfigMap mounts each key
as a symlink into a timestamped directory). A directory others may write is fine on a read-only
mount, and on the way to the file when it has the sticky bit (``/tmp``: others may add entries
there, not replace ours). The check is made once before any step (``scan``: 78 with nothing
done) and again as each hook starts, on the file then opened (``open_checked``), which is what
runs: a file swapped while an earlier hook ran is refused, never executed.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from entrypoint.errors import ConfigError

MAX_LINKS = 40  # symlinks followed in one lookup, as the kernel's own limit
EXECUTE_BITS = stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str
    notable: bool  # a regular file without the executable bit: likely a forgotten chmod +x


def version_key(name: str) -> tuple[str | int, ...]:
    """``2-x`` before ``10-y``, as ``sort -V``: runs of digits compare as numbers."""
    # re.split with a group alternates text and digits, so the types line up position by position.
    return tuple(int(p) if i % 2 else p for i, p in enumerate(re.split(r"(\d+)", name)))


def _unsafe(target: Path | int, info: os.stat_result, *, sticky_ok: bool = False) -> str | None:
    """Why someone other than root or us could change ``target`` (a path or an open file)."""
    if info.st_uid not in (0, os.geteuid()):
        return f"owned by uid {info.st_uid}"
    writable = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if writable and not (sticky_ok and info.st_mode & stat.S_ISVTX) and not _read_only(target):
        return f"writable by group or others (mode {stat.filemode(info.st_mode)})"
    return None


def _read_only(target: Path | int) -> bool:
    """On a read-only mount nobody can write, whatever the mode says: a Kubernetes ConfigMap
    volume's directory is drwxrwxrwt, but it is mounted read-only."""
    try:
        return bool(os.statvfs(target).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _refused(kind: str, path: Path | str, why: str) -> str:
    return (
        f"{kind} {str(path)!r} is {why}: refused, as this container could have changed it; "
        f"make it owned by root (or uid {os.geteuid()}) and writable by its owner only, e.g. "
        "COPY --chown=root:root and chmod 755 in the image build"
    )


def route(path: Path) -> tuple[str, list[str]]:
    """The file ``path`` names, every symlink followed, and each directory looked into on the
    way (in order): whoever may write one of those decides what ``path`` runs."""
    pending = [p for p in os.path.abspath(path).split("/") if p]  # noqa: PTH100 - strings here
    current, looked_into, links = "/", [], 0
    while pending:
        part = pending.pop(0)
        if part == "..":  # current is a real directory: its parent is the one the kernel takes
            current = os.path.dirname(current)  # noqa: PTH120
            continue
        if part == ".":
            continue
        if current not in looked_into:
            looked_into.append(current)
        candidate = os.path.join(current, part)  # noqa: PTH118
        if not os.path.islink(candidate):  # noqa: PTH114
            current = candidate
            continue
        links += 1
        if links > MAX_LINKS:
            raise OSError(errno.ELOOP, "too many levels of symbolic links", str(path))
        target = os.readlink(candidate)  # noqa: PTH115
        current = "/" if target.startswith("/") else current
        pending[:0] = [p for p in target.split("/") if p]
    return current, looked_into


def _route_problem(kind: str, path: Path) -> str | None:
    """A directory on the way to ``path`` that someone else could write, or None."""
    try:
        _, looked_into = route(path)
        for directory in map(Path, looked_into):
            why = _unsafe(directory, directory.stat(), sticky_ok=True)
            if why:
                return _refused(f"{kind} {str(path)!r}: the directory", directory, why)
    except OSError as exc:
        return f"{kind} {str(path)!r} cannot be followed: {exc.strerror}"
    return None


def check_directory(directory: Path) -> None:
    """Whoever may write the directory may add, replace or rename hooks: judged as a hook is,
    and so is every directory on the way to it."""
    if not directory.is_dir():
        raise ConfigError(f"ENTRYPOINT_HOOKS_DIR={str(directory)!r} is not a directory")
    problem = _route_problem("ENTRYPOINT_HOOKS_DIR", directory)
    why = _unsafe(directory, directory.stat())
    if problem or why:
        raise ConfigError(problem or _refused("ENTRYPOINT_HOOKS_DIR", directory, why or ""))


def scan(directory: Path) -> tuple[list[Path], list[Skipped]]:
    """The hooks to run in order, and the files skipped with why; ConfigError when unsafe."""
    if not directory.exists():
        return [], []
    check_directory(directory)
    hooks: list[Path] = []
    skipped: list[Skipped] = []
    problems: list[str] = []
    for path in sorted(directory.iterdir(), key=lambda p: version_key(p.name)):
        try:
            info = path.stat()  # a symlink is judged by what it points to
        except OSError as exc:
            skipped.append(Skipped(path, f"cannot be read: {exc.strerror}", notable=False))
            continue
        if not stat.S_ISREG(info.st_mode):
            skipped.append(Skipped(path, "not a regular file", notable=False))
            continue
        if not info.st_mode & EXECUTE_BITS:
            mode = stat.filemode(info.st_mode)
            skipped.append(Skipped(path, f"not executable ({mode}): chmod +x it", notable=True))
            continue
        problem = _problem(path, info)
        if problem:
            problems.append(problem)
        hooks.append(path)
    if problems:
        raise ConfigError(*problems)
    return hooks, skipped


def _problem(path: Path, info: os.stat_result) -> str | None:
    if not os.access(path, os.X_OK):
        return (
            f"hook {str(path)!r} is executable, but not by uid {os.geteuid()} "
            f"({stat.filemode(info.st_mode)}): refused rather than skipped; chmod 755 it"
        )
    why = _unsafe(path, info)
    return _refused("hook", path, why) if why else _route_problem("hook", path)


def open_checked(path: Path) -> int:
    """The hook's file, opened to be run from this descriptor, once every directory on the way
    and the opened file itself are checked; ConfigError when someone else could have changed
    it since the scan, OSError when it is gone."""
    problem = _route_problem("hook", path)
    if problem:
        raise ConfigError(problem)
    real, _ = route(path)
    # O_NOFOLLOW: the route was checked to here; a symlink put in its place now is not followed.
    fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        why = "not a regular file" if not stat.S_ISREG(info.st_mode) else _unsafe(fd, info)
    except BaseException:
        os.close(fd)
        raise
    if why:
        os.close(fd)
        raise ConfigError(_refused("hook", path, why))
    return fd
