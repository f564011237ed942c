"""``django-entrypoint``: read the environment, run the steps, exec the server.

With the management commands, the only place that reads ``os.environ``; ``run_mapped`` is the
only place that maps errors to exit codes.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from functools import partial

from entrypoint import __version__, config, connection, env_reader, heartbeat, log
from entrypoint.config import Settings
from entrypoint.errors import EntrypointError, Interrupted, raise_on_signals, refuse_if_stopped

# What --help says after the options: every variable, every exit code.
HELP_EPILOG = """\
environment variables:
  DJANGO_SETTINGS_MODULE           settings module (required unless --settings is given)
  ENTRYPOINT_STEPS                 wait,migrate,admin,manage,hooks
                                                       comma list; 'none' or empty: no steps
  ENTRYPOINT_DATABASES             default              comma list of aliases, or 'all'
  ENTRYPOINT_WAIT_TIMEOUT          180                  seconds before giving up (> 0)
  ENTRYPOINT_WAIT_STABLE           5                    seconds each must keep answering once
                                                       seen down (up at once: a 2nd check)
  ENTRYPOINT_WAIT_INTERVAL         1                    seconds between checks (> 0)
                                   (seconds: ASCII digits, optional decimals, at most 31536000)
  ENTRYPOINT_WAIT_FOR              connection           or 'migrations': also wait for no pending
  ENTRYPOINT_WAIT_SERVICES         (empty)              URLs to wait for, comma or newline list:
                                                       tcp:// http(s):// redis(s):// amqp(s):// file://
  ENTRYPOINT_LOG_FORMAT            auto                 auto (JSON unless a TTY), json, console
  ENTRYPOINT_LOG_LEVEL             info                 debug, info, warning, error
  ENTRYPOINT_MIGRATE_TARGETS       (empty)              'app [migration]' per line or comma
  ENTRYPOINT_MIGRATE_LOCK_ID       (fixed hash)         advisory lock key (signed 64-bit)
  ENTRYPOINT_MIGRATE_LOCK_TIMEOUT  600                  seconds to wait for the lock (0: no wait)
  ENTRYPOINT_MIGRATE_LOCK_MODE     auto                 auto, session, none
  ENTRYPOINT_MIGRATE_DATABASE_URL  (empty)              direct DSN for lock and migrations
  ENTRYPOINT_MIGRATE_TABLE_LOCK_TIMEOUT  2              seconds a migration's statement waits
                                                       for a table lock, then retried (0: no limit)
  ENTRYPOINT_MIGRATE_RETRY_TIMEOUT 600                  seconds of such retries, then exit 75
  ENTRYPOINT_MIGRATE_PHASE         post                 pre: only what django-safemigrate
                                                       allows before the deploy; post: all
  ENTRYPOINT_MIGRATE_MAX_BLOCKING_ROWS  (unset)        refuse (78) a plan whose operation blocks
                                                       a table of more rows while it rewrites or
                                                       scans it (PostgreSQL)
  ENTRYPOINT_SCHEMA_CHECK          warn                 once migrated: warn, refuse (78) or off
                                                       when the live schema does not serve the
                                                       models (missing, unfillable, retyped)
  DJANGO_ADMIN_USERNAME / _PASSWORD / _EMAIL           the superuser to ensure (each also as
                                                       NAME_FILE: path of a mounted secret, a
                                                       regular file of at most 64 KiB); read
                                                       only when the admin step runs
  DJANGO_ADMIN_<FIELD>                                 another field of the user model
  DJANGO_SUPERUSER_USERNAME / _PASSWORD / _EMAIL       Django's own names, used as fallbacks
  ENTRYPOINT_ADMIN_UPDATE          false                true: bring an existing admin in line
  ENTRYPOINT_MANAGE                (empty)              management commands, one per line
  ENTRYPOINT_MANAGE_LOCKED         false                true: run them under the migration lock
  ENTRYPOINT_HOOKS_DIR             /etc/django-entrypoint/hooks.d
                                                       executables run in version order
  ENTRYPOINT_HOOK_TIMEOUT          300                  seconds each hook may run (> 0)
  ENTRYPOINT_HOOK                  (set for each hook)  in a hook's environment: its path (a
                                                       script's $0 is /proc/self/fd/N)
  ENTRYPOINT_HEARTBEAT_INTERVAL    30                   seconds between *_running events (0: off)
  ENTRYPOINT_DB_NETWORK_TIMEOUT    10                   seconds a silent database peer may take

exit codes:
  0 success, 2 usage, 69 database or service unavailable (wait timed out; a
  read-only server, a standby?, where migrations are pending),
  70 a step failed (migration, management command, hook),
  75 migration lock (or, after the retries, a table lock; or a connection slot, on a
  full server) not acquired in time,
  78 configuration error or a plan that cannot be carried out (irreversible
  rollback, blocked pre phase), or a live schema the code cannot serve,
  126 COMMAND not executable, 127 COMMAND not found, 128+N stopped by signal N (143
  SIGTERM): nothing commits or runs after it; stuck code ends 10 s later

COMMAND is exec'd with default signal dispositions; neither it nor the hooks get
DJANGO_ADMIN_PASSWORD, DJANGO_SUPERUSER_PASSWORD and ENTRYPOINT_MIGRATE_DATABASE_URL.
"""

# Seconds the code running at a stop has to return before the process ends by itself: more
# than a hook's own grace between SIGTERM and SIGKILL (5 s), well inside Kubernetes' 30 s.
STOP_GRACE = 10.0
DOCUMENTS = {
    "plan": "the migration plan (exit 0, or 78 when it cannot be carried out)",
    "status": "the lock and fence holders, pending and last applied migrations, whether the "
    "live schema serves this code (exit 0, or 69 naming a database that did not answer, or "
    "who held what its queries waited for); does not wait for the database (15 s at most an "
    "alias)",
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="django-entrypoint",
        description="Wait for the database and services, migrate under a lock, ensure an "
        "admin, run management commands and hooks, then exec COMMAND (or exit 0 without one).",
        epilog=HELP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--settings", metavar="MODULE", help="Django settings module")
    parser.add_argument("--steps", metavar="LIST", help="overrides ENTRYPOINT_STEPS")
    # A document on stdout, then exit: flags, so that a COMMAND named plan or status still runs.
    documents = parser.add_mutually_exclusive_group()
    for name, what in DOCUMENTS.items():
        documents.add_argument(
            f"--{name}", dest="document", action="store_const", const=name, help=f"print {what}"
        )
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND [ARGS...]")
    args = parser.parse_args(argv)
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    if args.document and args.command:
        parser.error(f"--{args.document} takes no COMMAND: it prints its document and exits")
    return args


def load_settings(**overrides: str | None) -> Settings:
    """The settings from the environment, with logging set up and every secret masked."""
    settings = config.load(os.environ, **overrides)
    log.configure(settings.log_format, settings.log_level, no_color=settings.no_color)
    miscased = env_reader.miscased(os.environ, ("ENTRYPOINT_", "DJANGO_ADMIN_"))
    if miscased:
        log.get().warning(
            "env_names_ignored",
            names=miscased,
            hint="variable names are case-sensitive: write them in upper case",
        )
    heartbeat.configure(settings.heartbeat_interval)
    if settings.admin:
        log.add_secrets([settings.admin.password])
    # Also when the admin step does not run (its seed is then not read): a management command
    # of the manage step could still print the variable.
    log.add_secrets(
        os.environ.get(n) for n in ("DJANGO_ADMIN_PASSWORD", "DJANGO_SUPERUSER_PASSWORD")
    )
    if settings.migrate.database_url:
        log.add_url_secrets(settings.migrate.database_url)
    return settings


def _run(args: argparse.Namespace) -> int:
    settings = load_settings(settings_module=args.settings, steps=args.steps)
    from entrypoint import capture, project, server  # noqa: PLC0415 - keep --help fast

    if args.command:
        server.resolve(args.command[0])
    with capture.output_as_events():  # a settings module may print or log too
        project.setup(settings.settings_module)
        connection.use_network_timeout(settings.db_network_timeout)
        aliases = project.resolve_aliases(settings.databases)
        if args.document:
            _print_document(settings, aliases, plan=args.document == "plan")
            return 0
        from entrypoint import steps  # noqa: PLC0415 - imports Django's migration machinery

        with capture.logging_as_events():
            steps.validate(settings, aliases)
            _collect_from_here()
            started = time.perf_counter()
            durations = steps.run_steps(settings, aliases)
    log.get().info(
        "startup_summary",
        steps=list(durations),
        durations_s=durations,
        total_s=round(time.perf_counter() - started, 3),
    )
    if args.command:
        refuse_if_stopped()  # a stop that the steps' code swallowed: never the server then
        server.exec_command(args.command, env=os.environ)
    return 0


def _print_document(settings: Settings, aliases: Sequence[str], *, plan: bool) -> None:
    """--plan or --status: one JSON document on stdout; no lock taken, nothing changed."""
    out, migrate = sys.__stdout__ or sys.stdout, settings.migrate
    if plan:
        from entrypoint.migrate import report  # noqa: PLC0415 - Django's migrations, if asked

        report.print_plan(aliases, migrate, out=out)
    else:
        from entrypoint.migrate import status  # noqa: PLC0415 - Django's migrations, if asked

        status.print_status(aliases, migrate, out=out)


def main(argv: Sequence[str] | None = None) -> int:
    # Until the steps run, start-up only allocates what lives until exec (modules, Django's
    # apps and models): the cyclic collector would walk it over and over for nothing, some
    # 40 ms of a 0.4 s steady-state start (docs/internals.md, Benchmarks).
    gc.disable()
    try:
        args = parse_args(argv)
        return run_mapped(partial(_run, args))
    finally:
        gc.enable()


def _collect_from_here() -> None:
    """The steps (a migration run renders thousands of model states) get the collector back,
    with everything start-up made frozen out of its way."""
    gc.freeze()
    gc.enable()


def _end_if_stuck(signum: int) -> None:
    """At the first SIGTERM or SIGINT: if the code running then (a migration's, a command's)
    does not return within STOP_GRACE seconds, the process ends by itself, 128+N; the server
    rolls back what was in flight (nothing commits after a stop: the migrations' guard)."""

    def end() -> None:
        code = 128 + signum
        log.get().error(
            "stop_forced",
            signal=signal.Signals(signum).name,
            waited_s=STOP_GRACE,
            exit_code=code,
            reason="the code running when the stop came did not return",
        )
        log.flush()
        os._exit(code)

    timer = threading.Timer(STOP_GRACE, end)
    timer.daemon = True  # a process that ends in time is not held by it
    timer.start()


def run_mapped(run: Callable[[], int]) -> int:
    """Run ``run`` and map every way it can end to one event and a documented exit code.

    The one place that does this: the CLI and the management commands both go through it.
    """
    raise_on_signals(on_stop=_end_if_stuck)
    # Defaults, so that a bad ENTRYPOINT_LOG_* is still reported as an event.
    log.configure(no_color=config.no_color(os.environ))
    try:
        return run()
    except Interrupted as exc:
        log.get().warning("interrupted", signal=str(exc), exit_code=exc.exit_code)
        return exc.exit_code
    except EntrypointError as exc:
        log.get().error(exc.event, error=str(exc), exit_code=exc.exit_code, **exc.fields)
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - one clear event instead of a bare traceback
        log.get().error(
            "unexpected_error", error_type=type(exc).__name__, error=str(exc), exit_code=70
        )
        log.get().debug("traceback", traceback=traceback.format_exc())
        return 70
    finally:
        log.flush()


if __name__ == "__main__":
    sys.exit(main())
