"""Typed reads of environment variables from an explicit mapping, shared by the config modules."""

from __future__ import annotations

import errno
import os
import re
import stat
import unicodedata
from collections.abc import Mapping

YEAR = 365 * 24 * 3600  # the longest any wait may be: a bigger number is a typo, not a plan
BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
SECRET_FILE_MAX = 64 * 1024  # bytes; a Kubernetes Secret holds at most 1 MiB in all
# Credentials only the steps use: neither the hooks nor the server get them (whatever runs there
# can read /proc/PID/environ, or print them in an encoding the scrubber does not know).
STEP_ONLY_CREDENTIALS = frozenset(
    {"DJANGO_ADMIN_PASSWORD", "DJANGO_SUPERUSER_PASSWORD", "ENTRYPOINT_MIGRATE_DATABASE_URL"}
)
# ASCII digits only: float() also takes "1e10", "1_000", "inf" and non-ASCII digits.
_SECONDS = re.compile(r"[0-9]+(\.[0-9]+)?", re.ASCII)


class Reader:
    """Reads variables from one mapping and records every problem instead of stopping."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def fail(self, name: str, value: str, expected: str) -> None:
        shown = value if len(value) <= 60 else value[:57] + "..."
        self.problems.append(f"{name}={shown!r} is invalid: expected {expected}")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.env.get(name, default).strip().lower() or default
        if value not in choices:
            self.fail(name, self.env[name], "one of " + ", ".join(choices))
            return default
        return value

    def number(self, name: str, default: float, *, allow_zero: bool) -> float:
        raw = self.env.get(name, "").strip()
        if not raw:
            return default
        value = seconds(raw, allow_zero=allow_zero)
        if value is None:
            self.fail(name, self.env[name], seconds_range(allow_zero=allow_zero))
            return default
        return value

    def names(self, name: str, default: str) -> tuple[str, ...]:
        return split(self.env.get(name, default))


def seconds(raw: str, *, allow_zero: bool) -> float | None:
    """A number of seconds in (0, YEAR] (or [0, YEAR]); None when ``raw`` is not one."""
    if not _SECONDS.fullmatch(raw):
        return None
    value = float(raw)
    if value > YEAR or (value == 0 and not allow_zero):
        return None
    return value


def seconds_range(*, allow_zero: bool) -> str:
    low = "0" if allow_zero else "more than 0"
    return f"a number of seconds from {low} to {YEAR} (a year), e.g. 30 or 2.5"


BYTE_ORDER_MARK = "\ufeff"


def read_secret_file(name: str, path: str, problems: list[str]) -> tuple[str, bool] | None:
    """The value a mounted secret holds, and whether a byte-order mark was removed from it; or
    None and a problem naming the variable and the path (never the bytes).

    One trailing line break, ``\\n`` or ``\\r\\n``, is no part of the value: secret volumes,
    ``echo >`` and Windows editors add it. Nor is a leading byte-order mark (Notepad's UTF-8),
    which the caller reports. Any other control character (a second line, a ``\\r`` alone, a
    tab) would make the value silently differ from what was typed: a problem, never a guess.
    """
    try:
        text = _read_regular_file(path).decode("utf-8")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
    except UnicodeDecodeError:
        reason = "not UTF-8 text"
    else:
        value = text.removeprefix(BYTE_ORDER_MARK)
        value = value.removesuffix("\r\n") if value.endswith("\r\n") else value.removesuffix("\n")
        if not any(unicodedata.category(char) == "Cc" for char in value):
            return value, text.startswith(BYTE_ORDER_MARK)
        problems.append(
            f"{name}={path[:200]!r} holds a control character besides one trailing line break "
            "(a second line, a carriage return, a tab): the value would not be what was "
            "typed; write it on one line, with at most one line break at its end"
        )
        return None
    problems.append(
        f"{name}={path[:200]!r} cannot be read ({reason}): mount the secret there, "
        f"a regular file of at most {SECRET_FILE_MAX} bytes"
    )
    return None


def _read_regular_file(path: str) -> bytes:
    """A regular file (or a symlink to one, as Kubernetes mounts secrets), read with a bound.

    Never blocks and never fills memory: a FIFO or a device (/dev/zero) is refused unread.
    """
    # O_NONBLOCK: opening a FIFO without a writer would otherwise wait forever.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as file:
            data = file.read(SECRET_FILE_MAX + 1)
    finally:
        os.close(fd)
    if len(data) > SECRET_FILE_MAX:
        raise OSError(errno.EFBIG, f"larger than {SECRET_FILE_MAX} bytes")
    return data


def miscased(env: Mapping[str, str], prefixes: tuple[str, ...]) -> list[str]:
    """Names that would be ours in upper case (``entrypoint_steps``): ignored, so worth a word."""
    return sorted(
        name for name in env if name != name.upper() and name.upper().startswith(prefixes)
    )


def split(raw: str) -> tuple[str, ...]:
    """The distinct non-empty items of a comma list, in order."""
    return tuple(dict.fromkeys(p.strip() for p in raw.split(",") if p.strip()))


def without_step_credentials(env: Mapping[str, str]) -> dict[str, str]:
    """The environment the hooks and the server get: ``env`` minus STEP_ONLY_CREDENTIALS."""
    return {name: value for name, value in env.items() if name not in STEP_ONLY_CREDENTIALS}
