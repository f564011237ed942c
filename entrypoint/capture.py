"""While the steps run, whatever Django and the project print or log becomes an event.

A raw line on stderr breaks the JSON stream, and it passes the secret scrubber by. So, until the
block ends, ``sys.stdout``/``sys.stderr`` writes are ``django_output`` events and the records
that the project's console handlers would print are ``django_log`` events. Then everything is
put back as it was: the server exec'd next (or the code after a management command) logs its own
way.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from entrypoint import log


class CapturedStream(log.LogStream):
    """Lines become events until ``release``; then writes go to the stream it stands in for.

    A logging handler created while it was ``sys.stderr`` (during ``django.setup()``) keeps a
    reference to it, and must print normally once the steps are over.
    """

    def __init__(self, name: str, target: TextIO) -> None:
        super().__init__(stream=name)
        self.target = target
        self._released = False

    def write(self, text: str) -> int:
        if self._released:
            return self.target.write(text)
        return super().write(text)

    def flush(self) -> None:
        if self._released:
            self.target.flush()
        else:
            super().flush()

    def release(self) -> None:
        super().flush()
        self._released = True


@contextmanager
def output_as_events() -> Iterator[None]:
    """``sys.stdout``, ``sys.stderr`` and Python warnings as events, for the block."""
    out = CapturedStream("stdout", sys.stdout)
    err = CapturedStream("stderr", sys.stderr)
    sys.stdout, sys.stderr = out, err
    try:
        with log.warnings_as_events():
            yield
    finally:
        for stream in (out, err):
            stream.release()
        sys.stdout, sys.stderr = out.target, err.target


class EventHandler(logging.Handler):
    """Emits each record as a ``django_log`` event, in place of a console handler.

    It keeps that handler's level and filters (Django's ``require_debug_true`` on its console
    handler, say), so what is shown is what the project would have printed, as events.
    """

    def __init__(
        self, replaced: logging.Handler | None = None, level: int = logging.NOTSET
    ) -> None:
        super().__init__(replaced.level if replaced else level)
        if replaced:
            self.filters = list(replaced.filters)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields = {"logger": record.name, "message": record.getMessage()}
            if record.exc_info:
                fields["exception"] = logging.Formatter().formatException(record.exc_info)
            # structlog knows the standard levels only: a custom one (25) counts as the one below.
            level = min(max(record.levelno // 10 * 10, logging.DEBUG), logging.CRITICAL)
            log.get().log(level, "django_log", **fields)
        except Exception:  # noqa: BLE001 - logging's own convention: report, never raise
            self.handleError(record)


def _prints_to_console(handler: logging.Handler) -> bool:
    if not isinstance(handler, logging.StreamHandler) or isinstance(handler, logging.FileHandler):
        return False
    stream = handler.stream
    consoles = (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
    if isinstance(stream, log.LogStream) or any(stream is c for c in consoles):
        return True
    try:
        return stream.fileno() in (1, 2)
    except (AttributeError, OSError, ValueError):  # not backed by a file descriptor
        return False


def _loggers() -> list[logging.Logger]:
    known = logging.Logger.manager.loggerDict.values()
    return [logging.getLogger(), *(x for x in known if isinstance(x, logging.Logger))]


@contextmanager
def logging_as_events() -> Iterator[None]:
    """Console handlers of every logger replaced by event handlers, for the block.

    File, mail and other handlers are left alone: they do not write to our stream.
    """
    swapped: list[tuple[logging.Logger, logging.Handler, EventHandler]] = []
    for logger in _loggers():
        for index, handler in enumerate(logger.handlers):
            if _prints_to_console(handler):
                logger.handlers[index] = replacement = EventHandler(handler)
                swapped.append((logger, handler, replacement))
    # Records no handler takes (a library logging a warning in a project without LOGGING).
    last_resort, logging.lastResort = logging.lastResort, EventHandler(level=logging.WARNING)
    try:
        yield
    finally:
        logging.lastResort = last_resort
        for logger, handler, replacement in swapped:
            if replacement in logger.handlers:
                logger.handlers[logger.handlers.index(replacement)] = handler
