"""``manage.py ensureadmin``: the admin step as a management command."""

from __future__ import annotations

import os
from argparse import ArgumentParser
from collections.abc import Mapping
from typing import Any

from entrypoint import config, log, project
from entrypoint.admin import ensure as admin
from entrypoint.admin.config import FALLBACK_PREFIX, PREFIX
from entrypoint.config import Settings
from entrypoint.management.base import StepCommand


class Command(StepCommand):
    help = (
        "Make sure a superuser exists: created once, left alone afterwards (or brought in line "
        "with ENTRYPOINT_ADMIN_UPDATE=true); safe when many replicas run it at once. Options "
        "default to DJANGO_ADMIN_USERNAME/_PASSWORD/_EMAIL. Passing the password in the "
        "environment, or better as DJANGO_ADMIN_PASSWORD_FILE (a mounted secret), is safer "
        "than -p: command-line arguments are visible to every process on the machine."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("-u", "--username", help="default: DJANGO_ADMIN_USERNAME")
        parser.add_argument(
            "-p",
            "--password",
            help="default: DJANGO_ADMIN_PASSWORD(_FILE); visible in the process list, avoid it",
        )
        parser.add_argument("-e", "--email", help="default: DJANGO_ADMIN_EMAIL")
        parser.add_argument(
            "-d", "--database", help="database alias (default: the user model's, via routers)"
        )

    def run_step(self, settings: Settings, options: dict[str, Any]) -> None:
        # The options are read exactly as the variables they stand for, so the rest of the
        # seed (a _FILE password, extra fields, ENTRYPOINT_ADMIN_UPDATE) still comes along;
        # as the admin step, whatever ENTRYPOINT_STEPS says.
        seed = config.load(with_options(os.environ, options), steps="admin").admin
        if seed is not None:
            log.add_secrets([seed.password])
        if seed is not None and options["database"]:
            (alias,) = project.resolve_aliases((options["database"],), "--database")
            admin.ensure_admin(seed, database=alias, connect_within=settings.wait.timeout)
            return
        aliases = project.resolve_aliases(settings.databases)
        admin.run(seed, aliases, connect_within=settings.wait.timeout)


def with_options(env: Mapping[str, str], options: dict[str, Any]) -> dict[str, str]:
    """The environment with -u/-p/-e in place of every variable that would give that value."""
    changed = dict(env)
    for option in ("username", "password", "email"):
        if options[option] is None:
            continue
        field = option.upper()
        for prefix in (PREFIX, FALLBACK_PREFIX):
            changed.pop(prefix + field, None)
            changed.pop(prefix + field + "_FILE", None)
        changed[PREFIX + field] = options[option]
    return changed
