"""The wait step against a real PostgreSQL that starts late, restarts, hangs or refuses."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime

import pytest

from tests.cli import Result, base_env, finish, parse_events, run_cli, run_django, start_cli
from tests.services import Postgres, StallingProxy, free_port


def wait_env(url: str, **extra: str) -> dict[str, str]:
    return base_env(DATABASE_URL=url, ENTRYPOINT_STEPS="wait", **extra)


def read_until(proc: subprocess.Popen[str], event: str, lines: list[str]) -> None:
    """Read stderr lines until one carries ``event``; keep every line for later checks."""
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append(line)
        if f'"event": "{event}"' in line:
            return
    raise AssertionError(f"process ended before {event}: {''.join(lines)}")


def finish_with(proc: subprocess.Popen[str], lines: list[str], timeout: float = 60) -> Result:
    result = finish(proc, timeout)
    result.stderr = "".join(lines) + result.stderr
    result.events = parse_events(result.stderr)
    return result


def sigterm_mid_check(url: str) -> tuple[Result, float]:
    """SIGTERM 1.5 s into a check that hangs; the result and how long the exit took."""
    proc = start_cli(env=wait_env(url, ENTRYPOINT_WAIT_TIMEOUT="60"))
    lines: list[str] = []
    read_until(proc, "step_started", lines)
    time.sleep(1.5)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    result = finish_with(proc, lines, timeout=10)
    return result, time.monotonic() - sent


def seconds_between(first: dict[str, object], last: dict[str, object]) -> float:
    start = datetime.fromisoformat(str(first["timestamp"]))
    end = datetime.fromisoformat(str(last["timestamp"]))
    return (end - start).total_seconds()


LONG_INTERVAL = 60


def with_defaults(env: dict[str, str], **extra: str) -> dict[str, str]:
    """``env`` with the wait's documented defaults (base_env sets a short stable period and
    interval for speed), plus ``extra``."""
    del env["ENTRYPOINT_WAIT_STABLE"], env["ENTRYPOINT_WAIT_INTERVAL"]
    return env | extra


class TestReadyServer:
    @pytest.mark.parametrize(("stable", "checks"), [(None, 2), ("0", 1)])
    def test_no_stable_period_for_a_server_up_before_the_wait(
        self, pg: Postgres, pg_url: str, stable: str | None, checks: int
    ) -> None:
        """With the default stable period, a database and a service that answer the first
        check are ready after a second check at once, not after 5 s; with STABLE=0 after the
        first. Counted in checks, not timed (benchmarks/ times it). The interval is longer than
        any start here: a pause before the confirming check would show in ``elapsed_s``."""
        extra = {
            "ENTRYPOINT_WAIT_SERVICES": f"tcp://127.0.0.1:{pg.port}",
            "ENTRYPOINT_WAIT_INTERVAL": str(LONG_INTERVAL),
        }
        if stable is not None:
            extra["ENTRYPOINT_WAIT_STABLE"] = stable
        result = run_cli(env=with_defaults(wait_env(pg_url), **extra))
        assert result.returncode == 0, result.stderr
        assert not result.named("db_check_failed")
        for event in ("db_ready", "service_ready"):
            [ready] = result.named(event)
            assert (ready["attempts"], ready["stable_s"]) == (checks, 0), ready
            assert ready["elapsed_s"] < LONG_INTERVAL, ready


class TestWaitsForTheDatabase:
    def test_a_later_alias_s_timeout_names_the_configured_wait(self, pg_url: str) -> None:
        """The aliases share one deadline; the one that misses it is reported against the
        ENTRYPOINT_WAIT_TIMEOUT the user set, not what was left of it after the first."""
        env = wait_env(
            pg_url,
            ENTRYPOINT_DATABASES="default,other",
            OTHER_DATABASE_URL=f"postgres://u@127.0.0.1:{free_port()}/db",
            ENTRYPOINT_WAIT_TIMEOUT="3",
            ENTRYPOINT_WAIT_STABLE="0",
        )
        result = run_cli(env=env)
        assert result.returncode == 69, result.stderr
        assert [e["alias"] for e in result.named("db_ready")] == ["default"]
        error = result.last()["error"]
        assert error.startswith("database 'other' was not ready within 3s "), error

    def test_database_started_later_is_watched_for_the_stable_period(
        self, own_pg: Postgres
    ) -> None:
        """The entrypoint keeps checking, logs the refusal once, and goes on when it has
        answered for the stable period: a server seen down may be coming up."""
        env = wait_env(own_pg.url(), ENTRYPOINT_WAIT_TIMEOUT="60", ENTRYPOINT_WAIT_STABLE="1")
        proc = start_cli("--", "true", env=env)
        lines: list[str] = []
        read_until(proc, "db_check_failed", lines)
        own_pg.start()
        result = finish_with(proc, lines)
        assert result.returncode == 0, result.stderr
        reasons = [f["reason"] for f in result.named("db_check_failed")]
        # Logged when the reason changes, not per check; a starting server may say so first.
        assert reasons[0] == "connection_refused"
        assert set(reasons) <= {"connection_refused", "server_starting_up"}
        assert len(reasons) <= 2
        [answering] = result.named("db_answering")
        [ready] = result.named("db_ready")
        assert ready["stable_s"] == 1
        assert seconds_between(answering, ready) >= 1
        assert result.named("startup_summary")[0]["steps"] == ["wait"]

    def test_stop_during_stable_period_restarts_it(self, own_pg: Postgres) -> None:
        """A failure inside the stable window resets it; ready only after a full quiet window."""
        env = wait_env(own_pg.url(), ENTRYPOINT_WAIT_STABLE="4", ENTRYPOINT_WAIT_TIMEOUT="60")
        proc = start_cli(env=env)
        lines: list[str] = []
        read_until(proc, "db_check_failed", lines)
        own_pg.start()
        read_until(proc, "db_answering", lines)
        own_pg.stop()
        time.sleep(1.5)
        own_pg.start()
        result = finish_with(proc, lines)
        assert result.returncode == 0, result.stderr
        assert result.named("db_stability_reset")
        answering = result.named("db_answering")
        assert len(answering) == 2
        ready = result.named("db_ready")[0]
        assert seconds_between(answering[1], ready) >= 4

    def test_unanswering_listener_deadline_is_honoured(self, black_hole: int) -> None:
        """A server that accepts TCP and never answers cannot hold us past TIMEOUT + 1 s."""
        url = f"postgres://u@127.0.0.1:{black_hole}/db"
        result = run_cli(env=wait_env(url, ENTRYPOINT_WAIT_TIMEOUT="3"), timeout=30)
        assert result.returncode == 69, result.stderr
        started = result.named("step_started")[0]
        error = result.last()
        assert error["event"] == "db_unavailable_timeout"
        assert "timed_out" in error["error"]
        assert seconds_between(started, error) <= 3 + 1

    def test_unreachable_database_times_out_with_last_reason(self) -> None:
        url = f"postgres://u@127.0.0.1:{free_port()}/db"
        result = run_cli(env=wait_env(url, ENTRYPOINT_WAIT_TIMEOUT="1.5"), timeout=30)
        assert result.returncode == 69
        assert "connection_refused" in result.last()["error"]
        assert "ENTRYPOINT_WAIT_TIMEOUT" in result.last()["error"]

    @pytest.mark.parametrize(
        ("case", "reason", "advice"),
        [
            ("unknown role", "authentication_failed", "refused the login for user 'no_such_role'"),
            ("missing database", "database_does_not_exist", "no database 'no_such_db': create"),
            ("TLS required by the client", "tls_error", "sslmode"),
            ("role out of connections", "too_many_clients", "docs/steps.md#connection-slots"),
            ("host rejected by pg_hba.conf", "host_not_allowed", "pg_hba.conf"),
        ],
    )
    def test_advice_follows_the_reason(
        self, pg: Postgres, case: str, reason: str, advice: str
    ) -> None:
        """What a restart of the server cannot cure is named with its fix, at the first refusal
        (a warning) and in the error at the deadline, instead of "check that it runs"."""
        urls = {
            "unknown role": lambda: pg.url("postgres", user="no_such_role"),
            "missing database": lambda: pg.url("no_such_db"),
            "TLS required by the client": lambda: pg.url() + "?sslmode=require",
            "role out of connections": lambda: limited_role(pg),
            "host rejected by pg_hba.conf": lambda: rejected_role(pg),
        }
        result = run_cli(env=wait_env(urls[case](), ENTRYPOINT_WAIT_TIMEOUT="1"))
        assert result.returncode == 69, result.stderr
        [failed] = result.named("db_check_failed")
        assert (failed["level"], failed["reason"]) == ("warning", reason)
        assert advice in failed["hint"]
        assert advice in result.last()["error"]
        assert "reachable" not in result.last()["error"]

    def test_progress_is_logged_every_ten_seconds_not_every_check(self) -> None:
        url = f"postgres://u@127.0.0.1:{free_port()}/db"
        env = wait_env(url, ENTRYPOINT_WAIT_TIMEOUT="12", ENTRYPOINT_WAIT_INTERVAL="0.1")
        result = run_cli(env=env, timeout=60)
        assert result.returncode == 69
        assert len(result.named("db_check_failed")) == 1
        progress = result.named("db_waiting")
        assert len(progress) == 1
        assert progress[0]["attempts"] > 50


@pytest.fixture
def stalling_url(pg: Postgres) -> Iterator[str]:
    proxy = StallingProxy(pg.port)
    yield f"postgres://postgres@127.0.0.1:{proxy.port}/postgres?sslmode=disable&gssencmode=disable"
    proxy.close()


class TestServerStallsAfterLogin:
    """A connection that logs in and then hangs: only the bounded probe keeps the deadline."""

    def test_deadline_is_honoured(self, stalling_url: str) -> None:
        result = run_cli(env=wait_env(stalling_url, ENTRYPOINT_WAIT_TIMEOUT="3"), timeout=30)
        assert result.returncode == 69, result.stderr
        assert result.named("db_check_failed")[0]["reason"] == "timed_out"
        assert seconds_between(result.named("step_started")[0], result.last()) <= 3 + 1

    def test_sigterm_is_handled_at_once(self, stalling_url: str) -> None:
        result, seconds = sigterm_mid_check(stalling_url)
        assert seconds < 1
        assert result.returncode == 143


def limited_role(pg: Postgres) -> str:
    """A role that may open no connection at all: SQLSTATE 53300, as a full server says."""
    pg.execute('DROP ROLE IF EXISTS "no_slots"; CREATE ROLE "no_slots" LOGIN CONNECTION LIMIT 0')
    return pg.url("postgres", user="no_slots")


def rejected_role(pg: Postgres) -> str:
    pg.execute('DROP ROLE IF EXISTS "not_from_here"; CREATE ROLE "not_from_here" LOGIN')
    pg.add_hba_rule("host all not_from_here 127.0.0.1/32 reject")
    return pg.url("postgres", user="not_from_here")


class TestSecrets:
    def test_wrong_password_advice_names_the_credentials_never_the_password(
        self, pg: Postgres
    ) -> None:
        """scram-sha-256: the refusal is a warning naming the user and where its credentials
        come from; the error at the deadline says the same; the password is nowhere."""
        pg.add_password_user("pwuser", "right-pw-1234")
        url = pg.url("postgres", user="pwuser", password="Wr0ng-Pa55word")
        env = wait_env(url, ENTRYPOINT_WAIT_TIMEOUT="1", ENTRYPOINT_LOG_LEVEL="debug")
        result = run_cli(env=env)
        assert result.returncode == 69
        [failed] = result.named("db_check_failed")
        assert (failed["level"], failed["reason"]) == ("warning", "authentication_failed")
        advice = "the server refused the login for user 'pwuser': check the user and password"
        assert advice in failed["hint"]
        assert "DATABASE_URL" in failed["hint"]
        error = result.last()["error"]
        assert "authentication_failed" in error
        assert advice in error
        assert "reachable" not in error
        output = result.stdout + result.stderr
        assert "Wr0ng-Pa55word" not in output
        assert url not in output


class TestSignals:
    @pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
    def test_signal_while_waiting_exits_at_once(self, signum: int, code: int) -> None:
        url = f"postgres://u@127.0.0.1:{free_port()}/db"
        proc = start_cli("--", "true", env=wait_env(url, ENTRYPOINT_WAIT_TIMEOUT="60"))
        lines: list[str] = []
        read_until(proc, "db_check_failed", lines)
        sent = time.monotonic()
        proc.send_signal(signum)
        result = finish_with(proc, lines, timeout=10)
        assert time.monotonic() - sent < 1
        assert result.returncode == code
        assert result.last()["event"] == "interrupted"
        assert not result.named("exec")

    def test_sigterm_during_a_hanging_check(self, black_hole: int) -> None:
        """Even while a check waits on a silent server, SIGTERM is handled within a second."""
        result, seconds = sigterm_mid_check(f"postgres://u@127.0.0.1:{black_hole}/db")
        assert seconds < 1
        assert result.returncode == 143


class TestWaitForMigrations:
    def test_waits_until_no_migration_is_pending(self, pg: Postgres, pg_url: str) -> None:
        env = wait_env(pg_url, ENTRYPOINT_WAIT_FOR="migrations", ENTRYPOINT_WAIT_TIMEOUT="60")
        proc = start_cli(env=env)
        lines: list[str] = []
        read_until(proc, "migrations_pending", lines)
        migrate = run_django("migrate", "--noinput", env=env)
        assert migrate.returncode == 0, migrate.stderr
        result = finish_with(proc, lines)
        assert result.returncode == 0, result.stderr
        assert result.named("db_migrated")

    def test_times_out_while_migrations_are_pending(self, pg_url: str) -> None:
        env = wait_env(pg_url, ENTRYPOINT_WAIT_FOR="migrations", ENTRYPOINT_WAIT_TIMEOUT="2")
        result = run_cli(env=env)
        assert result.returncode == 69
        assert "migrations_pending" in result.last()["error"]


class TestWait4dbCommand:
    def test_command_waits_with_its_own_options(self, own_pg: Postgres) -> None:
        env = base_env(DATABASE_URL=own_pg.url())
        args = ("wait4db", "-t", "1", "-s", "0", "-i", "0.1")
        proc = run_django(*args, env=env)
        assert proc.returncode == 69
        assert parse_events(proc.stderr)[-1]["event"] == "db_unavailable_timeout"
        own_pg.start()
        proc = run_django(*args, env=env)
        assert proc.returncode == 0, proc.stderr
        assert parse_events(proc.stderr)[-1]["event"] == "db_ready"

    @pytest.mark.parametrize("args", [("-t", "inf"), ("-i", "0"), ("-s", "-1"), ("-t", "x")])
    def test_bad_option_is_a_usage_error(self, pg_url: str, args: tuple[str, str]) -> None:
        proc = run_django("wait4db", *args, env=base_env(DATABASE_URL=pg_url), json_log=False)
        assert proc.returncode == 2
        assert "Traceback" not in proc.stderr

    def test_defaults_come_from_the_variables(self) -> None:
        url = f"postgres://u@127.0.0.1:{free_port()}/db"
        env = base_env(DATABASE_URL=url, ENTRYPOINT_WAIT_TIMEOUT="1")
        proc = run_django("wait4db", env=env, timeout=30)
        assert proc.returncode == 69
        assert "within 1s" in parse_events(proc.stderr)[-1]["error"]

    def test_unknown_alias_is_a_config_error(self, pg_url: str) -> None:
        env = base_env(DATABASE_URL=pg_url)
        proc = run_django("wait4db", "-d", "nope", env=env)
        assert proc.returncode == 78
        assert "--database" in parse_events(proc.stderr)[-1]["error"]
