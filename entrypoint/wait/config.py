"""The wait step's settings (``WaitSettings``), read from its ENTRYPOINT_WAIT_* variables."""

from __future__ import annotations

from dataclasses import dataclass, field

from entrypoint.env_reader import Reader
from entrypoint.wait.services import Service, read_services

VARIABLES = frozenset(
    {
        "ENTRYPOINT_WAIT_TIMEOUT",
        "ENTRYPOINT_WAIT_STABLE",
        "ENTRYPOINT_WAIT_INTERVAL",
        "ENTRYPOINT_WAIT_FOR",
        "ENTRYPOINT_WAIT_SERVICES",
    }
)


@dataclass(frozen=True)
class WaitSettings:
    timeout: float = 180.0
    stable: float = 5.0
    interval: float = 1.0
    until: str = "connection"  # or "migrations": also until none is pending
    services: tuple[Service, ...] = field(default=(), repr=False)


def read(reader: Reader) -> WaitSettings:
    return WaitSettings(
        timeout=reader.number("ENTRYPOINT_WAIT_TIMEOUT", 180.0, allow_zero=False),
        stable=reader.number("ENTRYPOINT_WAIT_STABLE", 5.0, allow_zero=True),
        interval=reader.number("ENTRYPOINT_WAIT_INTERVAL", 1.0, allow_zero=False),
        until=reader.choice("ENTRYPOINT_WAIT_FOR", "connection", ("connection", "migrations")),
        services=read_services(reader),
    )
