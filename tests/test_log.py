"""The log stream: one JSON event per line, and no secret in any of them, in any form."""

from __future__ import annotations

import io
import json
import logging
import os
import pty
import re
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from entrypoint import capture, log
from tests.cli import base_env, entrypoint_cmd, parse_events, run_cli
from tests.services import Postgres

# Characters a URL must encode (/ @ space + %) and one that is two bytes in UTF-8.
LEAKY_PASSWORD = "Leak/Me@98 z+é%"
ADMIN_PASSWORD = "admin-Leak-4711"
# A backslash, both quotes, letters beyond ASCII (one beyond the BMP), and what a URL encodes.
ESCAPED_PASSWORD = "Esc\\ape'\"ĉé€😀 z/@+%"
ESCAPED_ADMIN_PASSWORD = "Adm\\in'\"ĉé€😀-4711"
ESCAPED_MIGRATE_PASSWORD = "Mig\\rate'\"ĉé€😀"


def forms(secret: str) -> set[str]:
    """The secret as a careless program would print it: raw, percent-encoded, or escaped by
    repr, str of a container, ascii(), JSON, unicode_escape, or as the repr of its bytes."""
    encoded = {
        urllib.parse.quote(secret),
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
    }
    lower_hex = {re.sub("%[0-9A-F]{2}", lambda m: m[0].lower(), e) for e in encoded}
    escaped = {
        repr(secret)[1:-1],
        str([secret])[2:-2],
        ascii(secret)[1:-1],
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        secret.encode("unicode_escape").decode(),
        repr(secret.encode())[2:-1],
    }
    return {secret, *encoded, *lower_hex, *escaped}


@pytest.fixture(scope="module")
def leaky_role(pg: Postgres) -> str:
    pg.add_password_user("leaky", LEAKY_PASSWORD)
    return "leaky"


@pytest.fixture
def leaky_env(pg: Postgres, leaky_role: str) -> dict[str, str]:
    name = pg.create_database()
    pg.execute(f'ALTER DATABASE "{name}" OWNER TO {leaky_role}')
    url = pg.url(name, user=leaky_role, password=urllib.parse.quote(LEAKY_PASSWORD, safe=""))
    return base_env(
        DATABASE_URL=url,
        ENTRYPOINT_MIGRATE_DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="testproj.leaky_settings",
        DJANGO_ADMIN_USERNAME="boss",
        DJANGO_ADMIN_PASSWORD=ADMIN_PASSWORD,
        ENTRYPOINT_STEPS="migrate,admin",
    )


def test_secrets_leaked_by_a_migration_and_settings_are_events_and_scrubbed(
    leaky_env: dict[str, str],
) -> None:
    """print, sys.stderr, logging through the project's console handler, an exception with
    the DSN, a settings module printing at import: all JSON events, no form of a secret."""
    result = run_cli(env=leaky_env)  # parse_events fails on any line that is not JSON
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    for secret in (LEAKY_PASSWORD, ADMIN_PASSWORD, leaky_env["DATABASE_URL"]):
        for form in forms(secret):
            assert form not in output, form
    assert result.stdout == ""

    printed = {e["line"] for e in result.named("django_output")}
    assert {"password: ***", "url: ***", "plus-encoded: ***", "lower-case hex: ***"} <= printed
    assert "admin password: ***" in printed
    stderr_lines = {e["line"] for e in result.named("django_output") if e["stream"] == "stderr"}
    assert stderr_lines == {
        "leaky settings loaded",
        "stderr: ***",
        "stderr without a newline at the end",
    }
    records = {(e["logger"], e["level"], e["message"]) for e in result.named("django_log")}
    assert ("leaky", "warning", "connecting with ***") in records
    assert ("leaky.deep", "error", "failed") in records
    [failed] = [e for e in result.named("django_log") if e["logger"] == "leaky.deep"]
    assert "ValueError: invalid literal for int() with base 10: '***'" in failed["exception"]
    warning = result.named("python_warning")[0]
    assert (warning["category"], warning["message"]) == (
        "RuntimeWarning",
        "careless data migration",
    )


@pytest.fixture(scope="module")
def escaped_urls(pg: Postgres) -> tuple[str, str]:
    """DATABASE_URL and ENTRYPOINT_MIGRATE_DATABASE_URL of one database, for two roles whose
    passwords need escaping in every notation (both superusers: either may write anything)."""
    name = pg.create_database()
    urls = []
    for role, password in (("escaped", ESCAPED_PASSWORD), ("migrator", ESCAPED_MIGRATE_PASSWORD)):
        pg.add_password_user(role, password.replace("'", "''"))
        pg.execute(f"ALTER ROLE {role} SUPERUSER")
        urls.append(pg.url(name, user=role, password=urllib.parse.quote(password, safe="")))
    return urls[0], urls[1]


@pytest.mark.parametrize("document", [None, "--status", "--plan"])
def test_every_printed_form_of_every_secret_is_scrubbed(
    escaped_urls: tuple[str, str], document: str | None
) -> None:
    """A settings module printing DATABASES and every other secret it can reach, in every
    notation, as it is imported (before the entrypoint could know its passwords): none of
    those forms in any output of a start, --status or --plan."""
    service_password = "Svc\\pw'\"é€😀"
    service = f"redis://:{urllib.parse.quote(service_password, safe='')}@127.0.0.1:1/0"
    database_url, migrate_url = escaped_urls
    env = base_env(
        DATABASE_URL=database_url,
        ENTRYPOINT_MIGRATE_DATABASE_URL=migrate_url,
        ENTRYPOINT_WAIT_SERVICES=service,
        DJANGO_SETTINGS_MODULE="testproj.escaped_settings",
        DJANGO_ADMIN_USERNAME="boss",
        DJANGO_ADMIN_PASSWORD=ESCAPED_ADMIN_PASSWORD,
        ENTRYPOINT_STEPS="migrate,admin",  # the service is named, never waited for
    )
    result = run_cli(*filter(None, [document]), env=env)
    assert result.returncode == 0, result.stderr
    # The events as written, and as decoded: JSON escapes what is beyond ASCII once more.
    written = result.stdout + result.stderr + json.dumps(result.events, ensure_ascii=False)
    secrets = (
        *(ESCAPED_PASSWORD, database_url, ESCAPED_ADMIN_PASSWORD),
        *(migrate_url, ESCAPED_MIGRATE_PASSWORD, service, service_password),
    )
    for secret in secrets:
        for form in forms(secret):
            assert form not in written, (secret, form)
    printed = [e["line"] for e in result.named("django_output")]
    assert len(printed) == 1 + 4 * 6
    assert "'PASSWORD': '***'" in printed[0]
    assert printed[1:5] == [
        "*** '***' '***' ['***'] {'pw': '***'}",
        '"***" {"pw": "***"}',
        "*** ***",
        "*** b'***'",
    ]


def test_project_logging_is_restored_after_a_management_command(
    leaky_env: dict[str, str],
) -> None:
    """During lockedmigrate the records are events; afterwards the project's own console
    handler prints again, as it did before."""
    script = (
        "import logging, django\n"
        "from django.core.management import call_command\n"
        "django.setup()\n"
        "logging.getLogger('leaky').warning('before')\n"
        "call_command('lockedmigrate')\n"
        "logging.getLogger('leaky').warning('after')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        env=leaky_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[:2] == ["leaky settings loaded", "WARNING leaky before"]
    assert lines[-1] == "WARNING leaky after"
    events = parse_events("\n".join(lines[2:-1]))
    assert ("leaky", "connecting with ***") in {(e.get("logger"), e.get("message")) for e in events}
    assert LEAKY_PASSWORD not in proc.stderr


def fresh_secrets(*secrets: str) -> None:
    """This test process's registry holds only ``secrets``."""
    log._secrets.clear()
    log._pattern = None
    log.add_secrets(secrets)


class TestScrub:
    @given(
        # "*" excluded: a secret of asterisks could not be told from the mask.
        secret=st.text(
            alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="*"),
            min_size=3,
            max_size=20,
        ),
        before=st.text(max_size=5),
        after=st.text(max_size=5),
    )
    def test_every_encoded_form_is_scrubbed(self, secret: str, before: str, after: str) -> None:
        fresh_secrets(secret)
        for form in forms(secret):
            assert form not in log.scrub(before + form + after)

    @pytest.mark.parametrize(
        "char",
        ["\x7f", "\x80", "\xff", "\u0100", "\uffff", "\U00010000"],
        ids=["7f", "80", "ff", "100", "ffff", "10000"],
    )
    def test_characters_at_each_escape_boundary_are_scrubbed_in_every_form(self, char: str) -> None:
        """Where one escaped form starts or stops applying: \\x up to U+00FF, \\u up to
        U+FFFF, a surrogate pair from U+10000, the UTF-8 bytes' repr from U+0080 (found by
        scripts/mutate: random text rarely lands on these)."""
        secret = f"pw{char}pw"
        fresh_secrets(secret)
        for form in forms(secret):
            assert log.scrub(f"<{form}>") == "<***>", form

    def test_url_is_scrubbed_whole_and_its_password_anywhere(self) -> None:
        fresh_secrets()
        log.add_url_secrets("postgres://migrator:s%3Acret%2Fpw@db:5432/app")
        assert log.scrub("dsn=postgres://migrator:s%3Acret%2Fpw@db:5432/app") == "dsn=***"
        assert log.scrub("password s:cret/pw, or s%3acret%2fpw") == "password ***, or ***"

    def test_short_values_are_not_secrets(self) -> None:
        fresh_secrets()
        log.add_secrets(["ab", "", None])
        assert log.scrub("ab cd") == "ab cd"

    def test_fields_holding_dicts_and_lists_are_scrubbed_at_any_depth(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An event's field may be a mapping or a sequence (a holder, a list of errors): every
        string inside is scrubbed, whatever its depth; other values are kept as they are."""
        fresh_secrets("Sw0rdfish-77")
        log.configure("json", "info")  # prints to the stderr capsys holds
        log.get().warning(
            "nested",
            holder={"dsn": "pg://app:Sw0rdfish-77@db/app", "pid": 7},
            errors=["Sw0rdfish-77 refused", ("at Sw0rdfish-77", 3)],
        )
        [event] = parse_events(capsys.readouterr().err)
        assert event["holder"] == {"dsn": "pg://app:***@db/app", "pid": 7}
        assert event["errors"] == ["*** refused", ["at ***", 3]]


class TestLoggingCapture:
    def test_handler_filters_are_kept_and_orphan_records_are_events(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """In-process: a console handler's filter still applies; a warning no handler takes
        (logging's last resort) is an event too; afterwards the handler is back."""
        log.configure("json", "info")  # prints to the stderr capsys holds
        logger = logging.getLogger("tests.filtered")
        console = logging.StreamHandler(sys.stderr)
        console.addFilter(lambda record: "hidden" not in record.getMessage())
        logger.addHandler(console)
        logger.propagate = False
        orphan = logging.getLogger("tests.orphan")
        orphan.propagate = False
        try:
            with capture.logging_as_events():
                logger.warning("shown")
                logger.warning("hidden by the project's filter")
                orphan.warning("nobody handles me")
                orphan.info("below the last resort's level")
            assert logger.handlers == [console]
        finally:
            logger.removeHandler(console)
        events = parse_events(capsys.readouterr().err)
        assert [(e["logger"], e["message"]) for e in events] == [
            ("tests.filtered", "shown"),
            ("tests.orphan", "nobody handles me"),
        ]


class _Flushes(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


class TestCapturedStream:
    def test_lines_are_events_until_released_then_writes_reach_the_stream(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A handler made during django.setup() keeps the captured stream as its sys.stderr:
        once the steps are over, what it writes must reach the real stream, flushed."""
        log.configure("json", "info")
        target = _Flushes()
        stream = capture.CapturedStream("stdout", target)
        stream.write("a line\nno newline yet")
        stream.flush()
        assert [e["line"] for e in parse_events(capsys.readouterr().err)] == [
            "a line",
            "no newline yet",
        ]
        assert (target.getvalue(), target.flushes) == ("", 0)
        stream.release()
        stream.write("after\n")
        stream.flush()
        assert capsys.readouterr().err == ""
        assert (target.getvalue(), target.flushes) == ("after\n", 1)


class TestConsoleHandlers:
    def test_only_handlers_that_print_to_the_console_become_events(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A handler writing to file descriptor 2 prints to the console whatever object it
        writes through, and keeps its level; one on a file or in memory keeps its records."""
        log.configure("json", "info")
        logger = logging.getLogger("tests.handlers")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        to_fd2 = open(2, "w", closefd=False)  # noqa: SIM115 - the descriptor is not ours
        console = logging.StreamHandler(to_fd2)
        console.setLevel(logging.WARNING)
        memory = io.StringIO()
        with (tmp_path / "stream.log").open("w") as opened:
            handlers: list[logging.Handler] = [
                console,
                logging.StreamHandler(memory),
                logging.StreamHandler(opened),
                logging.FileHandler(tmp_path / "file.log"),
            ]
            for handler in handlers:
                logger.addHandler(handler)
            try:
                with capture.logging_as_events():
                    logger.info("below the console's level")
                    logger.warning("once")
                assert logger.handlers == handlers
            finally:
                for handler in handlers:
                    logger.removeHandler(handler)
                    handler.close()
        to_fd2.close()
        events = parse_events(capsys.readouterr().err)
        assert [(e["logger"], e["message"]) for e in events] == [("tests.handlers", "once")]
        both = "below the console's level\nonce\n"
        assert memory.getvalue() == both
        assert (tmp_path / "stream.log").read_text() == both
        assert (tmp_path / "file.log").read_text() == both

    def test_a_record_that_cannot_be_formatted_is_reported_not_raised(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """logging's own convention: a broken record (its arguments do not fit its message)
        is reported on stderr, and the code that logged it goes on."""
        record = logging.LogRecord("tests.broken", logging.WARNING, __file__, 1, "%d", ("x",), None)
        capture.EventHandler().handle(record)
        assert "--- Logging error ---" in capsys.readouterr().err


class TestLogStream:
    def test_a_line_cut_for_length_is_marked_even_when_what_is_kept_is_short(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Cut at log.MAX_LINE as it is written, a line of trailing blanks is short once they
        are stripped: the field cap does not mark it, the stream must."""
        log.configure("json", "info")
        stream = log.LogStream()
        stream.write("x" + " " * log.MAX_LINE + "dropped")
        stream.write(" rest\nnext\n")
        events = parse_events(capsys.readouterr().err)
        assert [(e["line"], e.get("truncated")) for e in events] == [
            ("x", True),
            ("next", None),
        ]


class TestFlood:
    def test_a_megabyte_at_once_is_capped_at_8_kib_per_field(self) -> None:
        """print, sys.stdout.write without a newline, stderr, logging, a traceback and a
        command's own stdout: each event's text at most 8 KiB, marked truncated, scrubbed first.
        """
        secret = "Fl00d-S3cret-pw"
        env = base_env(
            ENTRYPOINT_STEPS="manage",
            ENTRYPOINT_MANAGE="flood",
            DJANGO_ADMIN_USERNAME="boss",
            DJANGO_ADMIN_PASSWORD=secret,
        )
        result = run_cli(env=env)
        assert result.returncode == 0, result.stderr
        assert len(result.stderr) < 200_000  # 6 MB were printed
        # 8 KiB of UTF-8 per field; JSON writes é as \u00e9: 4096 of them take 24 KiB on the line.
        assert max(len(line) for line in result.stderr.splitlines()) < 3 * 8192 + 1024
        assert "Fl" not in result.stderr  # not even the half of the secret before the cut
        out = [e for e in result.named("django_output") if e["stream"] == "stdout"]
        assert [(e["line"][:1], len(e["line"]), e.get("truncated")) for e in out] == [
            ("a", 8192, True),
            ("b", 8192, True),
            ("a", len("after the flood"), None),
        ]
        assert out[0]["line"] == "a" * 8190 + "**"
        assert out[2]["line"] == "after the flood"
        (err,) = [e for e in result.named("django_output") if e["stream"] == "stderr"]
        assert (err["line"], err["truncated"]) == ("é" * 4096, True)
        message, traceback = result.named("django_log")
        assert (message["message"], message["truncated"]) == ("c" * 8192, True)
        assert traceback["message"] == "e" * 10
        assert traceback["exception"].endswith("d" * 8000)  # the end of a traceback is kept
        assert len(traceback["exception"]) == 8192
        (command,) = result.named("manage_output")
        assert (len(command["line"]), command["truncated"]) == (8192, True)


def console_output(*, terminal: bool, **extra: str) -> str:
    """What a start with the console rendering writes to stderr: a pipe, or a terminal."""
    env = base_env(ENTRYPOINT_LOG_FORMAT="console", ENTRYPOINT_STEPS="none", **extra)
    if not terminal:
        return subprocess.run(
            entrypoint_cmd(), env=env, capture_output=True, text=True, timeout=60, check=True
        ).stderr
    controller, terminal_end = pty.openpty()
    with subprocess.Popen(entrypoint_cmd(), env=env, stderr=terminal_end) as proc:
        os.close(terminal_end)
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the process closed its end
                break
            if not chunk:
                break
            chunks.append(chunk)
    os.close(controller)
    assert proc.returncode == 0
    return b"".join(chunks).decode()


@pytest.mark.parametrize(
    ("terminal", "extra", "coloured"),
    [(False, {}, False), (True, {"NO_COLOR": "1"}, False), (True, {}, True)],
    ids=["pipe", "terminal-NO_COLOR", "terminal"],
)
def test_console_colours_only_on_a_terminal_and_never_with_no_color(
    terminal: bool, extra: dict[str, str], coloured: bool
) -> None:
    """ENTRYPOINT_LOG_FORMAT=console into a pipe or a log file: plain text; on a terminal,
    colours, unless NO_COLOR is set (the last case shows the check can see them)."""
    output = console_output(terminal=terminal, **extra)
    assert "startup_summary" in output
    assert ("\x1b[" in output) == coloured, output
