"""``manage.py wait4db``: the wait step as a management command."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from entrypoint import config, project, steps
from entrypoint.config import Settings
from entrypoint.management.base import StepCommand
from entrypoint.wait import database as wait


def seconds(*, allow_zero: bool) -> Any:
    """An argparse type with the variables' rule; a bad value is a usage error (exit 2)."""

    def parse(raw: str) -> float:
        value = config.seconds(raw, allow_zero=allow_zero)
        if value is None:
            expected = config.seconds_range(allow_zero=allow_zero)
            raise argparse.ArgumentTypeError(f"{raw[:60]!r} is invalid: expected {expected}")
        return value

    return parse


class Command(StepCommand):
    help = (
        "Wait until the database, and the services of ENTRYPOINT_WAIT_SERVICES, answer "
        "steadily, with one hard deadline (exit 69 on timeout). Defaults come from "
        "ENTRYPOINT_WAIT_TIMEOUT, _STABLE and _INTERVAL (180, 5, 1)."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "-t",
            "--timeout",
            type=seconds(allow_zero=False),
            metavar="SEC",
            help="seconds before giving up",
        )
        parser.add_argument(
            "-s",
            "--stable",
            type=seconds(allow_zero=True),
            metavar="SEC",
            help="seconds the database must keep answering once seen down during this wait "
            "(one that answers the first check is ready after a second, at once)",
        )
        parser.add_argument(
            "-i",
            "--interval",
            type=seconds(allow_zero=False),
            metavar="SEC",
            help="seconds between checks",
        )
        parser.add_argument(
            "-d", "--database", default="default", help="database alias (default 'default')"
        )
        parser.add_argument(
            "--migrated", action="store_true", help="also wait until no migration is pending"
        )
        parser.add_argument(
            "--no-services",
            action="store_true",
            help="do not wait for the services of ENTRYPOINT_WAIT_SERVICES",
        )

    def run_step(self, settings: Settings, options: dict[str, Any]) -> None:
        (alias,) = project.resolve_aliases((options["database"],), "--database")
        # The wait step's own code with the options over its settings: the services of
        # ENTRYPOINT_WAIT_SERVICES too, within the same deadline, unless --no-services.
        waiting = replace(
            settings.wait,
            timeout=options["timeout"] or settings.wait.timeout,
            stable=settings.wait.stable if options["stable"] is None else options["stable"],
            interval=options["interval"] or settings.wait.interval,
            services=() if options["no_services"] else settings.wait.services,
        )
        pending = steps.migrations_pending(settings, until_migrated=options["migrated"])
        wait.run(waiting, (alias,), pending=pending)
        if pending is not None:
            steps.check_schema(settings, (alias,))
