"""ENTRYPOINT_MIGRATE_DATABASE_URL: the lock and the migrations on a direct connection.

Behind a transaction pooler the app's URL cannot carry session state; the migrate step (and
``--plan``) then point the default alias at the direct URL for as long as they run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections

from entrypoint import log


@contextmanager
def direct_connection(alias: str, url: str) -> Iterator[None]:
    """Point ``alias`` at ENTRYPOINT_MIGRATE_DATABASE_URL for the block, then put it back.

    The alias keeps its name so that database routers and post_migrate handlers (content
    types, permissions) see the database they expect.
    """
    if not url:
        yield
        return
    import dj_database_url  # noqa: PLC0415

    # Its password is masked since the settings were read (cli.load_settings).
    parsed: dict[str, Any] = dict(dj_database_url.parse(url))
    original = connections.settings[alias]
    options = {**original.get("OPTIONS", {}), **parsed.pop("OPTIONS", {})}
    # The project's ENGINE stays (e.g. PostGIS): the URL only says where and as whom.
    parsed.pop("ENGINE", None)
    _swap(alias, {**original, **parsed, "OPTIONS": options})
    log.get().info(
        "migrate_direct_connection",
        alias=alias,
        host=parsed.get("HOST"),
        port=parsed.get("PORT"),
        name=parsed.get("NAME"),
        user=parsed.get("USER"),
    )
    try:
        yield
    finally:
        _swap(alias, original)


def _swap(alias: str, settings_dict: dict[str, Any]) -> None:
    connections[alias].close()
    connections.settings[alias] = settings_dict
    del connections[alias]  # the next access builds a wrapper from the new settings


def direct_url_for(alias: str, url: str) -> str:
    """ENTRYPOINT_MIGRATE_DATABASE_URL stands for the default database and no other."""
    return url if alias == DEFAULT_DB_ALIAS else ""
