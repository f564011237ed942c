"""One error hierarchy; each class carries its exit code and only ``cli.main`` maps it."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import MappingProxyType


class EntrypointError(Exception):
    """A failure with a documented exit code. ``str()`` says what is wrong and how to fix it.

    ``fields``: more fields for its event, beside ``error`` and ``exit_code``.
    """

    exit_code = 70
    event = "step_failed"
    fields: Mapping[str, object] = MappingProxyType({})


class ConfigError(EntrypointError):
    """Every configuration problem found, reported together.

    The message is bounded (10,000 bad targets must not make a 1 MB log line): at most
    MAX_LISTED problems, each cut at MAX_CHARS characters, then how many more there are.
    """

    exit_code = 78
    event = "config_invalid"
    MAX_LISTED = 20
    MAX_CHARS = 500

    def __init__(self, *problems: str) -> None:
        self.problems = problems
        shown = [
            p if len(p) <= self.MAX_CHARS else p[: self.MAX_CHARS - 3] + "..." for p in problems
        ]
        if len(shown) > self.MAX_LISTED:
            more = len(shown) - self.MAX_LISTED
            shown = [*shown[: self.MAX_LISTED], f"and {more} more problem{'s' * (more > 1)}"]
        super().__init__("; ".join(shown))


class PlanRefused(ConfigError):
    """The migration plan cannot be carried out as configured: nothing was changed."""

    event = "migration_plan_refused"


class MigrationGraphError(ConfigError):
    """The migrations on disk, or what the database records of them, make no plan: a missing
    dependency, an inconsistent history. Only a new image or a fixed record can cure it, so no
    retry: 78, naming the migrations and the fix."""

    event = "migration_graph_invalid"


class MigrationConflict(MigrationGraphError):
    """Several leaf migrations in one app: a merge migration is missing."""

    event = "migration_conflict"


class SchemaIncompatible(ConfigError):
    """The live schema does not serve this code (ENTRYPOINT_SCHEMA_CHECK=refuse): each problem
    named (model, table, column, bounded as every ConfigError's), then ``fix``."""

    event = "schema_incompatible"

    def __init__(self, alias: str, sentences: Sequence[str], fix: str, **fields: object) -> None:
        super().__init__(*sentences)
        listed = self.args[0]
        self.args = (f"the schema of database {alias!r} does not serve this code: {listed}; {fix}",)
        self.fields = {"alias": alias, **fields}


class DatabaseUnavailable(EntrypointError):
    exit_code = 69
    event = "db_unavailable_timeout"


class ReadOnlyDatabase(DatabaseUnavailable):
    """The server answers but takes no writes, and a step must write: not yet, since a
    failover may be finishing (69, so that a Job or a restart tries again)."""

    event = "db_read_only"
    ADVICE = (
        "read-only: a standby? A failover may still be finishing; otherwise point the alias "
        "at the primary (libpq's target_session_attrs=read-write picks it among several "
        "hosts), or lift the role's or the database's default_transaction_read_only"
    )

    def __init__(self, alias: str, why: str) -> None:
        super().__init__(f"database {alias!r}: the server is {why}; {self.ADVICE}")


class ServiceUnavailable(EntrypointError):
    """A service in ENTRYPOINT_WAIT_SERVICES was not ready within the wait's deadline."""

    exit_code = 69
    event = "service_unavailable_timeout"


class LockTimeout(EntrypointError):
    exit_code = 75
    event = "migration_lock_timeout"


class TableLockTimeout(EntrypointError):
    """A migration kept timing out on its table locks for ENTRYPOINT_MIGRATE_RETRY_TIMEOUT."""

    exit_code = 75
    event = "migration_lock_contention_timeout"


class StepFailed(EntrypointError):
    exit_code = 70
    event = "step_failed"


class LockLost(StepFailed):
    """The migration lock's connection went away: migrating on would be unprotected.

    ``migration`` and ``rolled_back`` (True, False, or None when unknown) say what became of
    the migration in flight, when there was one.
    """

    event = "migration_lock_lost"

    def __init__(self, message: str, **fields: object) -> None:
        super().__init__(message)
        self.fields = fields


class ConnectionLost(LockLost):
    """The migrating connection itself went away mid-migration (a network cut, a restart)."""

    event = "migration_connection_lost"


class MigrationAbandoned(BaseException):
    """Raised in the main thread when the lock is lost and the migration does not stop by
    itself (a sleep, a computation): a BaseException, so that no ``except Exception`` in a
    migration's code swallows it. ``error`` is the LockLost the guard raises in its place once
    the migration has unwound (exit 70)."""

    def __init__(self, error: LockLost) -> None:
        super().__init__(str(error))
        self.error = error


class MigrationFailed(StepFailed):
    event = "migration_failed"


class UsageError(EntrypointError):
    """Bad command-line usage of a management command, as argparse reports its own."""

    exit_code = 2
    event = "usage_error"


class ManageCommandFailed(StepFailed):
    event = "manage_command_failed"


class HookFailed(StepFailed):
    event = "hook_failed"


class CommandNotExecutable(EntrypointError):
    exit_code = 126
    event = "command_not_executable"


class CommandNotFound(EntrypointError):
    exit_code = 127
    event = "command_not_found"


class Interrupted(KeyboardInterrupt):
    """Raised from the SIGTERM/SIGINT handler.

    A BaseException so that no ``except Exception`` in Django or a driver swallows it: context
    managers still run, so an atomic migration rolls back and locks are released. It is a
    KeyboardInterrupt because psycopg cancels the running query only for that (and SystemExit):
    otherwise the connection stays busy, the rollback fails and the server keeps running the
    statement (a long ``pg_sleep`` or index build) after we exit.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(signal.Signals(signum).name)


# The first stop asked of this process (its signal number), and what to do when it comes: a
# stop is final, whatever the code that was running did with its Interrupted.
_stop: list[int] = []
_on_stop: list[Callable[[int], None]] = []


def _note_stop(signum: int) -> None:
    if not _stop:
        _stop.append(signum)
        for callback in _on_stop:
            callback(signum)


def _raise_interrupted(signum: int, _frame: object) -> None:
    _note_stop(signum)
    raise Interrupted(signum)


def stop_requested() -> Interrupted | None:
    """The Interrupted of the stop asked earlier (SIGTERM, SIGINT), even if the code it was
    raised in swallowed it (a bare ``except:``); None while no stop came."""
    return Interrupted(_stop[0]) if _stop else None


def refuse_if_stopped() -> None:
    """Raise the stop's Interrupted again: nothing more may start (a step, a commit, exec)."""
    stop = stop_requested()
    if stop is not None:
        raise stop


def raise_on_signals(on_stop: Callable[[int], None] | None = None) -> None:
    """Turn SIGTERM and SIGINT into ``Interrupted`` so cleanup runs and the exit code is 128+N;
    ``on_stop`` runs once, at the first of them.

    One our parent ignored (a shell's background job ignores SIGINT) stays ignored, for the
    steps and then for the server, as for a program started directly.
    """
    if on_stop is not None:
        _on_stop.append(on_stop)
    for signum in (signal.SIGTERM, signal.SIGINT):
        if signal.getsignal(signum) != signal.SIG_IGN:
            signal.signal(signum, _raise_interrupted)


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """SIGTERM or SIGINT inside the block raises ``Interrupted`` at its end, not in its middle.

    For starting a child we must stop on the way out: raised inside ``Popen``, after the fork
    and before it returns, the interrupt would leave us without the child's pid and the child
    running after we exit.
    """
    ours = [s for s in (signal.SIGTERM, signal.SIGINT) if signal.getsignal(s) is _raise_interrupted]
    if threading.current_thread() is not threading.main_thread():
        ours = []  # only the main thread has handlers, and only it gets the signals
    caught: list[int] = []

    def defer(number: int, _frame: object) -> None:
        _note_stop(number)
        caught.append(number)

    for signum in ours:
        signal.signal(signum, defer)
    try:
        yield
    finally:
        for signum in ours:
            signal.signal(signum, _raise_interrupted)
        if caught:
            raise Interrupted(caught[0])


def sqlstate_in(exc: BaseException, code: str) -> bool:
    """Whether PostgreSQL's SQLSTATE ``code`` is anywhere in ``exc``'s chain (cause, context):
    Django wraps the driver's error, and a rollback may raise over it."""
    current: BaseException | None = exc
    while current is not None:
        if getattr(current, "sqlstate", None) == code:
            return True
        current = current.__cause__ or current.__context__
    return False
