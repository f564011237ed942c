"""What the thin management commands share: settings, logs, signals and exit codes."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from typing import Any

from django.core.management.base import BaseCommand

from entrypoint import config, log, project
from entrypoint.errors import EntrypointError, Interrupted, raise_on_signals


class StepCommand(BaseCommand):
    """A management command that runs one step function with the entrypoint's conventions.

    Settings come from the same environment variables as the CLI; command-line options
    override them. Errors keep their documented exit codes.
    """

    def run_step(self, settings: config.Settings, options: dict[str, Any]) -> None:
        raise NotImplementedError

    def handle(self, *args: Any, **options: Any) -> None:
        del args
        raise_on_signals()
        try:
            # Django's own --settings has already been copied into the environment.
            settings = config.load(os.environ)
            log.configure(settings.log_format, settings.log_level)
            project.register_database_passwords()
            if settings.admin:
                log.add_secrets([settings.admin.password])
            self.run_step(settings, options)
        except Interrupted as exc:
            log.get().warning("interrupted", signal=str(exc), exit_code=exc.exit_code)
            sys.exit(exc.exit_code)
        except EntrypointError as exc:
            # Not CommandError: Django would print the message again as a raw line.
            log.get().error(exc.event, error=str(exc), exit_code=exc.exit_code)
            sys.exit(exc.exit_code)
        finally:
            log.flush()


def with_overrides(settings: config.Settings, **changes: Any) -> config.Settings:
    """The settings with each option that was given on the command line applied."""
    return replace(settings, **{k: v for k, v in changes.items() if v is not None})
