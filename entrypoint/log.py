"""Event-style structured logs on stderr: JSON lines, or a console renderer on a TTY."""

from __future__ import annotations

import io
import logging
import sys
import warnings
from collections.abc import Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import structlog

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
REDACTED = "***"

_secrets: set[str] = set()


def add_secrets(values: Iterable[str | None]) -> None:
    """Register values that must never be printed (passwords); every log field is scrubbed."""
    _secrets.update(v for v in values if v and len(v) >= 3)


def scrub(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def _scrub_event(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # Last line of defence: a driver or Django message may quote a DSN or password.
    if _secrets:
        for key, value in event.items():
            if isinstance(value, str):
                event[key] = scrub(value)
    return event


def configure(fmt: str = "auto", level: str = "info") -> None:
    json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _scrub_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


Logger = structlog.typing.FilteringBoundLogger


def get() -> Logger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger("entrypoint")
    return logger


@contextmanager
def warnings_as_events() -> Iterator[None]:
    """Python warnings (a naive datetime in a data migration...) become events, not raw lines."""
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        yield


def _show_warning(  # noqa: PLR0913, PLR0917 - the signature of warnings.showwarning
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,
    line: str | None = None,
) -> None:
    del file, line
    get().warning(
        "python_warning",
        category=category.__name__,
        message=str(message),
        location=f"{filename}:{lineno}",
    )


def flush() -> None:
    sys.stdout.flush()
    sys.stderr.flush()


class LogStream(io.TextIOBase):
    """A text stream that turns each line written to it into an event.

    Django commands and third-party code print to stdout; inside the steps that output would
    break the JSON stream, so it is captured as ``django_output`` events instead.
    """

    def __init__(self, event: str = "django_output") -> None:
        self._event = event
        self._buffer = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._buffer += text
        *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            if line.strip():
                get().info(self._event, line=line.rstrip())
        return len(text)

    def flush(self) -> None:
        if self._buffer.strip():
            get().info(self._event, line=self._buffer.rstrip())
        self._buffer = ""
