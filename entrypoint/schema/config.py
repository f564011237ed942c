"""ENTRYPOINT_SCHEMA_CHECK: what a start does when the live schema does not serve this code."""

from __future__ import annotations

from entrypoint.env_reader import Reader

VARIABLE = "ENTRYPOINT_SCHEMA_CHECK"
WARN, REFUSE, OFF = "warn", "refuse", "off"
MODES = (WARN, REFUSE, OFF)


def read(reader: Reader) -> str:
    return reader.choice(VARIABLE, WARN, MODES)
