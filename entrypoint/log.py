"""Event-style structured logs on stderr: JSON lines, or a console renderer on a TTY.

Every event is scrubbed of the registered secrets, then what a project, a management command
or a hook printed (captured as events by capture.py) is capped: each text field of such an
event holds at most MAX_FIELD bytes (UTF-8), so a megabyte printed at once cannot flood the
log pipeline. The cap runs after the scrubber: a cut made first could split a secret and
leave half of it unmasked.
"""

from __future__ import annotations

import io
import logging
import re
import sys
import urllib.parse
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
# The events that carry what a project printed, and how much of it each text field holds.
CAPTURED = frozenset(
    {"django_output", "django_log", "manage_output", "manage_stderr", "hook_output"}
)
TEXT_FIELDS = ("line", "message", "exception")
MAX_FIELD = 8192
MAX_LINE = 4 * MAX_FIELD  # a line without end is dropped past this as it is written
KEEP_END = frozenset({"exception"})  # a traceback's last lines name the error: keep those

_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
# Captured lines kept back while the secrets that could be in them are not known yet.
_held: list[tuple[LogStream, str, bool]] | None = None


def add_secrets(values: Iterable[str | None]) -> None:
    """Register values that must never be printed (passwords); every log field is scrubbed.

    Each is scrubbed in every form a program prints it in, any mix of them character by
    character: raw; percent-encoded (``quote``, ``quote_plus``, either hex case: a DSN printed
    by a migration carries the password encoded); escaped as Python's ``repr``, ``str`` of a
    container, ``ascii()`` and ``unicode_escape`` write it, and the ``repr`` of its UTF-8
    bytes; JSON-escaped, with and without ``ensure_ascii`` (a settings module printing
    ``DATABASES``). Values shorter than 3 characters are ignored: scrubbing them would blank
    ordinary words.
    """
    global _pattern  # noqa: PLW0603 - one registry per process, as logging itself
    _secrets.update(v for v in values if v and len(v) >= 3)
    if _secrets:
        # Longest first, so that a whole DSN wins over the password inside it.
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(_any_form(secret) for secret in ordered))


def add_url_secrets(url: str) -> None:
    """Register a DSN (``postgres://user:password@host/db``): the whole URL and its password."""
    try:
        password = urllib.parse.urlsplit(url).password
    except ValueError:  # a malformed port or host: still hide the URL itself
        password = None
    add_secrets([url, urllib.parse.unquote(password) if password else None])


# What a backslash escape writes for these characters, besides its \x, \u and \U forms:
# repr and JSON escape the quotes and the backslash; JSON may escape "/" too.
_NAMED_ESCAPES = {"\n": "n", "\r": "r", "\t": "t", "\b": "b", "\f": "f"}
_SELF_ESCAPED = "\\'\"/"


def _hex(value: int, digits: int) -> str:
    """``value`` as hex digits, matched in either case."""
    return re.sub("[a-f]", lambda m: f"[{m[0]}{m[0].upper()}]", f"{value:0{digits}x}")


def _any_form(secret: str) -> str:
    """A regex matching ``secret`` with each of its characters in any of its printed forms."""
    return "".join(f"(?:{'|'.join(_char_forms(char))})" for char in secret)


def _char_forms(char: str) -> list[str]:
    """One character's forms as regexes, longest first: an escaped or encoded form must win
    over a raw "%" or "\\" that only starts it."""
    code, utf8 = ord(char), char.encode()
    escape = re.escape("\\")
    forms = ["".join(f"%{_hex(byte, 2)}" for byte in utf8)]  # quote, quote_plus
    if code >= 0x10000:  # JSON with ensure_ascii writes a surrogate pair
        high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
        forms.append(f"{escape}u{_hex(high, 4)}{escape}u{_hex(low, 4)}")
    forms.append(f"{escape}U{_hex(code, 8)}")  # ascii(), repr
    if code < 0x10000:
        forms.append(f"{escape}u{_hex(code, 4)}")  # ascii(), JSON
    if code < 0x100:
        forms.append(f"{escape}x{_hex(code, 2)}")  # repr, ascii()
    if code >= 0x80:  # repr of the UTF-8 bytes
        forms.append("".join(f"{escape}x{_hex(byte, 2)}" for byte in utf8))
    if char in _NAMED_ESCAPES:
        forms.append(escape + _NAMED_ESCAPES[char])
    if char in _SELF_ESCAPED:
        forms.append(escape + re.escape(char))
    if char == " ":
        forms.append(r"\+")  # quote_plus
    forms.append(re.escape(char))
    return sorted(forms, key=len, reverse=True)


def scrub(text: str) -> str:
    return _pattern.sub(REDACTED, text) if _pattern else text


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {key: _scrub_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub_value(item) for item in value]
    return value


# Our own vocabulary, never a secret: a short password ("con") must not mangle the event name.
STRUCTURAL = frozenset({"event", "level", "timestamp", "step", "alias"})


def _scrub_event(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # Last line of defence: a driver or Django message may quote a DSN or password.
    if _pattern:
        for key, value in event.items():
            if key not in STRUCTURAL:
                event[key] = _scrub_value(value)
    return event


def cap_event(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A captured event's text fields cut to MAX_FIELD bytes (see the module's doc)."""
    if event.get("event") not in CAPTURED:
        return event
    for key in TEXT_FIELDS:
        value = event.get(key)
        # Four bytes a character at most: a shorter string cannot be over the limit.
        if isinstance(value, str) and len(value) > MAX_FIELD // 4:
            raw = value.encode()
            if len(raw) > MAX_FIELD:
                cut = raw[-MAX_FIELD:] if key in KEEP_END else raw[:MAX_FIELD]
                event[key] = cut.decode(errors="ignore")  # never half a character
                event["truncated"] = True
    return event


def configure(fmt: str = "auto", level: str = "info", *, no_color: bool = False) -> None:
    """JSON lines, or the console rendering (``auto``: on a terminal); colours only on a
    terminal, and never with ``no_color`` (the NO_COLOR convention, https://no-color.org)."""
    # The real stderr if it is captured (capture.py): events must not feed on themselves.
    out = sys.__stderr__ if isinstance(sys.stderr, LogStream) else sys.stderr
    terminal = out is not None and out.isatty()
    json = fmt == "json" or (fmt == "auto" and not terminal)
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=terminal and not no_color)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _scrub_event,
            cap_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(out),
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


@contextmanager
def holding_output() -> Iterator[None]:
    """Lines captured in the block (LogStream) are emitted when it ends, not as written.

    A settings module prints as it is imported, before its ``DATABASES`` passwords can be
    registered: held back, its lines meet the scrubber once they are.
    """
    global _held  # noqa: PLW0603 - one registry per process, as the secrets
    _held = []
    try:
        yield
    finally:
        held, _held = _held, None
        for stream, line, truncated in held:
            stream.emit(line, truncated=truncated)


def flush() -> None:
    sys.stdout.flush()
    sys.stderr.flush()


# A progress bar redraws its line after a bare \r: each state is a line, not one endless line.
LINE_END = re.compile(r"\r\n?|\n")


class LogStream(io.TextIOBase):
    """A text stream that turns each line written to it into an event.

    Django commands and third-party code print to stdout; inside the steps that output would
    break the JSON stream, so it is captured as ``django_output`` events instead.
    """

    def __init__(self, event: str = "django_output", stream: str = "stdout") -> None:
        self._event = event
        self._stream = stream
        self._buffer = ""
        self._dropping = False

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        written = len(text)
        if self._dropping:  # the rest of an overlong line: the event has its first part already
            end = LINE_END.search(text)
            if end is None:
                return written
            text = text[end.end() :]
            self._dropping = False
        self._buffer += text
        *lines, self._buffer = LINE_END.split(self._buffer)
        for line in lines:
            self.emit(line)
        if len(self._buffer) > MAX_LINE:  # a line without end (no newline): bound memory
            self.emit(self._buffer[:MAX_LINE], truncated=True)
            self._buffer, self._dropping = "", True
        return written

    def flush(self) -> None:
        self.emit(self._buffer)
        self._buffer = ""

    def emit(self, line: str, *, truncated: bool = False) -> None:
        if _held is not None:
            _held.append((self, line, truncated))
        elif line.strip():
            extra = {"truncated": True} if truncated else {}
            get().info(self._event, line=line.rstrip(), stream=self._stream, **extra)
