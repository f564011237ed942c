"""``manage.py wait4db``: the wait step as a management command."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from entrypoint import project, wait
from entrypoint.config import Settings
from entrypoint.management.base import StepCommand


class Command(StepCommand):
    help = "Wait until the database answers steadily, with a hard deadline (exit 69 on timeout)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "-t",
            "--timeout",
            type=float,
            default=180.0,
            help="seconds before giving up (default 180)",
        )
        parser.add_argument(
            "-s",
            "--stable",
            type=float,
            default=5.0,
            help="seconds the database must keep answering (default 5)",
        )
        parser.add_argument(
            "-i", "--interval", type=float, default=1.0, help="seconds between checks (default 1)"
        )
        parser.add_argument(
            "-d", "--database", default="default", help="database alias (default 'default')"
        )
        parser.add_argument(
            "--migrated", action="store_true", help="also wait until no migration is pending"
        )

    def run_step(self, settings: Settings, options: dict[str, Any]) -> None:
        (alias,) = project.resolve_aliases((options["database"],), "--database")
        wait.wait_for_database(
            alias,
            timeout=options["timeout"],
            stable=options["stable"],
            interval=options["interval"],
            until_migrated=options["migrated"],
            targets=settings.migrate_targets,
        )
