"""ENTRYPOINT_WAIT_SERVICES: real Redis and RabbitMQ servers, HTTP and TCP listeners, files."""

from __future__ import annotations

import base64
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from entrypoint import log
from entrypoint.env_reader import Reader
from entrypoint.wait.services import Service, parse, read_services, secrets
from tests.brokers import FlakyHTTP, Greeter, LateListener, RabbitMQ, Redis
from tests.cli import Result, base_env, django_cmd, finish, run_cli, run_django, start_cli
from tests.services import Postgres, free_port
from tests.test_wait import finish_with, read_until, seconds_between
from tests.watch import Running, is_event

REDIS_PASSWORD = "r3dis-Pa55-w0rd"
# Generated passwords hold the characters a URL parser cuts at. Each fragment is long enough
# to be told apart in any output; none may appear anywhere.
SPECIAL = "Fr4gOne#Fr4gTwo/Fr4gThree?Fr4gFour"
WRONG = "Wr0ngOne#Wr0ngTwo/Wr0ngThree?Wr0ngFour"
FRAGMENTS = [f for password in (SPECIAL, WRONG) for f in re.split(r"[#/?]", password)]


def encoded(password: str) -> str:
    return quote(password, safe="")


def leaked(result: Result) -> list[str]:
    return [f for f in FRAGMENTS if f in result.stdout + result.stderr]


def wait_env(services: str, **extra: str) -> dict[str, str]:
    """The wait step alone, on the tests' in-memory SQLite database (always answering)."""
    defaults = {
        "ENTRYPOINT_STEPS": "wait",
        "ENTRYPOINT_WAIT_TIMEOUT": "30",
        "ENTRYPOINT_LOG_LEVEL": "debug",
    }
    return base_env(ENTRYPOINT_WAIT_SERVICES=services, **{**defaults, **extra})


def wait(services: str, **extra: str) -> Result:
    return run_cli(env=wait_env(services, **extra), timeout=60)


def reasons(result: Result) -> list[str]:
    return [e["reason"] for e in result.named("service_check_failed")]


def refused_then_open(listener: LateListener, waiting: Running) -> Result:
    """The listener opened 3 s after the wait's first refused check: several more fail first,
    whatever the time the process took to start."""
    waiting.wait_for(is_event("service_check_failed", reason="connection_refused"))
    time.sleep(3)
    listener.open()
    return waiting.finish(timeout=60)


def serving(password: str = "") -> Iterator[Redis]:
    server = Redis(password=password)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def redis() -> Iterator[Redis]:
    yield from serving()


@pytest.fixture(scope="module")
def redis_pw() -> Iterator[Redis]:
    yield from serving(REDIS_PASSWORD)


@pytest.fixture(scope="module")
def redis_special() -> Iterator[Redis]:
    yield from serving(SPECIAL)


@pytest.fixture(scope="module")
def rabbitmq() -> Iterator[RabbitMQ]:
    broker = RabbitMQ()
    broker.start()
    yield broker
    broker.stop()


class TestParse:
    @pytest.mark.parametrize(
        ("url", "name", "port"),
        [
            ("tcp://db:5432", "tcp://db:5432", 5432),
            ("http://api/health?token=x", "http://api:80/health", 80),
            ("https://[::1]:8443/", "https://[::1]:8443/", 8443),
            ("redis://:pw@cache/0", "redis://cache:6379", 6379),
            ("redis://cache:6380/7", "redis://cache:6380/7", 6380),
            ("rediss://user:pw@cache:6380", "rediss://cache:6380", 6380),
            ("amqp://guest:guest@mq/vhost", "amqp://mq:5672", 5672),
            ("amqps://mq", "amqps://mq:5671", 5671),
            ("file:///run/ready%20flag", "file:///run/ready flag", 0),
        ],
    )
    def test_names_carry_no_credentials(self, url: str, name: str, port: int) -> None:
        service = parse(url)
        assert (service.name, service.port) == (name, port)
        assert "pw" not in repr(service)

    def test_percent_encoded_password_is_decoded_and_secret(self) -> None:
        service = parse("redis://:p%40ss%2Fw0rd@cache")
        assert service.password == "p@ss/w0rd"
        assert {"p@ss/w0rd", "redis://:p%40ss%2Fw0rd@cache"} <= set(secrets(service.url))

    @pytest.mark.parametrize("char", ["#", "?", "/"])
    @pytest.mark.parametrize("scheme", ["redis", "http", "amqp"])
    def test_unencoded_password_is_refused_never_quoted(self, scheme: str, char: str) -> None:
        """The parser would cut the password at the character and quote the rest as a port, a
        path or a fragment: refused naming scheme and host, and the password is a secret
        before anything parses it."""
        password = f"S3cr{char}t-pw-{scheme}"
        reader = Reader({"ENTRYPOINT_WAIT_SERVICES": f"{scheme}://ops:{password}@cache:1234/0"})
        assert read_services(reader) == ()
        (problem,) = reader.problems
        assert f"'{scheme}://***@cache:1234/0' is invalid" in problem
        assert "must be percent-encoded" in problem
        assert "S3cr" not in problem
        assert f"t-pw-{scheme}" not in problem
        assert log.scrub(f"a {password} b") == "a *** b"

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("ftp://host", "unknown scheme 'ftp'"),
            ("localhost:6379", "unknown scheme 'localhost'"),
            ("tcp://host", "tcp://HOST:PORT"),
            ("tcp://:80", "tcp://HOST:PORT"),
            ("redis://:s3cret@host:notaport", "the port is not a number"),
            ("http://api/health?mail=ops@example.org", "'@' elsewhere in the URL"),
            ("tcp://host:1#anchor", "'#' and '@' elsewhere"),
            ("redis://host/zero", "database number"),
            ("file://relative/path", "file:///absolute/path"),
            ("http://host/a b", "white space"),
        ],
    )
    def test_malformed(self, raw: str, expected: str) -> None:
        reader = Reader({"ENTRYPOINT_WAIT_SERVICES": f"tcp://ok:1\n{raw}"})
        assert len(read_services(reader)) == 1
        (problem,) = reader.problems
        assert expected in problem
        assert "s3cret" not in problem

    def test_commas_and_newlines_separate_duplicates_collapse(self) -> None:
        reader = Reader({"ENTRYPOINT_WAIT_SERVICES": "tcp://a:1, tcp://b:2\n\ntcp://a:1,"})
        services: tuple[Service, ...] = read_services(reader)
        assert [s.name for s in services] == ["tcp://a:1", "tcp://b:2"]


class TestBadConfiguration:
    def test_unknown_scheme_exits_78_naming_it(self) -> None:
        result = wait("tcp://127.0.0.1:1,mysql://root:S3cret-pw@db:3306/app")
        assert result.returncode == 78
        error = result.last()["error"]
        assert "unknown scheme 'mysql'" in error
        assert "mysql://***@db:3306/app" in error
        assert "S3cret-pw" not in result.stderr
        assert not result.named("step_started")


class TestPasswordsWithSpecialCharacters:
    """Every path of the wait step with passwords holding '#', '/' and '?': no fragment of
    one in any output, whether the URL is written wrongly (78) or right (0, or 69)."""

    def test_unencoded_in_each_scheme_is_78_naming_the_host(self) -> None:
        urls = [
            f"redis://:{SPECIAL}@cache:6379/0",
            f"http://ops:{SPECIAL}@api:8080/health",
            f"amqp://guest:{WRONG}@mq:5672/",
        ]
        result = wait(",".join(urls))
        assert result.returncode == 78
        error = result.last()["error"]
        for shown in ("redis://***@cache:6379/0", "http://***@api:8080/health", "amqp://***@mq"):
            assert shown in error
        assert "must be percent-encoded" in error
        assert leaked(result) == []

    def test_encoded_every_outcome_at_once(
        self, redis_special: Redis, rabbitmq: RabbitMQ, black_hole: int
    ) -> None:
        """Ready, refused logins (Redis, AMQP), an HTTP error with Basic auth, a refused
        connection and a silent server, in one wait that ends 69."""
        http = FlakyHTTP([503])
        port = redis_special.port
        services = {
            f"redis://:{encoded(SPECIAL)}@127.0.0.1:{port}/0": "ready",
            f"redis://:{encoded(WRONG)}@127.0.0.1:{port}/1": "authentication_failed",
            f"amqp://guest:{encoded(WRONG)}@127.0.0.1:{rabbitmq.port}/": "authentication_failed",
            f"http://ops:{encoded(SPECIAL)}@127.0.0.1:{http.port}/health": "http_503",
            f"redis://:{encoded(SPECIAL)}@127.0.0.1:{free_port()}/2": "connection_refused",
            f"redis://:{encoded(WRONG)}@127.0.0.1:{black_hole}/3": "timed_out",
        }
        try:
            result = wait(",".join(services), ENTRYPOINT_WAIT_TIMEOUT="4")
        finally:
            http.close()
        assert result.returncode == 69
        assert [e["service"] for e in result.named("service_ready")] == [
            f"redis://127.0.0.1:{port}"
        ]
        failed = {e["service"]: e["reason"] for e in result.named("service_check_failed")}
        assert sorted(failed.values()) == sorted(r for r in services.values() if r != "ready")
        token = http.requests[0]["Authorization"].removeprefix("Basic ")
        assert base64.b64decode(token).decode() == f"ops:{SPECIAL}"  # decoded before use
        assert leaked(result) == []


class TestTcpAndHttp:
    def test_listener_that_comes_up_late(self) -> None:
        listener = LateListener()
        try:
            result = refused_then_open(
                listener, Running(env=wait_env(f"tcp://127.0.0.1:{listener.port}"))
            )
        finally:
            listener.close()
        assert result.returncode == 0, result.stderr
        assert reasons(result) == ["connection_refused"]  # once, not per check
        ready = result.named("service_ready")[0]
        assert ready["service"] == f"tcp://127.0.0.1:{listener.port}"
        assert ready["attempts"] > 3

    def test_http_503_then_200(self) -> None:
        server = FlakyHTTP([503, 503, 200])
        url = f"http://ops:H77p-pa55@127.0.0.1:{server.port}/health?token=T0ken-abc123"
        try:
            result = wait(url)
        finally:
            server.close()
        assert result.returncode == 0, result.stderr
        assert reasons(result) == ["http_503"]
        assert result.named("service_ready")[0]["attempts"] == 3
        assert server.requests[-1]["path"] == "/health?token=T0ken-abc123"
        assert server.requests[-1]["Authorization"].startswith("Basic ")
        for secret in ("H77p-pa55", "T0ken-abc123"):
            assert secret not in result.stderr + result.stdout

    def test_redirect_counts_as_ready_server_error_does_not(self) -> None:
        ok, bad = FlakyHTTP([302]), FlakyHTTP([500])
        try:
            result = wait(
                f"http://127.0.0.1:{ok.port}/,http://127.0.0.1:{bad.port}/x",
                ENTRYPOINT_WAIT_TIMEOUT="2",
            )
        finally:
            ok.close()
            bad.close()
        assert result.returncode == 69
        assert [e["service"] for e in result.named("service_ready")] == [
            f"http://127.0.0.1:{ok.port}/"
        ]
        error = result.last()
        assert error["event"] == "service_unavailable_timeout"
        assert f"http://127.0.0.1:{bad.port}/x (http_500)" in error["error"]


class TestRedis:
    def test_without_password(self, redis: Redis) -> None:
        result = wait(redis.url())
        assert result.returncode == 0, result.stderr
        assert result.named("service_ready")[0]["service"] == f"redis://127.0.0.1:{redis.port}"

    def test_with_password(self, redis_pw: Redis) -> None:
        result = wait(redis_pw.url())
        assert result.returncode == 0, result.stderr
        assert not result.named("service_check_failed")
        assert REDIS_PASSWORD not in result.stderr + result.stdout

    def test_wrong_password_is_69_and_never_logged(self, redis_pw: Redis) -> None:
        result = wait(redis_pw.url("Wr0ng-r3dis-pw"), ENTRYPOINT_WAIT_TIMEOUT="1.5")
        assert result.returncode == 69
        assert reasons(result) == ["authentication_failed"]
        assert "authentication_failed" in result.last()["error"]
        for secret in ("Wr0ng-r3dis-pw", REDIS_PASSWORD):
            assert secret not in result.stderr + result.stdout

    def test_database_number_is_selected(self, redis: Redis) -> None:
        """SELECT n: a database the server does not have (16 by default) is not ready."""
        url = f"redis://127.0.0.1:{redis.port}"
        result = wait(f"{url}/15,{url}/99", ENTRYPOINT_WAIT_TIMEOUT="1")
        assert result.returncode == 69
        assert [e["service"] for e in result.named("service_ready")] == [f"{url}/15"]
        (failed,) = result.named("service_check_failed")
        assert (failed["service"], failed["reason"]) == (f"{url}/99", "database_out_of_range")
        assert "ERR DB index is out of range" in failed["detail"]
        assert f"{url}/99 (database_out_of_range)" in result.last()["error"]

    def test_missing_password_is_named(self, redis_pw: Redis) -> None:
        result = wait(redis_pw.url(""), ENTRYPOINT_WAIT_TIMEOUT="1")
        assert result.returncode == 69
        assert reasons(result) == ["authentication_required"]


class TestAmqp:
    def test_real_broker_with_the_right_password(self, rabbitmq: RabbitMQ) -> None:
        """The whole login: Start/StartOk (PLAIN), Tune/TuneOk, Open/OpenOk on vhost "/"."""
        result = wait(f"amqp://guest:guest@127.0.0.1:{rabbitmq.port}/")
        assert result.returncode == 0, result.stderr
        assert result.named("service_ready")[0]["service"] == f"amqp://127.0.0.1:{rabbitmq.port}"
        assert not result.named("service_check_failed")

    def test_wrong_password_is_69_authentication_failed(self, rabbitmq: RabbitMQ) -> None:
        result = wait(
            f"amqp://guest:Wr0ng-amqp-pw@127.0.0.1:{rabbitmq.port}/", ENTRYPOINT_WAIT_TIMEOUT="2"
        )
        assert result.returncode == 69
        assert reasons(result) == ["authentication_failed"]
        assert f"amqp://127.0.0.1:{rabbitmq.port} (authentication_failed)" in result.last()["error"]
        assert "Wr0ng-amqp-pw" not in result.stderr + result.stdout

    def test_unknown_virtual_host_is_named(self, rabbitmq: RabbitMQ) -> None:
        result = wait(
            f"amqp://guest:guest@127.0.0.1:{rabbitmq.port}/no-such-vhost",
            ENTRYPOINT_WAIT_TIMEOUT="2",
        )
        assert result.returncode == 69
        assert reasons(result) == ["vhost_not_allowed"]
        assert "no-such-vhost" in result.named("service_check_failed")[0]["detail"]

    def test_something_else_on_the_port_is_not_a_broker(self) -> None:
        server = Greeter()
        try:
            result = wait(f"amqp://127.0.0.1:{server.port}", ENTRYPOINT_WAIT_TIMEOUT="1")
        finally:
            server.close()
        assert result.returncode == 69
        assert reasons(result) == ["unexpected_reply"]


class TestDeadline:
    def test_service_never_up_exits_69_within_the_deadline(self) -> None:
        port = free_port()
        result = wait(
            f"tcp://127.0.0.1:{port},file:///nonexistent/flag", ENTRYPOINT_WAIT_TIMEOUT="2"
        )
        assert result.returncode == 69
        error = result.last()
        assert error["event"] == "service_unavailable_timeout"
        assert f"tcp://127.0.0.1:{port} (connection_refused)" in error["error"]
        assert "file:///nonexistent/flag (file_missing)" in error["error"]
        assert seconds_between(result.named("step_started")[0], error) <= 2 + 1

    def test_silent_server_cannot_hold_the_deadline(self, black_hole: int) -> None:
        """A listener that never answers the PING: each check is bounded by the time left."""
        result = wait(f"redis://127.0.0.1:{black_hole}", ENTRYPOINT_WAIT_TIMEOUT="3")
        assert result.returncode == 69
        assert reasons(result) == ["timed_out"]
        assert seconds_between(result.named("step_started")[0], result.last()) <= 3 + 1

    def test_sigterm_during_a_hanging_check(self, black_hole: int) -> None:
        proc = start_cli(env=wait_env(f"amqp://127.0.0.1:{black_hole}"))
        lines: list[str] = []
        read_until(proc, "db_ready", lines)
        time.sleep(1)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        result = finish_with(proc, lines, timeout=10)
        assert time.monotonic() - sent < 1
        assert result.returncode == 143


class TestWait4dbCommand:
    """manage.py wait4db is the wait step's code: the services too, unless --no-services."""

    def wait4db(self, services: str, *args: str, **extra: str) -> Result:
        return run_django("wait4db", *args, env=wait_env(services, **extra), timeout=60)

    def test_waits_for_a_service_that_comes_up_late(self) -> None:
        listener = LateListener()
        env = wait_env(f"tcp://127.0.0.1:{listener.port}")
        try:
            waiting = Running("wait4db", "-i", "0.2", env=env, command=django_cmd)
            result = refused_then_open(listener, waiting)
        finally:
            listener.close()
        assert result.returncode == 0, result.stderr
        assert reasons(result) == ["connection_refused"]
        assert result.named("service_ready")[0]["service"] == f"tcp://127.0.0.1:{listener.port}"
        assert result.last()["event"] == "service_ready"  # after the database's db_ready

    def test_service_never_up_is_69_within_its_timeout(self) -> None:
        port = free_port()
        result = self.wait4db(f"tcp://127.0.0.1:{port}", "-t", "2")
        assert result.returncode == 69
        error = result.last()
        assert error["event"] == "service_unavailable_timeout"
        assert f"tcp://127.0.0.1:{port} (connection_refused)" in error["error"]
        assert "within 2s" in error["error"]

    def test_no_services_skips_them(self) -> None:
        result = self.wait4db(f"tcp://127.0.0.1:{free_port()}", "--no-services", "-t", "2")
        assert result.returncode == 0, result.stderr
        assert result.named("db_ready")
        assert not result.named("service_check_failed")


class TestAlongsideTheDatabase:
    def test_services_are_checked_while_the_database_is_awaited(
        self, own_pg: Postgres, tmp_path: Path
    ) -> None:
        """One deadline and one stable period for all: the file is ready before the database."""
        flag = tmp_path / "ready"
        flag.touch()
        env = wait_env(
            f"file://{flag}",
            DATABASE_URL=own_pg.url(),
            ENTRYPOINT_WAIT_STABLE="1",
            ENTRYPOINT_WAIT_TIMEOUT="60",
        )
        proc = start_cli(env=env)
        time.sleep(3)
        own_pg.start()
        result = finish(proc)
        assert result.returncode == 0, result.stderr
        order = [e["event"] for e in result.events if e["event"] in ("service_ready", "db_ready")]
        assert order == ["service_ready", "db_ready"]


class TestSecrets:
    def test_credentials_are_scrubbed_wherever_they_appear(
        self, redis_pw: Redis, tmp_path: Path
    ) -> None:
        """A hook that prints the variable: the whole URL and its password come out as ***."""
        url = redis_pw.url()
        hook = tmp_path / "1-echo"
        hook.write_text(
            f'#!/bin/sh\necho "$ENTRYPOINT_WAIT_SERVICES"\necho "pw={REDIS_PASSWORD}"\n'
        )
        hook.chmod(0o755)
        env = wait_env(url, ENTRYPOINT_STEPS="wait,hooks", ENTRYPOINT_HOOKS_DIR=str(tmp_path))
        result = run_cli(env=env)
        assert result.returncode == 0, result.stderr
        assert [e["line"] for e in result.named("hook_output")] == ["***", "pw=***"]
        assert REDIS_PASSWORD not in result.stderr
