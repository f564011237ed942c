"""What a lost connection leaves of the migration in flight: the error the step reports.

``rolled_back`` is what the server does with it: an atomic migration's transaction never
commits without its client (the server rolls it back at once after a cancel, or when it drops
the session, within the network timeout); a non-atomic one's statements stay; and if the
connection went while the commit was on its way, only django_migrations can tell.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from entrypoint.errors import ConnectionLost, LockLost
from entrypoint.migrate.plan.graph import label

if TYPE_CHECKING:
    from django.db.migrations.migration import Migration


def lost_error(
    current: tuple[Migration, bool] | None,
    *,
    lock: bool,
    committing: bool,
    can_rollback_ddl: bool = True,
) -> LockLost:
    """``lock``: the lock's connection was lost (else the migrating connection itself)."""
    kind = LockLost if lock else ConnectionLost
    lost = (
        "the migration lock's connection was lost" if lock else "the migrating connection was lost"
    )
    if current is None:
        return kind(f"{lost} between migrations: stopped with nothing in flight; run again")
    migration, backwards = current
    what = label(migration) + (" (backwards)" if backwards else "")
    if committing:
        return kind(
            f"{lost} while {what} committed: whether the commit reached the server shows in "
            "django_migrations (its record commits with it); run again",
            migration=label(migration),
            rolled_back=None,
        )
    if migration.atomic and can_rollback_ddl:
        return kind(
            f"{lost} while {what} ran: nothing of it was committed, it is rolled back on the "
            "server (at once after a cancel, or when the server drops the session); run again",
            migration=label(migration),
            rolled_back=True,
        )
    return kind(
        f"{lost} while {what} ran; its statements that ran before that stay (it is not "
        "atomic, or the database cannot roll back DDL): make it re-runnable, then run again",
        migration=label(migration),
        rolled_back=False,
    )
