"""``manage.py lockedmigrate``: Django's migrate options, run by the migrate step's code."""

from __future__ import annotations

import dataclasses
from argparse import ArgumentParser
from contextlib import redirect_stdout
from typing import Any

from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS

from entrypoint import log, project, steps
from entrypoint.config import Settings
from entrypoint.errors import ConfigError, UsageError
from entrypoint.management.base import StepCommand
from entrypoint.migrate import report
from entrypoint.migrate import step as migrate
from entrypoint.migrate.config import LOCK_ID_RANGE, MigrateSettings, Target, lock_id_in_range
from entrypoint.migrate.plan.graph import check_targets

ARGUMENTS = "the app_label/migration_name arguments"


class Command(StepCommand):
    help = (
        "Migrate under a cross-process lock so that any number of replicas apply each migration "
        "once (exit 75 when the lock is not acquired within ENTRYPOINT_MIGRATE_LOCK_TIMEOUT)."
    )
    requires_system_checks = ()  # run once, by the shared code, as migrate does

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("app_label", nargs="?", help="only this app (and its dependencies)")
        parser.add_argument("migration_name", nargs="?", help="its target: a name, prefix or zero")
        parser.add_argument("--noinput", "--no-input", action="store_false", dest="interactive")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="database alias")
        parser.add_argument("--fake", action="store_true", help="record without running")
        parser.add_argument("--fake-initial", action="store_true", help="as migrate --fake-initial")
        parser.add_argument("--plan", action="store_true", help="log the plan; take no lock")
        parser.add_argument(
            "--format",
            choices=("text", "json"),
            default="text",
            help="with --plan: json prints one JSON document on stdout (exit 78 if refused)",
        )
        parser.add_argument("--run-syncdb", action="store_true", help="as migrate --run-syncdb")
        parser.add_argument(
            "--check",
            action="store_true",
            dest="check_unapplied",
            help="exit 1 when migrations are pending; take no lock",
        )
        parser.add_argument("--prune", action="store_true", help="as migrate --prune")
        parser.add_argument("-L", "--lock-id", type=int, help="advisory lock key (signed 64-bit)")
        parser.add_argument("--skip-checks", action="store_true", help="skip system checks")

    def run_step(self, settings: Settings, options: dict[str, Any]) -> None:
        lock_id = options["lock_id"]
        if lock_id is not None and not lock_id_in_range(lock_id):
            raise ConfigError(
                f"lockedmigrate -L/--lock-id {lock_id} is invalid: expected {LOCK_ID_RANGE}"
            )
        if options["prune"] and not options["app_label"]:
            # What migrate says, as a usage error before any lock or database.
            raise UsageError("--prune needs an app_label: lockedmigrate APP --prune")
        (alias,) = project.resolve_aliases((options["database"],), "--database")
        if options["app_label"] and not options["run_syncdb"]:
            # --run-syncdb takes apps *without* migrations
            _check_arguments(((options["app_label"], options["migration_name"]),))
        settings = dataclasses.replace(settings, migrate=_folded(settings.migrate, options))
        with redirect_stdout(log.LogStream()):
            if not options["skip_checks"]:
                migrate.run_checks((alias,), lock_timeout=settings.migrate.lock_timeout)
            if options["plan"] and options["format"] == "json":
                report.print_plan((alias,), settings.migrate, out=self.stdout)
            elif options["plan"] or options["check_unapplied"]:
                _report_plan(alias, settings.migrate, check=options["check_unapplied"])
            elif options["prune"] or options["run_syncdb"]:
                # Rare options: Django's own migrate does them, under our lock.
                migrate.run_locked(alias, settings.migrate, lambda: _django_migrate(alias, options))
            else:
                migrate.migrate_database(alias, settings.migrate)
                if not options["app_label"]:  # one app migrated: the others may lag on purpose
                    steps.check_schema(settings, (alias,))


def _folded(settings: MigrateSettings, options: dict[str, Any]) -> MigrateSettings:
    """The command's options folded into the step's settings, once: what every part reads."""
    app = options["app_label"]
    return dataclasses.replace(
        settings,
        targets=((app, options["migration_name"]),) if app else settings.targets,
        lock_id=settings.lock_id if options["lock_id"] is None else options["lock_id"],
        all_apps=not app,  # one app named: only it (and its dependencies), as migrate APP
        fake=options["fake"],
        fake_initial=options["fake_initial"],
    )


def _check_arguments(targets: tuple[Target, ...]) -> None:
    """Bad positional arguments are a usage error (2) naming them, before any lock."""
    try:
        check_targets(targets, all_apps=False, source=ARGUMENTS)
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc


def _report_plan(alias: str, settings: MigrateSettings, *, check: bool) -> None:
    doc = report.document((alias,), settings)
    plan = doc["databases"][alias]["plan"]
    if doc["destructive"]:  # first: what cannot be undone by migrating back
        log.get().warning(
            "migrations_destructive",
            alias=alias,
            operations=[f"{d['migration']}: {d['description']}" for d in doc["destructive"]],
        )
    for position, step in enumerate(plan, 1):
        log.get().info(
            "migration_planned",
            alias=alias,
            app=step["app"],
            name=step["name"],
            backwards=step["backwards"],
            phase=step["phase"],
            position=f"{position}/{len(plan)}",
        )
    report.refuse(doc)
    if not plan:
        migrate.finished(alias, migrate.Outcome(0, locked=False, checked="graph"))
    elif check:
        log.get().warning("migrations_pending", alias=alias, count=len(plan))
        raise SystemExit(1)  # what migrate --check exits with


def _django_migrate(alias: str, options: dict[str, Any]) -> None:
    positional = [options[k] for k in ("app_label", "migration_name") if options[k]]
    call_command(
        "migrate",
        *positional,
        database=alias,
        interactive=False,
        fake=options["fake"],
        fake_initial=options["fake_initial"],
        run_syncdb=options["run_syncdb"],
        prune=options["prune"],
        skip_checks=True,
        verbosity=options["verbosity"],
        stdout=log.LogStream(),
    )
