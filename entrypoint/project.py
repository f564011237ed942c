"""Set Django up once for the given settings module and resolve the database aliases."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from entrypoint import log
from entrypoint.errors import ConfigError


def setup(settings_module: str) -> None:
    # Django reads the module name from the environment; the server we exec inherits it too.
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    # As with manage.py, the project in the working directory (WORKDIR /app) is importable;
    # the console script alone would not put it on sys.path.
    workdir = str(Path.cwd())
    if workdir not in sys.path:
        sys.path.insert(0, workdir)
    # What the settings module prints as it is imported waits for its passwords to be known.
    with log.holding_output():
        try:
            _django_setup(settings_module)
        finally:
            register_database_passwords()


def _django_setup(settings_module: str) -> None:
    import django  # noqa: PLC0415 - imported only once the settings module is known
    from django.core.exceptions import ImproperlyConfigured  # noqa: PLC0415

    try:
        django.setup()
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"cannot import {exc.name!r} while loading settings {settings_module!r}: "
            "check DJANGO_SETTINGS_MODULE and that the project is on PYTHONPATH"
        ) from exc
    except ImproperlyConfigured as exc:
        raise ConfigError(f"Django settings {settings_module!r} are invalid: {exc}") from exc
    except Exception as exc:
        # e.g. a settings file reading a variable that is not set: KeyError('SECRET_KEY').
        raise ConfigError(
            f"loading settings {settings_module!r} failed with {type(exc).__name__}: "
            f"{str(exc)[:200]}; fix the settings module or the variables it reads"
        ) from exc


def register_database_passwords() -> None:
    from django.conf import settings  # noqa: PLC0415

    if not settings.configured:  # the settings module did not load: nothing of it to hide
        return
    log.add_secrets(str(db.get("PASSWORD") or "") for db in settings.DATABASES.values())


def resolve_aliases(
    requested: tuple[str, ...] | None, source: str = "ENTRYPOINT_DATABASES"
) -> tuple[str, ...]:
    """The aliases the steps act on; ``None`` means every configured alias."""
    from django.db import connections  # noqa: PLC0415

    configured = tuple(connections.settings)
    if requested is None:
        return configured
    unknown = [a for a in requested if a not in configured]
    if unknown:
        raise ConfigError(
            f"{source} names {', '.join(map(repr, unknown))}, not in DATABASES "
            f"(configured: {', '.join(configured)}): use one of those, or all"
        )
    return requested
