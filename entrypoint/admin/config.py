"""The admin seed read from environment variables and mounted secret files."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from entrypoint.env_reader import BOOLEANS, read_secret_file

PREFIX = "DJANGO_ADMIN_"
FALLBACK_PREFIX = "DJANGO_SUPERUSER_"  # Django's own createsuperuser --noinput names
VARIABLES = frozenset({"ENTRYPOINT_ADMIN_UPDATE"})  # and the DJANGO_ADMIN_* seed


@dataclass(frozen=True)
class AdminSeed:
    username: str
    password: str = field(repr=False)
    email: str = ""
    # Values for a custom user model's REQUIRED_FIELDS, keyed by lower-cased field name.
    extra: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    update: bool = False
    # The _FILE variables whose byte-order mark was removed: the step warns about each.
    marks_removed: tuple[str, ...] = field(default=(), compare=False)


class _Read:
    """Where the seed's values land while it is read: the problems, and the removed marks."""

    def __init__(self, env: Mapping[str, str], problems: list[str]) -> None:
        self.env, self.problems = env, problems
        self.marks_removed: list[str] = []


def _value(read: _Read, name: str) -> str | None:
    """``NAME`` or the value the file named by ``NAME_FILE`` holds; never both."""
    file_name = name + "_FILE"
    if name in read.env and file_name in read.env:
        read.problems.append(f"{name} and {file_name} are both set: set only one of them")
        return None
    if file_name not in read.env:
        return read.env.get(name)
    secret = read_secret_file(file_name, read.env[file_name], read.problems)
    if secret is None:
        return None
    value, mark_removed = secret
    if mark_removed:
        read.marks_removed.append(file_name)
    return value


def _seed_value(read: _Read, field_name: str) -> str | None:
    value = _value(read, PREFIX + field_name)
    # An empty DJANGO_ADMIN_X (a blank line in an env file) must not hide DJANGO_SUPERUSER_X.
    if not value:
        value = _value(read, FALLBACK_PREFIX + field_name) or value
    return value


def _update_flag(env: Mapping[str, str], problems: list[str]) -> bool:
    raw = env.get("ENTRYPOINT_ADMIN_UPDATE", "")
    # Empty means unset, as for every other ENTRYPOINT_* variable.
    flag = BOOLEANS.get(raw.strip().lower() or "false")
    if flag is None:
        problems.append(
            f"ENTRYPOINT_ADMIN_UPDATE={raw[:60]!r} is invalid: expected true/false/1/0/yes/no"
        )
        return False
    return flag


def _extra_fields(read: _Read) -> dict[str, str]:
    names = {
        key.removeprefix(prefix).removesuffix("_FILE")
        for key in read.env
        for prefix in (PREFIX, FALLBACK_PREFIX)
        if key.startswith(prefix)
    } - {"USERNAME", "PASSWORD", "EMAIL"}
    extra = {}
    for name in sorted(names):
        if not name.isidentifier():
            read.problems.append(
                f"{PREFIX}{name} does not name a model field: use DJANGO_ADMIN_<FIELD>, "
                "the field name upper-cased"
            )
            continue
        value = _seed_value(read, name)
        if value is not None:
            extra[name.lower()] = value
    return extra


def read_admin_seed(env: Mapping[str, str], problems: list[str]) -> AdminSeed | None:
    """None when no username is configured: the admin step is then skipped."""
    update = _update_flag(env, problems)
    read = _Read(env, problems)
    username = _seed_value(read, "USERNAME")
    known = len(problems)
    password = _seed_value(read, "PASSWORD")
    unreadable = len(problems) > known  # said already: "no password" would only confuse
    email = _seed_value(read, "EMAIL") or ""
    extra = _extra_fields(read)
    if not username or unreadable:
        return None
    if not password:
        problems.append(
            "an admin username is set but no password is: set DJANGO_ADMIN_PASSWORD "
            "or, better, DJANGO_ADMIN_PASSWORD_FILE pointing at a mounted secret"
        )
        return None
    marks = tuple(read.marks_removed)
    return AdminSeed(username, password, email, MappingProxyType(extra), update, marks)
