"""--status and manage.py entrypointstatus: a stuck deploy's questions, answered read-only."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.cli import Result, base_env, entrypoint_cmd, migrate_env, run_cli, run_django
from tests.services import MariaDB, PgBouncer, Postgres, free_port
from tests.watch import Running, advisory_locks, is_event, sleeping_on_server

SLOW = "shop.0002_order_slow"
HOST = socket.gethostname()
CONNECT_TIMEOUT = 5  # entrypoint.migrate.status.CONNECT_TIMEOUT
READ_BUDGET = 10  # entrypoint.migrate.status.READ_BUDGET


def status(url: str, *args: str, **extra: str) -> tuple[Result, dict[str, Any]]:
    result = run_cli("--status", *args, env=migrate_env(url, **extra), timeout=60)
    return result, json.loads(result.stdout)


def default_of(doc: dict[str, Any]) -> dict[str, Any]:
    report: dict[str, Any] = doc["databases"]["default"]
    return report


def slow_replica(url: str) -> Running:
    """A replica inside shop 0002, which sleeps on the server while holding lock and fence:
    20 s, since a --status started beside it on a loaded machine once read after a 12 s one."""
    replica = Running(
        env=migrate_env(url, SLOW_MIGRATION_SECONDS="20", ENTRYPOINT_LOG_LEVEL="debug")
    )
    replica.wait_for(is_event("migration_started", app="shop", name="0002_order_slow"))
    return replica


def assert_migrating(report: dict[str, Any], replica: Running, *, via_pooler: bool) -> None:
    """The holder named with its host name and pid; the fence held by its migrating session."""
    assert report["reachable"] is True
    lock, fence = report["lock"], report["fence"]
    assert lock["held"] is True
    name = f"django-entrypoint migrate {HOST} pid={replica.proc.pid}"[:63]
    assert lock["holder"]["application_name"] == name
    assert lock["holder"]["client_addr"] == "127.0.0.1"
    assert isinstance(lock["holder"]["pid"], int)
    assert lock["holder"]["since"]
    assert fence["held"] is True
    assert fence["holder"]["application_name"].startswith(f"django-entrypoint migrating {HOST}")
    assert fence["holder"]["state"] == "active"  # the pg_sleep of the migration
    if not via_pooler:  # behind the pooler both sessions are server connections of PgBouncer
        assert fence["holder"]["pid"] != lock["holder"]["pid"]
    assert report["pending"][:2] == [SLOW, "shop.0003_seed"]
    assert report["last_applied"]["migration"] == "shop.0001_initial"


def assert_done(report: dict[str, Any]) -> None:
    assert report["lock"] == {"held": False, "holder": None}
    assert report["fence"] == {"held": False, "holder": None}
    assert report["pending"] == []
    assert report["last_applied"]["migration"] == "shop.0003_seed"


class TestWhileAReplicaMigrates:
    def test_holder_pending_and_fence_then_released(self, pg: Postgres) -> None:
        db = pg.create_database()
        replica = slow_replica(pg.url(db))
        sleeping_on_server(pg)
        locks_before = sorted(advisory_locks(pg))
        result, doc = status(pg.url(db))
        assert result.returncode == 0, result.stderr
        assert_migrating(default_of(doc), replica, via_pooler=False)
        assert sorted(advisory_locks(pg)) == locks_before  # it took none
        assert replica.finish().returncode == 0
        result, doc = status(pg.url(db))
        assert result.returncode == 0, result.stderr
        assert_done(default_of(doc))

    def test_behind_pgbouncer_transaction_pooling(self, pg: Postgres, bouncer: PgBouncer) -> None:
        """pg_locks answers whichever server connection the pooler picks."""
        db = pg.create_database()
        url = pg.url(db, port=bouncer.port)
        replica = slow_replica(url)
        sleeping_on_server(pg)
        result, doc = status(url)
        assert result.returncode == 0, result.stderr
        assert_migrating(default_of(doc), replica, via_pooler=True)
        assert replica.finish().returncode == 0
        result, doc = status(url)
        assert result.returncode == 0, result.stderr
        assert_done(default_of(doc))

    def test_management_command_is_the_same_document(self, pg: Postgres) -> None:
        db = pg.create_database()
        replica = slow_replica(pg.url(db))
        sleeping_on_server(pg)
        result = run_django("entrypointstatus", env=migrate_env(pg.url(db)), timeout=60)
        assert result.returncode == 0, result.stderr
        assert_migrating(default_of(json.loads(result.stdout)), replica, via_pooler=False)
        assert replica.finish().returncode == 0

    def test_mariadb_is_used_lock(self, mariadb: MariaDB) -> None:
        db = mariadb.create_database()
        replica = slow_replica(mariadb.url(db))
        result, doc = status(mariadb.url(db))
        assert result.returncode == 0, result.stderr
        report = default_of(doc)
        assert report["lock"]["held"] is True
        lock_session = report["lock"]["holder"]["connection_id"]
        assert isinstance(lock_session, int)
        # The fence: held by the migrating session (another one) while shop 0002 runs.
        assert report["fence"]["held"] is True
        assert report["fence"]["holder"]["connection_id"] not in (None, lock_session)
        assert report["fence"]["holder"]["command"] == "Query"  # in SELECT SLEEP
        assert SLOW in report["pending"]
        assert replica.finish().returncode == 0
        _, doc = status(mariadb.url(db))
        assert default_of(doc)["lock"] == {"held": False, "holder": None}
        assert default_of(doc)["fence"] == {"held": False, "holder": None}
        assert default_of(doc)["pending"] == []

    def test_mariadb_replica_is_read_only(self, mariadb: MariaDB) -> None:
        """MariaDB with read_only on, as a replica runs: --status says so, the migrate step is
        69 at once (even for root, whose SUPER could write: a replica must not be written)."""
        url = mariadb.url(mariadb.create_database())
        import pymysql  # noqa: PLC0415 - the MariaDB tests' driver only

        admin = pymysql.connect(host="127.0.0.1", port=mariadb.port, user="root", autocommit=True)
        admin.cursor().execute("SET GLOBAL read_only = ON")
        try:
            result, doc = status(url)
            migrated = run_cli(env=migrate_env(url))
        finally:
            admin.cursor().execute("SET GLOBAL read_only = OFF")
            admin.close()
        assert result.returncode == 0, result.stderr
        assert default_of(doc)["read_only"] is True
        assert (migrated.returncode, migrated.last()["event"]) == (69, "db_read_only")
        assert "read-only (read_only: a replica)" in migrated.last()["error"]
        _, doc = status(url)
        assert default_of(doc)["read_only"] is False

    def test_sqlite_lock_file(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
        replica = slow_replica(url)
        result, doc = status(url)
        assert result.returncode == 0, result.stderr
        lock = default_of(doc)["lock"]
        assert lock["held"] is True
        assert (lock["holder"]["host"], lock["holder"]["pid"]) == (HOST, replica.proc.pid)
        assert SLOW in default_of(doc)["pending"]
        assert replica.finish().returncode == 0
        _, doc = status(url)
        assert default_of(doc)["lock"]["held"] is False  # the file stays, its flock is gone
        assert default_of(doc)["pending"] == []


class TestReadOnly:
    def test_changes_nothing_on_a_fresh_database(self, pg: Postgres) -> None:
        """No django_migrations table is created, no lock is left: everything is pending."""
        db = pg.create_database()
        result, doc = status(pg.url(db))
        assert result.returncode == 0, result.stderr
        report = default_of(doc)
        assert report["last_applied"] is None
        assert "shop.0003_seed" in report["pending"]
        assert report["lock"] == {"held": False, "holder": None}
        tables = pg.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", db)
        assert tables == []

    def test_an_in_memory_sqlite_has_no_lock(self) -> None:
        """The process's own database: no other replica can share it, so no lock is taken
        (the migrate step's choice too) and none is reported, not even as free."""
        result, doc = status("sqlite://:memory:")
        assert result.returncode == 0, result.stderr
        assert default_of(doc)["lock"] is None

    def test_missing_sqlite_file_is_not_created(self, tmp_path: Path) -> None:
        path = tmp_path / "never.sqlite3"
        result, doc = status(f"sqlite:///{path}")
        assert result.returncode == 69
        assert default_of(doc)["reachable"] is False
        assert not path.exists()

    def test_pre_phase_names_what_it_leaves_for_post(self, pg: Postgres) -> None:
        """ENTRYPOINT_MIGRATE_PHASE=pre: django-safemigrate's rules, read only (no first-seen
        date recorded, nothing applied)."""
        db = pg.create_database()
        pre = {"DJANGO_SETTINGS_MODULE": "testproj.phased_settings"}
        first = run_cli(env=migrate_env(pg.url(db), ENTRYPOINT_MIGRATE_PHASE="pre", **pre))
        assert first.returncode == 0, first.stderr
        seen = pg.execute("SELECT * FROM django_safemigrate_safemigration", db)
        result, doc = status(pg.url(db), ENTRYPOINT_MIGRATE_PHASE="pre", **pre)
        assert result.returncode == 0, result.stderr
        report = default_of(doc)
        assert report["phase"] == "pre"
        assert report["pending"] == report["deferred"] == ["phased.0003_remove_widget_legacy_code"]
        assert pg.execute("SELECT * FROM django_safemigrate_safemigration", db) == seen

    def test_bad_targets_are_named_in_the_document(self, pg: Postgres) -> None:
        """The database answered: the document says why there is no plan, then 78, as the
        migrate step would refuse them too."""
        targets = {"ENTRYPOINT_MIGRATE_TARGETS": "nosuchapp 0001"}
        result, doc = status(pg.url(pg.create_database()), **targets)
        assert result.returncode == 78, result.stderr
        assert result.last()["event"] == "migration_plan_refused"
        report = default_of(doc)
        assert report["pending"] is None
        assert "names app 'nosuchapp', which has no migrations" in report["problem"]
        assert report["lock"] == {"held": False, "holder": None}


class TestBlocked:
    def test_a_locked_migrations_table_is_named_with_its_holder(self, pg: Postgres) -> None:
        """Another session holds LOCK TABLE django_migrations: the server answered, so it is
        reachable, its lock state is read, the pending list is not, and the holder's pid and
        application name are named; 69."""
        url = pg.url(pg.create_database())
        assert run_cli(env=migrate_env(url)).returncode == 0
        with psycopg.connect(url, application_name="test-locker-51") as locker:
            locker.execute("LOCK TABLE django_migrations")
            locker_pid = locker.info.backend_pid
            result, doc = status(url)
        assert result.returncode == 69, result.stderr
        report = default_of(doc)
        assert (report["reachable"], report["reason"], report["pending"]) == (True, "blocked", None)
        assert report["lock"] == {"held": False, "holder": None}
        assert report["blocked"]["cause"] == "lock_timeout"
        [holder] = report["blocked"]["by"]
        assert (holder["pid"], holder["application_name"]) == (locker_pid, "test-locker-51")
        error = result.last()["error"]
        assert f"pid={locker_pid} application_name='test-locker-51'" in error

    def test_a_paused_pooler_is_reachable_and_timed_out(self, pg: Postgres) -> None:
        """PgBouncer PAUSE: the login succeeds, every query waits. Reachable, timed out, 69,
        within the documented budget (the worker thread's)."""
        bouncer = PgBouncer(pg, extra="admin_users = postgres\n")
        bouncer.start()
        try:
            url = pg.url(pg.create_database(), port=bouncer.port)
            psycopg.connect(url).close()  # a pool in use, as the app's is
            console = f"postgres://postgres@127.0.0.1:{bouncer.port}/pgbouncer"
            with psycopg.connect(console, autocommit=True) as admin:
                admin.execute("PAUSE")
                try:
                    result, doc = status(url)
                finally:
                    admin.execute("RESUME")
        finally:
            bouncer.stop()
        assert result.returncode == 69, result.stderr
        report = default_of(doc)
        assert (report["reachable"], report["reason"]) == (True, "timed_out")
        assert "a paused pooler" in report["error"]


class TestUnreachable:
    def test_silent_alias_is_69_within_the_connect_timeout_document_printed(
        self, pg: Postgres, black_hole: int
    ) -> None:
        db = pg.create_database()
        other = f"postgres://postgres:St4tus-pw@127.0.0.1:{black_hole}/x"
        started = time.monotonic()
        result, doc = status(
            pg.url(db),
            OTHER_DATABASE_URL=other,
            ENTRYPOINT_DATABASES="default,other",
            ENTRYPOINT_DB_NETWORK_TIMEOUT="30",  # --status's connect timeout is its own
        )
        elapsed = time.monotonic() - started
        assert result.returncode == 69
        assert doc["databases"]["default"]["reachable"] is True
        silent = doc["databases"]["other"]
        assert (silent["reachable"], silent["reason"]) == (False, "timed_out")
        error = result.last()
        assert (error["event"], error["exit_code"]) == ("db_unavailable_timeout", 69)
        # The driver's connect timeout ended the attempt, not the outer deadline of the reads
        # (its message: "no answer within 15.0s"), and well before that deadline; a bound on
        # the wall clock alone failed on a loaded machine (Python's start is in it).
        assert "other (timed_out: OperationalError: connection timeout expired)" in error["error"]
        assert "default" not in error["error"]
        assert elapsed < CONNECT_TIMEOUT + READ_BUDGET
        assert "St4tus-pw" not in result.stdout + result.stderr

    def test_refused_alias_is_named(self, pg: Postgres) -> None:
        other = f"postgres://postgres@127.0.0.1:{free_port()}/x"
        result, doc = status(
            pg.url(pg.create_database()),
            OTHER_DATABASE_URL=other,
            ENTRYPOINT_DATABASES="default,other",
        )
        assert result.returncode == 69
        assert doc["databases"]["other"]["reason"] == "connection_refused"


class TestUsage:
    def test_a_command_named_status_still_runs(self, tmp_path: Path) -> None:
        """--status is a flag: a COMMAND called status is exec'd as any other."""
        script = tmp_path / "status"
        script.write_text("#!/bin/sh\necho the status command ran\n")
        script.chmod(0o755)
        env = base_env(ENTRYPOINT_STEPS="none")
        env["PATH"] = f"{tmp_path}{os.pathsep}{env['PATH']}"
        result = run_cli("status", env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout == "the status command ran\n"

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (("--status", "gunicorn"), "--status takes no COMMAND"),
            (("--status", "--plan"), "argument --plan: not allowed with argument --status"),
        ],
    )
    def test_bad_usage_is_2(self, args: tuple[str, ...], message: str) -> None:
        proc = subprocess.run(
            entrypoint_cmd(*args), env=base_env(), capture_output=True, text=True, check=False
        )
        assert proc.returncode == 2
        assert message in proc.stderr
