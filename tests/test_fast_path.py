"""The file-level fast path: a steady-state start lists the migration files without importing
them; anything it cannot decide from names (a new file, a squash not recorded, targets, a
missing migrations package) takes the full path through Django's graph."""

from __future__ import annotations

import os
import pkgutil
from pathlib import Path

import pytest

from entrypoint.migrate.plan.files import _plain_sources, module_names
from tests.cli import Result, migrate_env, run_cli
from tests.services import Postgres
from tests.watch import Running, applied, is_event, recorded

SETTINGS = """\
import os
import pkgutil
import sys

from migproj.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "fastapp"]  # noqa: F405
if os.environ.get("FASTAPP_MIGRATIONS"):
    MIGRATION_MODULES = {"fastapp": os.environ["FASTAPP_MIGRATIONS"]}
    if MIGRATION_MODULES["fastapp"] == "None":  # migrations disabled for the app
        MIGRATION_MODULES["fastapp"] = None


class NoteParserImport:
    \"\"\"Notes the import of PostgreSQL's parser (the lock analysis), as migrations note theirs.\"\"\"

    def find_spec(self, name, path=None, target=None):
        if name == "pglast":
            with open(os.environ["FASTAPP_IMPORTS"], "a") as imports:
                imports.write(name + "\\n")


sys.meta_path.insert(0, NoteParserImport())
"""
# Each migration module notes its import, so that a test sees which modules a start imported.
HEADER = """\
import os
import pkgutil

from django.db import migrations, models

with open(os.environ["FASTAPP_IMPORTS"], "a") as imports:
    imports.write(__name__ + "\\n")

"""
INITIAL = (
    HEADER
    + """\
class Migration(migrations.Migration):
    initial = True
    operations = [
        migrations.CreateModel("Thing", [("id", models.AutoField(primary_key=True))]),
    ]
"""
)
FIELD = (
    HEADER
    + """\
class Migration(migrations.Migration):
    dependencies = [("fastapp", "{previous}")]
    operations = [migrations.AddField("thing", "{field}", models.IntegerField(default=0))]
"""
)
SQUASH = (
    HEADER
    + """\
class Migration(migrations.Migration):
    replaces = [{replaces}]
    initial = True
    operations = [
        migrations.CreateModel(
            "Thing",
            [("id", models.AutoField(primary_key=True)), {fields}],
        ),
    ]
"""
)


class Project:
    """migproj plus ``fastapp``, whose migration files a test adds while starts come and go."""

    def __init__(self, root: Path, pg: Postgres) -> None:
        self.root = root
        self.pg = pg
        self.db = pg.create_database()
        self.url = pg.url(self.db)
        self.imports = root / "imports.log"
        (root / "fastproj").mkdir()
        (root / "fastproj" / "__init__.py").write_text("")
        (root / "fastproj" / "settings.py").write_text(SETTINGS)
        (root / "fastapp").mkdir()
        (root / "fastapp" / "__init__.py").write_text("")
        self.package("fastapp.migrations")
        self.write("0001_initial", INITIAL)

    def package(self, dotted: str) -> Path:
        path = self.root.joinpath(*dotted.split("."))
        path.mkdir(parents=True, exist_ok=True)
        for parent in [path, *path.relative_to(self.root).parents][:-1]:
            init = self.root / parent / "__init__.py" if parent != path else path / "__init__.py"
            init.touch()
        return path

    def write(self, name: str, text: str, package: str = "fastapp.migrations") -> None:
        (self.package(package) / f"{name}.py").write_text(text)

    def add_field(self, number: int, previous: str, package: str = "fastapp.migrations") -> str:
        name = f"{number:04d}_f{number}"
        self.write(name, FIELD.format(previous=previous, field=f"f{number}"), package)
        return name

    def env(self, **extra: str) -> dict[str, str]:
        extra = {"FASTAPP_IMPORTS": str(self.imports), **extra}
        env = migrate_env(self.url, DJANGO_SETTINGS_MODULE="fastproj.settings", **extra)
        env["PYTHONPATH"] = os.pathsep.join([str(self.root), env["PYTHONPATH"]])
        return env

    def run(self, **extra: str) -> Result:
        self.imports.write_text("")
        return run_cli(env=self.env(**extra))

    def start(self, **extra: str) -> Result:
        result = self.run(**extra)
        assert result.returncode == 0, result.stderr
        return result

    def imported(self) -> list[str]:
        return self.imports.read_text().split()


# Long enough for a waiter started once it runs to reach the lock on a loaded machine (3 s,
# then 10 s, were not: clean-clone runs' waiters found it applied already).
SLOW = (
    HEADER
    + """\
class Migration(migrations.Migration):
    dependencies = [("fastapp", "{previous}")]
    operations = [migrations.RunSQL("SELECT pg_sleep(20)", migrations.RunSQL.noop)]
"""
)


def checked(result: Result) -> str | None:
    """How the start found nothing to do: "files" (fast path) or "graph"; None: it migrated."""
    done = result.named("migrations_up_to_date")
    return done[0]["checked"] if done else None


@pytest.fixture
def project(tmp_path: Path, pg: Postgres) -> Project:
    return Project(tmp_path, pg)


def test_steady_state_imports_no_migration_module(project: Project) -> None:
    """Every file recorded: up to date from the file names; no migration module imported."""
    project.add_field(2, "0001_initial")
    first = project.start()
    assert ("fastapp", "0002_f2") in applied(first)
    assert "fastapp.migrations.0002_f2" in project.imported()
    again = project.start()
    assert checked(again) == "files"
    assert project.imported() == []
    assert not again.named("migration_lock_acquired")


def test_a_waiter_on_new_files_imports_no_migration(project: Project) -> None:
    """New files while another replica applies them: the waiter waits for the lock before
    it builds the graph, finds every file recorded once the holder is done, and ends without
    the lock, having imported none of the migration modules, nor the lock analysis's parser
    (pglast, ~45 ms a replica: what a fleet of waiters would take from the holder's CPU)."""
    project.start()
    project.write("0002_slow", SLOW.format(previous="0001_initial"))
    project.imports.write_text("")
    holder = Running(env=project.env(ENTRYPOINT_LOG_LEVEL="debug"))
    holder.wait_for(is_event("migration_started", app="fastapp", name="0002_slow"))
    waiter_imports = project.root / "waiter-imports.log"
    waiter_imports.write_text("")
    waiter = Running(env=project.env(FASTAPP_IMPORTS=str(waiter_imports)))
    waiter.wait_for(is_event("migration_lock_waiting"))
    first, second = holder.finish(), waiter.finish()
    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    assert applied(first) == [("fastapp", "0002_slow")]
    assert "pglast" in project.imported()  # the holder analysed its plan
    assert second.named("migration_lock_wait_ended")
    assert not second.named("migration_lock_acquired")
    assert checked(second) == "files"
    assert waiter_imports.read_text() == ""


def test_the_wait_for_migrations_reads_the_names_only(project: Project) -> None:
    """ENTRYPOINT_WAIT_FOR=migrations asks again and again whether anything is pending: on an
    up-to-date database the names answer, no migration module imported; a new file is
    pending (a wait that ends at its deadline, 69)."""
    project.add_field(2, "0001_initial")
    project.start()
    wait = {"ENTRYPOINT_STEPS": "wait", "ENTRYPOINT_WAIT_FOR": "migrations"}
    done = project.run(**wait, ENTRYPOINT_WAIT_TIMEOUT="30")
    assert done.returncode == 0, done.stderr
    assert project.imported() == []
    project.add_field(3, "0002_f2")
    pending = project.run(**wait, ENTRYPOINT_WAIT_TIMEOUT="2")
    assert pending.returncode == 69, pending.stderr
    assert "migrations_pending" in pending.last()["error"]


def test_a_new_file_is_applied_on_the_next_start(project: Project) -> None:
    project.start()
    project.add_field(2, "0001_initial")
    result = project.start()
    assert applied(result) == [("fastapp", "0002_f2")]
    assert checked(project.start()) == "files"


def test_a_squash_half_applied_takes_the_graph(project: Project) -> None:
    """0001 recorded, then 0002 and a squash of both arrive: 0002 is applied (not the squash,
    which is only partly applied), and the squash is recorded once all it replaces are."""
    project.start()
    project.add_field(2, "0001_initial")
    project.write(
        "0001_squashed_0002_f2",
        SQUASH.format(
            replaces='("fastapp", "0001_initial"), ("fastapp", "0002_f2")',
            fields='("f2", models.IntegerField(default=0))',
        ),
    )
    result = project.start()
    assert applied(result) == [("fastapp", "0002_f2")]
    assert ("fastapp", "0001_squashed_0002_f2") in recorded(project.pg, project.db)
    assert checked(project.start()) == "files"


def test_a_squash_of_applied_migrations_is_recorded_once(project: Project) -> None:
    """A squash shipped after all it replaces were applied: nothing to apply, but it is
    recorded (under the lock, as Django's migrate does), so that later starts take the fast
    path instead of the graph forever."""
    project.add_field(2, "0001_initial")
    project.start()
    project.write(
        "0001_squashed_0002_f2",
        SQUASH.format(
            replaces='("fastapp", "0001_initial"), ("fastapp", "0002_f2")',
            fields='("f2", models.IntegerField(default=0))',
        ),
    )
    result = project.start()
    assert checked(result) == "graph"
    assert not applied(result)
    assert not result.named("migrations_unknown_applied")
    assert result.named("migration_squash_recorded")[0]["migrations"] == [
        "fastapp.0001_squashed_0002_f2"
    ]
    assert checked(project.start()) == "files"


def test_targets_take_the_graph(project: Project) -> None:
    """A named migration needs the graph; an app to its latest does not."""
    project.add_field(2, "0001_initial")
    project.start()
    assert checked(project.start(ENTRYPOINT_MIGRATE_TARGETS="fastapp 0002_f2")) == "graph"
    assert checked(project.start(ENTRYPOINT_MIGRATE_TARGETS="fastapp")) == "files"


def test_migration_modules_pointing_elsewhere(project: Project) -> None:
    """MIGRATION_MODULES is honoured: the other package's new file is applied, although the
    app's own migrations package is fully recorded."""
    project.start()
    project.write("0001_initial", INITIAL, package="elsewhere.fastapp")
    project.add_field(2, "0001_initial", package="elsewhere.fastapp")
    result = project.start(FASTAPP_MIGRATIONS="elsewhere.fastapp")
    assert applied(result) == [("fastapp", "0002_f2")]
    assert checked(project.start(FASTAPP_MIGRATIONS="elsewhere.fastapp")) == "files"


@pytest.mark.parametrize("missing", ["nowhere.migrations", "fastproj.migrations"])
def test_missing_migrations_package_takes_the_graph(project: Project, missing: str) -> None:
    """MIGRATION_MODULES naming a package that does not exist (also one named "migrations"
    in a package that does, which an app's default would skip): the fast path does not
    decide, the full path reports it as it always did."""
    project.start()
    result = project.run(FASTAPP_MIGRATIONS=missing)
    assert result.returncode == 70, result.stderr
    assert missing.split(".", maxsplit=1)[0] in result.last()["error"]
    assert not result.named("migrations_up_to_date")


@pytest.mark.parametrize("where", ["None", "namespace", "module"])
def test_an_app_the_loader_skips_is_skipped_from_the_files(project: Project, where: str) -> None:
    """Migrations disabled (MIGRATION_MODULES None), a namespace package (no __init__.py: its
    files are not migrations to Django) and a migrations.py module: the app has no migrations,
    and the fast path decides as the loader does."""
    module = {"None": "None", "namespace": "nsmigrations", "module": "modmigrations"}[where]
    (project.root / "nsmigrations").mkdir()
    (project.root / "nsmigrations" / "0001_initial.py").write_text(INITIAL)
    (project.root / "modmigrations.py").write_text("")
    project.start(FASTAPP_MIGRATIONS=module)
    assert checked(project.start(FASTAPP_MIGRATIONS=module)) == "files"


def test_a_recorded_migration_missing_on_disk_is_reported(project: Project) -> None:
    """An older image on a newer database: the graph says why a rollback cannot work."""
    project.add_field(2, "0001_initial")
    project.start()
    (project.root / "fastapp" / "migrations" / "0002_f2.py").unlink()
    result = project.start()
    assert checked(result) == "graph"
    assert result.named("migrations_unknown_applied")[0]["migrations"] == ["fastapp.0002_f2"]


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["0003_c.pyc"],  # a sourceless module beside the sources
        ["0004_pkg/__init__.py"],  # a package: not a migration
        ["0005_dir/readme.txt"],  # a plain directory
        [".hidden", "notes.txt", "a.b.py"],
        ["0001_a.pyc"],  # bytecode shadowed by its source
    ],
)
@pytest.mark.parametrize("pycache", [True, False], ids=["pycache", "no-pycache"])
def test_module_names_are_the_loaders(tmp_path: Path, extra: list[str], pycache: bool) -> None:
    """The quick directory read gives exactly the names pkgutil gives the loader."""
    for name in ["__init__.py", "0001_a.py", "0002_b.py", "_private.py", "~backup.py", *extra]:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    if pycache:
        (tmp_path / "__pycache__").mkdir()
    loader = {
        n for _, n, pkg in pkgutil.iter_modules([str(tmp_path)]) if not pkg and n[0] not in "_~"
    }
    assert module_names([str(tmp_path)]) == loader
    if not extra:  # plain sources: read by the quick path itself, not handed to pkgutil
        assert _plain_sources(str(tmp_path)) == loader
