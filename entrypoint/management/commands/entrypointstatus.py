"""``manage.py entrypointstatus``: ``django-entrypoint --status`` as a management command."""

from __future__ import annotations

import sys
from typing import Any

from entrypoint import project
from entrypoint.config import Settings
from entrypoint.management.base import StepCommand
from entrypoint.migrate import status


class Command(StepCommand):
    help = (
        "Print who holds the migration lock (and the fence), what is pending and what was last "
        "applied, as one JSON document on stdout; exit 69 naming a database that did not "
        "answer. Takes no lock, changes nothing, does not wait for the database."
    )
    requires_system_checks = ()  # a stuck deploy's question: answer it whatever the checks say

    def run_step(self, settings: Settings, options: dict[str, Any]) -> None:
        del options
        aliases = project.resolve_aliases(settings.databases)
        status.print_status(aliases, settings.migrate, out=sys.__stdout__ or sys.stdout)
