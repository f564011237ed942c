"""The admin step and ``manage.py ensureadmin`` against a real PostgreSQL, run as subprocesses.

Schemas are prepared once per project with Django's own ``migrate`` into a template database;
each test gets a clone. Every line any process printed is kept in OUTPUT and searched for the
passwords by the last test of this module.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.cli import Result, base_env, finish, run_cli, run_django, start_cli
from tests.services import Postgres

PASSWORD = "correct-Horse-42"
NEW_PASSWORD = "rotated-Zebra-97"
WEAK_PASSWORD = "iloveyou"
FILE_PASSWORD = "file-Secret-58"
CUSTOM_PASSWORD = "custom-Pony-63"
CMD_PASSWORD = "command-Line-74"
PASSWORDS = (PASSWORD, NEW_PASSWORD, WEAK_PASSWORD, FILE_PASSWORD, CUSTOM_PASSWORD, CMD_PASSWORD)
OUTPUT: list[str] = []

DEFAULT_PROJECT = "testproj.admin_settings"
CUSTOM_PROJECT = "customproj.settings"


def record(result: Result) -> Result:
    OUTPUT.extend([result.stdout, result.stderr])
    return result


def run(env: dict[str, str], *args: str) -> Result:
    return record(run_cli(*args, env=env, timeout=90))


def manage(env: dict[str, str], *args: str) -> Result:
    return record(run_django("ensureadmin", *args, env=env, timeout=90))


def admin_env(url: str, project: str = DEFAULT_PROJECT, **changes: str | None) -> dict[str, str]:
    """The admin step alone on one database; a change of None removes the variable."""
    env = base_env(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE=project,
        ENTRYPOINT_STEPS="admin",
        DJANGO_ADMIN_USERNAME="boss",
        DJANGO_ADMIN_PASSWORD=PASSWORD,
        DJANGO_ADMIN_EMAIL="boss@example.org",
    )
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


class Db:
    def __init__(self, pg: Postgres, name: str) -> None:
        self.pg, self.name, self.url = pg, name, pg.url(name)

    def rows(self, sql: str) -> list[tuple[object, ...]]:
        return self.pg.execute(sql, self.name)

    def users(self, table: str = "auth_user") -> int:
        count = self.rows(f"SELECT count(*) FROM {table}")[0][0]
        assert isinstance(count, int)
        return count

    def admin(self) -> tuple[object, ...]:
        (row,) = self.rows(
            "SELECT password, last_login, is_superuser, is_staff, is_active, email "
            "FROM auth_user WHERE username = 'boss'"
        )
        return row


def migrate(pg: Postgres, project: str) -> str:
    name = pg.create_database()
    env = base_env(DATABASE_URL=pg.url(name), DJANGO_SETTINGS_MODULE=project)
    cmd = [sys.executable, "-m", "django", "migrate", "-v0"]
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=180)
    return name


@pytest.fixture(scope="module")
def templates(pg: Postgres) -> dict[str, str]:
    return {project: migrate(pg, project) for project in (DEFAULT_PROJECT, CUSTOM_PROJECT)}


@pytest.fixture
def clone(pg: Postgres, templates: dict[str, str]) -> Callable[[str], Db]:
    """A fresh database with the project's schema, copied from the migrated template."""

    def make(project: str = DEFAULT_PROJECT) -> Db:
        name = pg.create_database()
        pg.execute(f'DROP DATABASE "{name}"')
        pg.execute(f'CREATE DATABASE "{name}" TEMPLATE "{templates[project]}"')
        return Db(pg, name)

    return make


@pytest.fixture
def db(clone: Callable[[str], Db]) -> Db:
    return clone(DEFAULT_PROJECT)


def race(db: Db, env: dict[str, str], count: int, row: str) -> list[Result]:
    """``count`` replicas racing to create the admin: all exit 0, one creates it.

    An uncommitted ``row`` of ours (the admin's, as the user model stores it) makes every
    replica's INSERT wait on the unique index, so all of them really collide; rolling it back
    lets exactly one of them through, and the others re-read the winner's row.
    """
    with psycopg.connect(db.url) as blocker:
        blocker.execute(row.encode())
        procs = [start_cli(env=env) for _ in range(count)]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and any(p.poll() is None for p in procs):
            waiting = db.rows(
                "SELECT count(*) FROM pg_stat_activity "
                f"WHERE datname = '{db.name}' AND wait_event_type = 'Lock'"
            )[0][0]
            if waiting == count:
                break
            time.sleep(0.2)
        assert waiting == count, "the replicas never all blocked on the unique index"
        blocker.rollback()
    results = [record(finish(p, timeout=120)) for p in procs]
    assert [r.returncode for r in results] == [0] * count, [r.stderr for r in results]
    created = [r for r in results if r.named("admin_created")]
    raced = [r for r in results if r.named("admin_exists")]
    assert (len(created), len(raced)) == (1, count - 1)
    assert all(
        [e["created_concurrently"] for e in r.named("admin_exists")] == [True] for r in raced
    )
    return results


class TestDefaultUserModel:
    def test_create_then_second_run_changes_nothing(self, db: Db) -> None:
        """Created once as a superuser; later runs leave hash and last_login alone."""
        env = admin_env(db.url)
        first = run(env)
        assert first.returncode == 0, first.stderr
        assert first.named("admin_created")[0]["username"] == "boss"
        _, _, *flags, email = db.admin()
        assert flags == [True, True, True]
        assert email == "boss@example.org"

        db.rows("UPDATE auth_user SET last_login = '2020-01-02T03:04:05Z'")
        before = db.admin()
        second = run(env)
        assert second.returncode == 0, second.stderr
        assert second.named("admin_exists")[0]["update"] is False
        assert not second.named("admin_created")
        # With update on and the same password nothing is rewritten either: no new hash.
        third = run({**env, "ENTRYPOINT_ADMIN_UPDATE": "true"})
        assert third.returncode == 0, third.stderr
        assert third.named("admin_exists")[0]["changed"] == []
        assert db.admin() == before
        assert db.users() == 1

    def test_rotation_only_with_update(self, db: Db) -> None:
        """A new password from the secret is applied only with ENTRYPOINT_ADMIN_UPDATE=true."""
        assert run(admin_env(db.url)).returncode == 0
        old_hash = db.admin()[0]
        ignored = run(admin_env(db.url, DJANGO_ADMIN_PASSWORD=NEW_PASSWORD))
        assert ignored.returncode == 0, ignored.stderr
        assert ignored.named("admin_exists")
        assert db.admin()[0] == old_hash

        env = admin_env(db.url, DJANGO_ADMIN_PASSWORD=NEW_PASSWORD, ENTRYPOINT_ADMIN_UPDATE="true")
        rotated = run(env)
        assert rotated.returncode == 0, rotated.stderr
        assert rotated.named("admin_updated")[0]["changed"] == ["password"]
        assert db.admin()[0] != old_hash
        # The stored hash now verifies the new password: a further run finds nothing to do.
        again = run(env)
        assert again.named("admin_exists")[0]["changed"] == []

    def test_demoted_admin_restored_only_with_update(self, db: Db) -> None:
        """Flags and email come back only with update on; the password hash is kept."""
        assert run(admin_env(db.url)).returncode == 0
        db.rows(
            "UPDATE auth_user SET is_superuser = false, is_staff = false, is_active = false, "
            "email = 'old@example.org'"
        )
        left = run(admin_env(db.url))
        assert left.returncode == 0, left.stderr
        assert db.admin()[2:] == (False, False, False, "old@example.org")
        # Not a silent success: a warning names what is off and how to fix it.
        (warning,) = left.named("admin_not_active_superuser")
        assert warning["level"] == "warning"
        assert warning["flags_false"] == ["is_active", "is_staff", "is_superuser"]
        assert "ENTRYPOINT_ADMIN_UPDATE=true" in warning["hint"]

        before_hash = db.admin()[0]
        restored = run(admin_env(db.url, ENTRYPOINT_ADMIN_UPDATE="true"))
        assert restored.returncode == 0, restored.stderr
        changed = restored.named("admin_updated")[0]["changed"]
        assert sorted(changed) == ["email", "is_active", "is_staff", "is_superuser"]
        assert db.admin()[2:] == (True, True, True, "boss@example.org")
        assert db.admin()[0] == before_hash

    def test_weak_password_rejected_nothing_written(self, db: Db) -> None:
        """Validators reject a weak password with their messages: 78, no row, no new hash."""
        created = run(admin_env(db.url, DJANGO_ADMIN_PASSWORD=WEAK_PASSWORD))
        assert created.returncode == 78, created.stderr
        assert "too common" in created.last()["error"]
        assert db.users() == 0

        assert run(admin_env(db.url)).returncode == 0
        old_hash = db.admin()[0]
        env = admin_env(db.url, DJANGO_ADMIN_PASSWORD=WEAK_PASSWORD, ENTRYPOINT_ADMIN_UPDATE="true")
        rotated = run(env)
        assert rotated.returncode == 78, rotated.stderr
        assert rotated.last()["event"] == "config_invalid"
        assert db.admin()[0] == old_hash
        # No password is set when the admin exists and update is off: the validators do not run.
        left = run(admin_env(db.url, DJANGO_ADMIN_PASSWORD=WEAK_PASSWORD))
        assert left.returncode == 0, left.stderr
        assert left.named("admin_exists")
        assert db.admin()[0] == old_hash

    def test_tightened_validators_do_not_stop_a_running_admin(self, db: Db) -> None:
        """Created by a project without validators; once they are added, every later start
        with the same password is still 0, update on or off: nothing is set, nothing checked."""
        no_validators = admin_env(
            db.url, DJANGO_SETTINGS_MODULE="testproj.settings", DJANGO_ADMIN_PASSWORD=WEAK_PASSWORD
        )
        assert run(no_validators).returncode == 0
        stored = db.admin()
        for update in ("false", "true"):
            env = admin_env(
                db.url, DJANGO_ADMIN_PASSWORD=WEAK_PASSWORD, ENTRYPOINT_ADMIN_UPDATE=update
            )
            result = run(env)
            assert result.returncode == 0, result.stderr
            assert result.named("admin_exists")
        assert db.admin() == stored

    def test_login_django_normalises_is_found_again(self, db: Db) -> None:
        """A full-width login (NFKC: 'admin') is stored normalised and found on later starts."""
        env = admin_env(db.url, DJANGO_ADMIN_USERNAME="\uff41\uff44\uff4d\uff49\uff4e")
        first = run(env)
        assert first.returncode == 0, first.stderr
        (normalised,) = first.named("admin_username_normalised")
        assert (normalised["username"], normalised["configured"]) == (
            "admin",
            "\uff41\uff44\uff4d\uff49\uff4e",
        )
        for _ in range(2):
            again = run(env)
            assert again.returncode == 0, again.stderr
            assert again.named("admin_exists")
        assert db.rows("SELECT username FROM auth_user") == [("admin",)]

    def test_update_validates_the_email(self, db: Db) -> None:
        """An email creation would refuse is refused on update too, and nothing is saved."""
        assert run(admin_env(db.url)).returncode == 0
        before = db.admin()
        env = admin_env(db.url, DJANGO_ADMIN_EMAIL="not-an-email", ENTRYPOINT_ADMIN_UPDATE="true")
        result = run(env)
        assert result.returncode == 78
        assert "DJANGO_ADMIN_EMAIL='not-an-email' is invalid" in result.last()["error"]
        assert db.admin() == before

    def test_other_fields_of_the_model_are_set_at_creation(self, db: Db) -> None:
        """DJANGO_ADMIN_<FIELD> for a field outside REQUIRED_FIELDS: cleaned, then saved."""
        result = run(
            admin_env(db.url, DJANGO_ADMIN_FIRST_NAME="Ops", DJANGO_ADMIN_LAST_NAME="Team")
        )
        assert result.returncode == 0, result.stderr
        assert db.rows("SELECT first_name, last_name FROM auth_user") == [("Ops", "Team")]

    @pytest.mark.parametrize(
        ("variable", "error"),
        [
            (
                "DJANGO_ADMIN_EMIAL",
                "DJANGO_ADMIN_EMIAL is neither USERNAME, PASSWORD, EMAIL nor a field",
            ),
            ("DJANGO_ADMIN_IS_SUPERUSER", "DJANGO_ADMIN_IS_SUPERUSER cannot be set"),
            ("DJANGO_ADMIN_GROUPS", "DJANGO_ADMIN_GROUPS is neither"),
            ("DJANGO_SUPERUSER_NICKNAME", "DJANGO_ADMIN_NICKNAME is neither"),
        ],
    )
    def test_names_that_set_nothing_are_errors(self, db: Db, variable: str, error: str) -> None:
        """A typo or a field the entrypoint owns: 78 naming it, instead of being ignored."""
        result = run(admin_env(db.url, **{variable: "x@example.org"}))
        assert result.returncode == 78
        assert error in result.last()["error"]
        assert db.users() == 0

    @pytest.mark.parametrize(
        ("before", "after"),
        [("", "\n"), ("", ""), ("", "\r\n"), ("\ufeff", "\n")],
        ids=["LF", "bare", "CRLF", "BOM"],
    )
    def test_file_secret(self, db: Db, tmp_path: Path, before: str, after: str) -> None:
        """A mounted secret, with or without its trailing newline, written by a Windows editor
        (CRLF) or by Notepad (a byte-order mark first, with a warning), is the same password."""
        path = tmp_path / "password"
        path.write_bytes((before + FILE_PASSWORD + after).encode())
        env = admin_env(db.url, DJANGO_ADMIN_PASSWORD=None, DJANGO_ADMIN_PASSWORD_FILE=str(path))
        result = run(env)
        assert result.returncode == 0, result.stderr
        warned = [e["variable"] for e in result.named("secret_file_mark_removed")]
        assert warned == (["DJANGO_ADMIN_PASSWORD_FILE"] if before else [])
        # The plain variable with the bare value matches the stored hash: nothing to rotate.
        same = run(
            admin_env(db.url, DJANGO_ADMIN_PASSWORD=FILE_PASSWORD, ENTRYPOINT_ADMIN_UPDATE="1")
        )
        assert same.returncode == 0, same.stderr
        assert same.named("admin_exists")[0]["changed"] == []

    def test_both_forms_set(self, db: Db, tmp_path: Path) -> None:
        """Variable and _FILE twin together: 78 before any step starts, nothing written."""
        path = tmp_path / "password"
        path.write_text(FILE_PASSWORD)
        result = run(admin_env(db.url, DJANGO_ADMIN_PASSWORD_FILE=str(path)))
        assert result.returncode == 78
        assert "DJANGO_ADMIN_PASSWORD and DJANGO_ADMIN_PASSWORD_FILE" in result.last()["error"]
        assert not result.named("step_started")
        assert db.users() == 0

    def test_control_character_in_the_file_is_78_naming_it(self, db: Db, tmp_path: Path) -> None:
        """A password file with a second line: 78 before any step, the file named, never the
        content, nothing written."""
        path = tmp_path / "password"
        path.write_text(FILE_PASSWORD + "\nNext-Line-Value\n")
        env = admin_env(db.url, DJANGO_ADMIN_PASSWORD=None, DJANGO_ADMIN_PASSWORD_FILE=str(path))
        result = run(env)
        assert result.returncode == 78
        assert f"DJANGO_ADMIN_PASSWORD_FILE='{path}' holds a control" in result.last()["error"]
        assert FILE_PASSWORD not in result.stderr
        assert "Next-Line-Value" not in result.stderr
        assert not result.named("step_started")
        assert db.users() == 0

    def test_unreadable_file_names_the_path(self, db: Db, tmp_path: Path) -> None:
        """A missing secret file is a 78 naming the variable and the path."""
        missing = tmp_path / "not-mounted"
        env = admin_env(db.url, DJANGO_ADMIN_PASSWORD=None, DJANGO_ADMIN_PASSWORD_FILE=str(missing))
        result = run(env)
        assert result.returncode == 78
        assert str(missing) in result.last()["error"]
        assert db.users() == 0

    def test_superuser_fallback_names(self, db: Db) -> None:
        """Django's DJANGO_SUPERUSER_* names are enough on their own."""
        env = admin_env(
            db.url,
            DJANGO_ADMIN_USERNAME=None,
            DJANGO_ADMIN_PASSWORD=None,
            DJANGO_ADMIN_EMAIL=None,
            DJANGO_SUPERUSER_USERNAME="boss",
            DJANGO_SUPERUSER_PASSWORD=PASSWORD,
            DJANGO_SUPERUSER_EMAIL="su@example.org",
        )
        assert run(env).returncode == 0
        assert db.admin()[2:] == (True, True, True, "su@example.org")

    def test_no_username_skips(self, db: Db) -> None:
        """No username configured: an info event, exit 0, no user."""
        result = run(admin_env(db.url, DJANGO_ADMIN_USERNAME=None, DJANGO_ADMIN_PASSWORD=None))
        assert result.returncode == 0, result.stderr
        assert result.named("admin_skipped")[0]["reason"] == "no_username"
        assert db.users() == 0

    def test_username_without_password(self, db: Db) -> None:
        """A username without any password is a configuration error."""
        result = run(admin_env(db.url, DJANGO_ADMIN_PASSWORD=None))
        assert result.returncode == 78
        assert "DJANGO_ADMIN_PASSWORD_FILE" in result.last()["error"]

    def test_tables_missing(self, pg: Postgres) -> None:
        """An unmigrated database: 70 naming the missing table and what to do."""
        result = run(admin_env(pg.url(pg.create_database())))
        assert result.returncode == 70
        assert result.last()["event"] == "step_failed"
        assert "'auth_user'" in result.last()["error"]
        assert "migrat" in result.last()["error"]

    def test_auth_not_installed(self, pg: Postgres) -> None:
        """A project without django.contrib.auth: 70 naming the app."""
        result = run(admin_env(pg.url("postgres"), "testproj.noauth_settings"))
        assert result.returncode == 70
        assert "django.contrib.auth is not in INSTALLED_APPS" in result.last()["error"]

    def test_ten_processes_at_once(self, db: Db) -> None:
        """Ten replicas racing on the unique constraint: one user, one creator, all exit 0."""
        row = (
            "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name,"
            " email, is_staff, is_active, date_joined)"
            " VALUES ('!', false, 'boss', '', '', '', false, true, now())"
        )
        race(db, admin_env(db.url), 10, row)
        assert db.users() == 1
        assert db.admin()[2:5] == (True, True, True)

    def test_routers_choose_the_database(self, clone: Callable[[str], Db]) -> None:
        """The user model's db_for_write wins; it must be among ENTRYPOINT_DATABASES."""
        default, other = clone(DEFAULT_PROJECT), clone(DEFAULT_PROJECT)
        routed = {"OTHER_DATABASE_URL": other.url, "AUTH_DATABASE": "other"}
        refused = run(admin_env(default.url, ENTRYPOINT_STEPS="wait,admin", **routed))
        assert refused.returncode == 78
        assert "'other'" in refused.last()["error"]
        assert "ENTRYPOINT_DATABASES" in refused.last()["error"]
        assert not refused.named("step_started")  # found before any step ran

        result = run(admin_env(default.url, ENTRYPOINT_DATABASES="default,other", **routed))
        assert result.returncode == 0, result.stderr
        assert result.named("admin_created")[0]["database"] == "other"
        assert (default.users(), other.users()) == (0, 1)


class TestSeedCheckedBeforeAnyStep:
    @pytest.mark.parametrize(
        ("changes", "error"),
        [
            ({"DJANGO_ADMIN_USERNAME": "no spaces allowed"}, "DJANGO_ADMIN_USERNAME='no spaces"),
            ({"DJANGO_ADMIN_USERNAME": "x" * 151}, "at most 150 characters"),
            ({"DJANGO_ADMIN_EMIAL": "boss@example.org"}, "DJANGO_ADMIN_EMIAL is neither"),
        ],
    )
    def test_bad_seed_exits_78_with_nothing_migrated(
        self, pg: Postgres, changes: dict[str, str], error: str
    ) -> None:
        """All three steps on an empty database: the seed fails first, no table is created."""
        name = pg.create_database()
        env = admin_env(pg.url(name), ENTRYPOINT_STEPS="wait,migrate,admin", **changes)
        result = run(env)
        assert result.returncode == 78, result.stderr
        assert error in result.last()["error"]
        assert not result.named("step_started")
        assert pg.execute("SELECT to_regclass('django_migrations')", name) == [(None,)]


class TestCustomUserModel:
    @pytest.fixture
    def db(self, clone: Callable[[str], Db]) -> Db:
        return clone(CUSTOM_PROJECT)

    def env(self, db: Db, **changes: str | None) -> dict[str, str]:
        seed: dict[str, str | None] = {
            "DJANGO_ADMIN_USERNAME": "root@example.org",
            "DJANGO_ADMIN_PASSWORD": CUSTOM_PASSWORD,
            "DJANGO_ADMIN_EMAIL": None,
            "DJANGO_ADMIN_DISPLAY_NAME": "Root",
        }
        return admin_env(db.url, CUSTOM_PROJECT, **{**seed, **changes})

    def test_email_as_username_with_a_required_field(self, db: Db) -> None:
        """Looked up by USERNAME_FIELD, REQUIRED_FIELDS supplied, created by the manager."""
        created = run(self.env(db))
        assert created.returncode == 0, created.stderr
        assert created.named("admin_created")[0]["model"] == "accounts.User"
        rows = db.rows("SELECT email, display_name, is_superuser, is_staff FROM accounts_user")
        assert rows == [("root@example.org", "Root", True, True)]
        db.rows("UPDATE accounts_user SET is_staff = false")
        again = run(self.env(db))
        assert again.named("admin_exists")
        restored = run(self.env(db, ENTRYPOINT_ADMIN_UPDATE="yes"))
        assert restored.returncode == 0, restored.stderr
        assert restored.named("admin_updated")[0]["changed"] == ["is_staff"]
        assert db.users("accounts_user") == 1

    def test_email_login_normalised_twice(self, db: Db) -> None:
        """The manager lower-cases the domain: the user is looked up as stored, every start."""
        env = self.env(db, DJANGO_ADMIN_USERNAME="Root@Example.ORG")
        first = run(env)
        assert first.returncode == 0, first.stderr
        assert first.named("admin_username_normalised")[0]["username"] == "Root@example.org"
        again = run(env)
        assert again.returncode == 0, again.stderr
        assert again.named("admin_exists")
        assert db.rows("SELECT email FROM accounts_user") == [("Root@example.org",)]

    def test_six_replicas_racing_on_a_normalised_login(self, db: Db) -> None:
        """The losers of the race re-read the winner's row by the stored value: all exit 0."""
        row = (
            "INSERT INTO accounts_user (password, is_superuser, email, display_name, is_staff,"
            " is_active) VALUES ('!', false, 'Root@example.org', '', false, true)"
        )
        race(db, self.env(db, DJANGO_ADMIN_USERNAME="Root@Example.ORG"), 6, row)
        assert db.users("accounts_user") == 1

    def test_missing_required_field(self, db: Db) -> None:
        """A REQUIRED_FIELDS entry without its variable: 78 naming DJANGO_ADMIN_<FIELD>."""
        result = run(self.env(db, DJANGO_ADMIN_DISPLAY_NAME=None))
        assert result.returncode == 78
        assert "DJANGO_ADMIN_DISPLAY_NAME is not set" in result.last()["error"]
        assert db.users("accounts_user") == 0

    def test_username_checked_by_the_field(self, db: Db) -> None:
        """The username is cleaned by the USERNAME_FIELD: not an email → 78."""
        result = run(self.env(db, DJANGO_ADMIN_USERNAME="root"))
        assert result.returncode == 78
        assert "DJANGO_ADMIN_USERNAME='root' is invalid" in result.last()["error"]
        assert db.users("accounts_user") == 0


class TestManagementCommand:
    def test_help_recommends_the_environment(self) -> None:
        """--help lists the seed's options and steers the password to a secret file."""
        result = manage(base_env(), "--help")
        assert result.returncode == 0
        help_text = " ".join(result.stdout.split())
        for option in ("--username", "--password", "--email", "--database"):
            assert option in help_text
        assert "DJANGO_ADMIN_PASSWORD_FILE" in help_text

    def test_options_override_the_environment(self, db: Db) -> None:
        """-u/-e/-p replace the variables; the same code path creates, then rotates. The
        command runs the admin step whatever ENTRYPOINT_STEPS says (here none)."""
        env = admin_env(db.url, DJANGO_SETTINGS_MODULE=DEFAULT_PROJECT, ENTRYPOINT_STEPS="none")
        created = manage(env, "-u", "cmd", "-e", "cmd@example.org", "-d", "default")
        assert created.returncode == 0, created.stderr
        assert created.named("admin_created")[0]["username"] == "cmd"
        assert db.rows("SELECT email FROM auth_user WHERE username = 'cmd'") == [
            ("cmd@example.org",)
        ]
        rotated = manage(
            {**env, "ENTRYPOINT_ADMIN_UPDATE": "true"}, "-u", "cmd", "-p", CMD_PASSWORD
        )
        assert rotated.returncode == 0, rotated.stderr
        # Without -e the email defaults to DJANGO_ADMIN_EMAIL again.
        assert rotated.named("admin_updated")[0]["changed"] == ["email", "password"]
        assert db.rows("SELECT email FROM auth_user WHERE username = 'cmd'") == [
            ("boss@example.org",)
        ]

    def test_username_option_takes_the_password_from_a_secret_file(
        self, db: Db, tmp_path: Path
    ) -> None:
        """-u alone: the password still comes from DJANGO_ADMIN_PASSWORD_FILE, as --help says."""
        secret = tmp_path / "password"
        secret.write_text(FILE_PASSWORD + "\n")
        env = admin_env(
            db.url,
            DJANGO_ADMIN_USERNAME=None,
            DJANGO_ADMIN_PASSWORD=None,
            DJANGO_ADMIN_PASSWORD_FILE=str(secret),
            ENTRYPOINT_ADMIN_UPDATE="true",
        )
        created = manage(env, "-u", "filed")
        assert created.returncode == 0, created.stderr
        assert created.named("admin_created")[0]["username"] == "filed"
        again = manage(env, "-u", "filed")
        # Update is on and nothing changed: the stored hash verifies the file's password.
        assert again.named("admin_exists")[0]["changed"] == []

    def test_weak_password_keeps_exit_code(self, db: Db) -> None:
        """Errors keep their documented exit codes under manage.py too."""
        result = manage(admin_env(db.url), "-p", WEAK_PASSWORD)
        assert result.returncode == 78
        assert db.users() == 0


def test_no_password_in_any_output() -> None:
    """Every line printed by every process above: none of the passwords used appears."""
    if not OUTPUT:
        pytest.skip("run together with the other tests of this module")
    text = "\n".join(OUTPUT)
    assert '"username": "boss"' in text  # the search runs over the real event stream
    for password in PASSWORDS:
        assert password not in text


@pytest.fixture(autouse=True, scope="module")
def _module_output() -> None:
    OUTPUT.clear()
