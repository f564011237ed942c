"""PostgreSQL's table-level lock modes, named and ordered as its documentation does (table 13.2)."""

from __future__ import annotations

ACCESS_SHARE = "ACCESS SHARE"
ROW_SHARE = "ROW SHARE"
ROW_EXCLUSIVE = "ROW EXCLUSIVE"
SHARE_UPDATE_EXCLUSIVE = "SHARE UPDATE EXCLUSIVE"
SHARE = "SHARE"
SHARE_ROW_EXCLUSIVE = "SHARE ROW EXCLUSIVE"
EXCLUSIVE = "EXCLUSIVE"
ACCESS_EXCLUSIVE = "ACCESS EXCLUSIVE"

# Weakest first: a session holding several modes on one table is as strong as the last of them.
ORDER = (
    ACCESS_SHARE,
    ROW_SHARE,
    ROW_EXCLUSIVE,
    SHARE_UPDATE_EXCLUSIVE,
    SHARE,
    SHARE_ROW_EXCLUSIVE,
    EXCLUSIVE,
    ACCESS_EXCLUSIVE,
)
# pg_locks.mode spells them in CamelCase: ShareRowExclusiveLock is SHARE ROW EXCLUSIVE.
PG_LOCKS_NAMES = {"".join(w.capitalize() for w in m.split()) + "Lock": m for m in ORDER}


def strongest(modes: list[str]) -> str:
    return max(modes, key=ORDER.index)


def blocks_writes(mode: str) -> bool:
    """Whether the app's INSERT/UPDATE/DELETE (ROW EXCLUSIVE) wait for this mode.

    SHARE and stronger conflict with ROW EXCLUSIVE; ACCESS EXCLUSIVE also stops reads.
    """
    return ORDER.index(mode) >= ORDER.index(SHARE)
