"""The supported Python and Django combinations, and the tests each one runs.

scripts/test runs the whole suite on the default combination (the system's python3 with the Django
LTS) and the tests selected here (``-m django``) on other supported combinations whose interpreter
it finds: ``python -m tests.matrix`` prints one ``PYTHON DJANGO INTERPRETER`` line per combination
to run and names each one it leaves out on stderr. By default those are the combinations that
cover every supported Python and every supported Django line (``covering``), which keeps CI on a
2-core machine within its budget; ``DJANGO_ENTRYPOINT_TEST_MATRIX=full`` runs every combination
(.github/workflows/ci.yml does).

The selection is the tests whose outcome depends on Django's own APIs: the migration executor and
its signals, the management commands, the user model and password validators, settings loading,
a request served through gunicorn. Timing, signal and lock-backend tests that Django does not
touch run on the default combination only, which keeps CI within its budget.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

# Django 6.x needs Python 3.12+; 3.11 is kept with the LTS while it works.
SUPPORTED = {
    "3.11": ("5.2",),
    "3.12": ("5.2", "6.0", "6.1"),
    "3.13": ("5.2", "6.0", "6.1"),
}
DEFAULT_DJANGO = "5.2"

# Node-id prefixes of the Django-dependent tests; tests/test_matrix.py checks each still names
# at least one test, so a renamed test cannot drop out silently.
DJANGO_DEPENDENT = (
    "tests/test_lockedmigrate.py",
    # Not test_demo_serves_the_admin: scripts/demo installs into the default combination's
    # .venv, which the main run uses at the same time.
    "tests/test_demo.py::test_demo_secret_key_is_random_per_data_directory",
    "tests/test_demo.py::test_example_placeholder_passwords_are_refused",
    "tests/test_log.py",
    "tests/test_migrate.py::test_up_to_date_database_takes_no_lock",
    "tests/test_migrate.py::test_target_",
    "tests/test_migrate.py::test_invalid_targets_exit_78_before_any_ddl",
    "tests/test_migrate.py::test_sigterm_rolls_back_the_running_migration",
    "tests/test_migrate.py::test_every_alias_is_migrated_under_its_own_lock",
    "tests/test_migrate.py::test_graph_errors_are_refused_naming_the_fix",
    "tests/test_migrate.py::test_system_checks_run_once_per_process",
    "tests/test_migrate.py::test_backward_then_forward_in_one_run",
    "tests/test_migrate.py::test_inconsistent_history_is_refused",
    "tests/test_migrate.py::test_migrations_unknown_to_this_code_are_reported",
    "tests/test_migrate_backends.py::test_mariadb_get_lock_eight_replicas",
    "tests/test_migrate_backends.py::test_sqlite_file_lock_five_replicas",
    "tests/test_admin.py::TestDefaultUserModel::test_create_then_second_run_changes_nothing",
    "tests/test_admin.py::TestDefaultUserModel::test_rotation_only_with_update",
    "tests/test_admin.py::TestDefaultUserModel::test_login_django_normalises_is_found_again",
    "tests/test_admin.py::TestDefaultUserModel::test_tables_missing",
    "tests/test_admin.py::TestDefaultUserModel::test_auth_not_installed",
    "tests/test_admin.py::TestDefaultUserModel::test_routers_choose_the_database",
    "tests/test_admin.py::TestCustomUserModel",
    "tests/test_admin.py::TestManagementCommand",
    "tests/test_wait.py::TestWaitForMigrations",
    "tests/test_wait.py::TestWait4dbCommand",
    "tests/test_exec.py::TestProjectDiscovery",
    "tests/test_exec.py::TestSettingsErrors",
    "tests/test_admin.py::TestSeedCheckedBeforeAnyStep",
    "tests/test_fence.py::test_lock_session_terminated_mid_data_migration",
    "tests/test_fence.py::test_barrier_waits_for_whoever_holds_the_fence",
    "tests/test_fence.py::test_record_commits_with_the_migrations_own_work",
    "tests/test_traffic.py::test_alter_behind_a_long_transaction_never_stalls_the_app",
    "tests/test_traffic.py::test_data_migration_queries_obey_the_timeout",
    "tests/test_manage.py",
    "tests/test_heartbeat.py::test_slow_migration_reports_while_it_runs",
    "tests/test_preflight.py",
    "tests/test_plan_json.py",
    "tests/test_risk_plan.py",  # the SQL each Django version writes
    "tests/test_phases.py",
    "tests/test_status.py::TestReadOnly",
    "tests/test_status.py::TestWhileAReplicaMigrates::test_management_command_is_the_same_document",
    "tests/test_services.py::TestWait4dbCommand",
    # What each Django line creates: contrib's models, AddField dropping its default, db_default.
    "tests/test_schema.py::test_fresh_project_with_contrib_apps_and_a_custom_user_is_compatible",
    "tests/test_schema.py::TestRollbackOntoANewerSchema::test_status_names_the_column_v1_cannot",
    "tests/test_schema.py::test_nullable_db_default_and_database_filled_columns_keep_v1_working",
)
MARKER = "django"


def selected(nodeid: str) -> bool:
    return nodeid.startswith(DJANGO_DEPENDENT)


def selects_file(relative: str) -> bool:
    """Whether a test module holds selected tests (the others are not even imported, so the
    matrix venvs need no image or chart tooling)."""
    return any(prefix.split("::")[0] == relative for prefix in DJANGO_DEPENDENT)


def _version_of(executable: str) -> str | None:
    try:
        proc = subprocess.run(
            [executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _pyenv_candidates(version: str) -> Iterable[str]:
    pyenv = shutil.which("pyenv")
    if not pyenv:
        return
    proc = subprocess.run(
        [pyenv, "versions", "--bare"], capture_output=True, text=True, timeout=30, check=False
    )
    builds = [b for b in proc.stdout.split() if b.startswith(f"{version}.")]
    for build in sorted(builds, key=lambda b: [int(p) for p in b.split(".") if p.isdigit()])[::-1]:
        prefix = subprocess.run(
            [pyenv, "prefix", build], capture_output=True, text=True, timeout=30, check=False
        ).stdout.strip()
        if prefix:
            yield str(Path(prefix) / "bin" / "python3")


def find_interpreter(version: str) -> str | None:
    """python3.X on PATH, or a pyenv build of 3.X; only one that really runs as 3.X counts (a
    pyenv shim on PATH refuses to run without PYENV_VERSION)."""
    candidates = [*_pyenv_candidates(version), shutil.which(f"python{version}")]
    return next((c for c in candidates if c and _version_of(c) == version), None)


def _version(text: str) -> tuple[int, ...]:
    return tuple(map(int, text.split(".")))


def covering(default_python: str) -> set[tuple[str, str]]:
    """The fewest combinations that, with the default one, run every supported Python and every
    Django line: each other Python with the newest line it supports that no run has yet, and a
    line left over on the newest Python that supports it."""
    lines_left = sorted(
        {d for ds in SUPPORTED.values() for d in ds} - {DEFAULT_DJANGO}, key=_version
    )
    chosen: set[tuple[str, str]] = set()
    for python in sorted(set(SUPPORTED) - {default_python}, key=_version, reverse=True):
        fresh = [d for d in SUPPORTED[python] if d in lines_left]
        line = max(fresh or SUPPORTED[python], key=_version)
        chosen.add((python, line))
        lines_left = [d for d in lines_left if d != line]
    for line in lines_left:
        python = max((p for p in SUPPORTED if line in SUPPORTED[p]), key=_version)
        chosen.add((python, line))
    return chosen


def plan(
    default_python: str, *, full: bool = False
) -> tuple[list[tuple[str, str, str]], list[str]]:
    runs: list[tuple[str, str, str]] = []
    skipped: list[str] = []
    chosen = covering(default_python)
    for python, lines in SUPPORTED.items():
        interpreter = sys.executable if python == default_python else find_interpreter(python)
        for django in lines:
            if (python, django) == (default_python, DEFAULT_DJANGO):
                continue
            if not full and (python, django) not in chosen:
                skipped.append(
                    f"py{python} django{django}: left out by default, every Python and every "
                    "Django line is covered (DJANGO_ENTRYPOINT_TEST_MATRIX=full runs it)"
                )
            elif interpreter is None:
                skipped.append(f"py{python} django{django}: no Python {python} found")
            else:
                runs.append((python, django, interpreter))
    return runs, skipped


def main() -> int:
    default = "%d.%d" % sys.version_info[:2]  # noqa: UP031 - one short format
    if default not in SUPPORTED:
        print(f"python3 is {default}: supported are {', '.join(SUPPORTED)}", file=sys.stderr)
        return 1
    runs, skipped = plan(default, full=os.environ.get("DJANGO_ENTRYPOINT_TEST_MATRIX") == "full")
    for python, django, interpreter in runs:
        print(python, django, interpreter)
    for line in skipped:
        print(f"SKIPPED {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
