"""What a lost connection leaves of the migration in flight: the error the step reports.

``rolled_back`` is what the server does with it: a migration run in one transaction never
commits without its client (the server rolls it back at once after a cancel, or when it drops
the session); a non-atomic one's statements stay, and so does each DDL statement on MySQL,
where only a data migration runs in one transaction; and if the connection went while the
commit was on its way, only django_migrations can tell.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from entrypoint.errors import ConnectionLost, LockLost
from entrypoint.migrate.naming import label

if TYPE_CHECKING:
    from django.db.migrations.migration import Migration


def lost_error(
    current: tuple[Migration, bool] | None,
    *,
    lock: bool,
    committing: bool,
    transactional: bool = True,
) -> LockLost:
    """``lock``: the lock's connection was lost (else the migrating connection itself);
    ``transactional``: the migration runs in one transaction (``preflight.one_transaction``)."""
    kind = LockLost if lock else ConnectionLost
    lost = (
        "the migration lock's connection was lost" if lock else "the migrating connection was lost"
    )
    if current is None:
        return kind(f"{lost} between migrations: stopped with nothing in flight; run again")
    migration, backwards = current
    what = label(migration) + (" (backwards)" if backwards else "")
    if committing and transactional:
        return kind(
            f"{lost} while {what} committed: whether the commit reached the server shows in "
            "django_migrations (its record commits with it); run again",
            migration=label(migration),
            rolled_back=None,
        )
    if transactional:
        return kind(
            f"{lost} while {what} ran: nothing of it was committed, it is rolled back on the "
            "server (at once after a cancel, or when the server drops the session); run again",
            migration=label(migration),
            rolled_back=True,
        )
    return kind(
        f"{lost} while {what} ran; its statements that ran before that stay (it is not "
        "atomic, or it changes the schema on a database whose DDL commits by itself): check "
        "which of may_have_run reached the database, undo them, or finish them and record the "
        "migration with lockedmigrate --fake; then run again",
        migration=label(migration),
        rolled_back=False,
        may_have_run=[op.describe() for op in migration.operations],
    )
