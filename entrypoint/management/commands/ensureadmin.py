"""``manage.py ensureadmin``: the admin step as a management command."""

from __future__ import annotations

from argparse import ArgumentParser
from dataclasses import replace
from typing import Any

from entrypoint import admin, log, project
from entrypoint.admin_config import AdminSeed
from entrypoint.config import Settings
from entrypoint.errors import ConfigError
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
        seed = _seed(settings.admin, options)
        if seed is not None and options["database"]:
            (alias,) = project.resolve_aliases((options["database"],))
            admin.ensure_admin(seed, database=alias)
            return
        aliases = project.resolve_aliases(settings.databases)
        admin.run(replace(settings, admin=seed), aliases)


def _seed(base: AdminSeed | None, options: dict[str, Any]) -> AdminSeed | None:
    """The environment's seed with each option given on the command line applied."""
    password = options["password"] or (base.password if base else "")
    log.add_secrets([password])
    username = options["username"] or (base.username if base else "")
    if not username:
        return None
    if not password:
        raise ConfigError(
            "--username is given but no password is: set DJANGO_ADMIN_PASSWORD_FILE "
            "(a mounted secret) or DJANGO_ADMIN_PASSWORD"
        )
    email = options["email"] if options["email"] is not None else (base.email if base else "")
    if base is None:
        return AdminSeed(username, password, email)
    return replace(base, username=username, password=password, email=email)
