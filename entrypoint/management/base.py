"""What the thin management commands share: settings, logs, signals and exit codes."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand

from entrypoint import capture, config, connection, project
from entrypoint.cli import load_settings, run_mapped


class StepCommand(BaseCommand):
    """A management command that runs one step function with the entrypoint's conventions.

    Settings come from the same environment variables as the CLI, options override them where
    a command has them, and errors keep their documented exit codes (not Django's 1).
    """

    def run_step(self, settings: config.Settings, options: dict[str, Any]) -> None:
        raise NotImplementedError

    def handle(self, *args: Any, **options: Any) -> None:
        del args
        code = run_mapped(lambda: self._run(options))
        if code:
            sys.exit(code)

    def _run(self, options: dict[str, Any]) -> int:
        # Django's own --settings has already been copied into the environment.
        settings = load_settings()
        project.register_database_passwords()
        connection.use_network_timeout(settings.db_network_timeout)
        with capture.output_as_events(), capture.logging_as_events():
            self.run_step(settings, options)
        return 0
