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


def _value(env: Mapping[str, str], name: str, problems: list[str]) -> str | None:
    """``NAME`` or the content of the file named by ``NAME_FILE``; never both."""
    file_name = name + "_FILE"
    if name in env and file_name in env:
        problems.append(f"{name} and {file_name} are both set: set only one of them")
        return None
    if file_name not in env:
        return env.get(name)
    text = read_secret_file(file_name, env[file_name], problems)
    # Secret volumes and `echo >` add one trailing newline; the value itself is kept as is.
    return None if text is None else text.removesuffix("\n")


def _seed_value(env: Mapping[str, str], field_name: str, problems: list[str]) -> str | None:
    value = _value(env, PREFIX + field_name, problems)
    # An empty DJANGO_ADMIN_X (a blank line in an env file) must not hide DJANGO_SUPERUSER_X.
    if not value:
        value = _value(env, FALLBACK_PREFIX + field_name, problems) or value
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


def _extra_fields(env: Mapping[str, str], problems: list[str]) -> dict[str, str]:
    names = {
        key.removeprefix(prefix).removesuffix("_FILE")
        for key in env
        for prefix in (PREFIX, FALLBACK_PREFIX)
        if key.startswith(prefix)
    } - {"USERNAME", "PASSWORD", "EMAIL"}
    extra = {}
    for name in sorted(names):
        if not name.isidentifier():
            problems.append(
                f"{PREFIX}{name} does not name a model field: use DJANGO_ADMIN_<FIELD>, "
                "the field name upper-cased"
            )
            continue
        value = _seed_value(env, name, problems)
        if value is not None:
            extra[name.lower()] = value
    return extra


def read_admin_seed(env: Mapping[str, str], problems: list[str]) -> AdminSeed | None:
    """None when no username is configured: the admin step is then skipped."""
    update = _update_flag(env, problems)
    username = _seed_value(env, "USERNAME", problems)
    password = _seed_value(env, "PASSWORD", problems)
    email = _seed_value(env, "EMAIL", problems) or ""
    extra = _extra_fields(env, problems)
    if not username:
        return None
    if not password:
        problems.append(
            "an admin username is set but no password is: set DJANGO_ADMIN_PASSWORD "
            "or, better, DJANGO_ADMIN_PASSWORD_FILE pointing at a mounted secret"
        )
        return None
    return AdminSeed(username, password, email, MappingProxyType(extra), update)
