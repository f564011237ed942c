"""Entrypoint processes watched while they run, and what the migrate tests read back."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from entrypoint.config import default_lock_id
from tests.cli import Result, entrypoint_cmd, parse_events, start_cli
from tests.services import MariaDB, Postgres

Event = dict[str, Any]
HOLDER_APP = "test-holder-7f3a"


class Running:
    """A CLI subprocess whose JSON log lines are read as they come."""

    started: list[Running] = []

    def __init__(
        self, *args: str, env: dict[str, str], command: Callable[..., list[str]] = entrypoint_cmd
    ) -> None:
        self.proc = start_cli(*args, env=env, command=command)
        Running.started.append(self)
        self.lines: list[str] = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()

    def events(self) -> list[Event]:
        with self.cond:
            return [json.loads(line) for line in self.lines if line.strip()]

    def wait_for(self, match: Callable[[Event], bool], timeout: float = 60) -> Event:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines:
                    if line.strip() and match(event := json.loads(line)):
                        return dict(event)
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self.reader.is_alive()):
                    raise AssertionError(f"no matching event; log so far:\n{''.join(self.lines)}")
                self.cond.wait(min(left, 0.2))

    def finish(self, timeout: float = 120) -> Result:
        self.proc.wait(timeout)
        self.reader.join(10)
        stdout = self.proc.stdout.read() if self.proc.stdout else ""
        text = "".join(self.lines)
        return Result(self.proc.returncode, stdout, text, parse_events(text))


def ends_within(running: Running, since: float, bound: float) -> tuple[Result, float]:
    """The process's result and when it ended (its last event), counted from ``since``
    (``time.time()``); fails if it is still running ``bound`` seconds after ``since``."""
    try:
        running.proc.wait(timeout=max(bound - (time.time() - since), 0.1))
    except subprocess.TimeoutExpired:
        log = "".join(running.lines)[-6000:]
        raise AssertionError(f"still running {bound:g}s after the cut; its log:\n{log}") from None
    result = running.finish(timeout=10)
    last = dt.datetime.fromisoformat(result.last()["timestamp"])
    return result, last.timestamp() - since


def reap() -> None:
    """Kill what a failed test left running (only the processes this module started)."""
    while Running.started:
        running = Running.started.pop()
        if running.proc.poll() is None:
            running.proc.kill()
            running.proc.wait(10)


def is_event(event: str, /, **fields: object) -> Callable[[Event], bool]:
    return lambda e: e.get("event") == event and all(e.get(k) == v for k, v in fields.items())


def applied(result: Result) -> list[tuple[str, str]]:
    return [(e["app"], e["name"]) for e in result.named("migration_applied")]


def recorded(pg: Postgres, db: str) -> list[tuple[object, ...]]:
    return pg.execute("SELECT app, name FROM django_migrations ORDER BY app, name", db)


def schema(pg: Postgres, db: str) -> dict[str, list[tuple[object, ...]]]:
    """Tables, columns, indexes and constraints of the public schema, comparable across DBs."""
    return {
        "columns": pg.execute(
            "SELECT table_name, column_name, data_type, is_nullable, column_default"
            " FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2",
            db,
        ),
        "indexes": pg.execute(
            "SELECT tablename, indexname, indexdef FROM pg_indexes"
            " WHERE schemaname = 'public' ORDER BY 1, 2",
            db,
        ),
        "constraints": pg.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
            " FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
            db,
        ),
        "migrations": recorded(pg, db),
    }


def wait_until(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def sleeping_on_server(pg: Postgres) -> None:
    """Wait until a migration's pg_sleep runs on the server: its work is in flight."""
    active = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE state = 'active' AND query LIKE 'SELECT pg_sleep%'"
    )
    wait_until(lambda: pg.execute(active) != [(0,)])


def sleep_runs_on_mariadb(server: MariaDB) -> bool:
    """Whether a migration's SELECT SLEEP runs on the server: its work is in flight."""
    return bool(
        server.execute(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP%'"
        )
    )


def advisory_locks(pg: Postgres) -> list[tuple[object, ...]]:
    return pg.execute("SELECT pid, granted FROM pg_locks WHERE locktype = 'advisory'")


@contextmanager
def lock_held(url: str, key: int | None = None) -> Iterator[psycopg.Connection]:
    """Another client holding the migration lock, the way a migrating replica does."""
    with psycopg.connect(url, application_name=HOLDER_APP) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s::bigint)", [key or default_lock_id()])
        yield conn
