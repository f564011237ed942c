"""How much of what a project prints one event may carry: a structlog processor.

What a project, a management command or a hook prints becomes events (capture.py); each text
field of such an event holds at most MAX_FIELD bytes (UTF-8), so a megabyte printed at once
cannot flood the log pipeline. It runs after the scrubber: a cut made first could split a
secret and leave half of it unmasked.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

CAPTURED = frozenset(
    {"django_output", "django_log", "manage_output", "manage_stderr", "hook_output"}
)
TEXT_FIELDS = ("line", "message", "exception")
MAX_FIELD = 8192
MAX_LINE = 4 * MAX_FIELD  # a line without end is dropped past this as it is written
KEEP_END = frozenset({"exception"})  # a traceback's last lines name the error: keep those


def cap_event(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
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
