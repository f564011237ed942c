"""The manage step: ENTRYPOINT_MANAGE's commands in-process, in order, optionally locked."""

from __future__ import annotations

from pathlib import Path

from tests.cli import Result, base_env, finish, run_cli, start_cli
from tests.services import Postgres


def manage_env(commands: str, **extra: str) -> dict[str, str]:
    return base_env(ENTRYPOINT_STEPS="manage", ENTRYPOINT_MANAGE=commands, **extra)


def manage(commands: str, **extra: str) -> Result:
    return run_cli(env=manage_env(commands, **extra))


def output(result: Result) -> list[tuple[str, str]]:
    return [
        (e["event"], e["line"])
        for e in result.events
        if e["event"] in ("manage_output", "manage_stderr")
    ]


class TestOrder:
    def test_commands_run_in_order_with_shell_like_quoting(self) -> None:
        commands = (
            "say first\n  say 'two words' \"and three\"\n# a comment\n\nsay --err last  # why"
        )
        result = manage(commands)
        assert result.returncode == 0, result.stderr
        assert output(result) == [
            ("manage_output", "first"),
            ("manage_output", "two words | and three"),
            ("manage_stderr", "last"),
        ]
        finished = result.named("manage_command_finished")
        assert [(e["command"], e["position"]) for e in finished] == [
            ("say", "1/3"),
            ("say", "2/3"),
            ("say", "3/3"),
        ]
        assert all(e["duration_s"] >= 0 for e in finished)
        assert all(e["step"] == "manage" for e in result.named("manage_output"))
        assert "manage" in result.named("startup_summary")[0]["durations_s"]

    def test_never_asks_for_input(self) -> None:
        """A command that would prompt (collectstatic, flush) runs as with --noinput."""
        result = manage("ask")
        assert result.returncode == 0, result.stderr
        assert output(result) == [("manage_output", "interactive=False")]

    def test_the_steps_run_with_the_garbage_collector_on(self) -> None:
        """Start-up turns the collector off (it only allocates what lives until exec); the
        steps get it back, or a long migration run would keep every cycle it makes."""
        result = manage("collector")
        assert result.returncode == 0, result.stderr
        assert output(result) == [("manage_output", "collector enabled=True")]

    def test_unconfigured_step_is_a_no_op(self) -> None:
        result = manage("")
        assert result.returncode == 0, result.stderr
        assert not result.named("manage_command_started")


class TestValidation:
    def test_unknown_command_is_78_before_anything_migrates(self, pg: Postgres) -> None:
        db = pg.create_database()
        env = base_env(DATABASE_URL=pg.url(db), ENTRYPOINT_MANAGE="say hello\ncolectstatic")
        result = run_cli(env=env)
        assert result.returncode == 78
        error = result.last()
        assert error["event"] == "config_invalid"
        assert "command 2 ('colectstatic') is not a management command" in error["error"]
        assert not result.named("step_started")
        assert pg.execute("SELECT to_regclass('django_migrations')", db) == [(None,)]

    def test_bad_arguments_are_78(self) -> None:
        result = manage("say ok\nsay --loud")
        assert result.returncode == 78
        assert "unrecognized arguments: --loud" in result.last()["error"]
        assert not result.named("manage_output")

    def test_unbalanced_quote_is_78(self) -> None:
        result = manage("say 'unfinished")
        assert result.returncode == 78
        assert "ENTRYPOINT_MANAGE line 1" in result.last()["error"]


class TestFailure:
    def test_failing_command_is_70_and_stops_the_rest(self) -> None:
        result = manage("say one\nfail\nsay never")
        assert result.returncode == 70
        error = result.last()
        assert error["event"] == "manage_command_failed"
        assert "2/3 'fail' failed: CommandError: the ops command broke" in error["error"]
        assert output(result) == [("manage_output", "one")]

    def test_sys_exit_is_a_failure_too(self) -> None:
        result = manage("fail --exit 3")
        assert result.returncode == 70
        assert "exited with status 3" in result.last()["error"]


class TestLocked:
    def test_two_replicas_never_overlap(self, pg: Postgres, tmp_path: Path) -> None:
        """Under the migration lock the command runs in one replica, then in the other."""
        marks = tmp_path / "marks"
        env = base_env(
            DATABASE_URL=pg.url(pg.create_database()),
            ENTRYPOINT_STEPS="manage",
            ENTRYPOINT_MANAGE=f"exclusive {marks} 1.5",
            ENTRYPOINT_MANAGE_LOCKED="true",
        )
        results = [finish(p) for p in [start_cli(env=env), start_cli(env=env)]]
        assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
        lines = [line.split() for line in marks.read_text().splitlines()]
        assert [what for what, _, _ in lines] == ["start", "end", "start", "end"]
        assert lines[0][1] == lines[1][1]  # one process's start and end, then the other's
        assert float(lines[2][2]) >= float(lines[1][2])
        assert sum(len(r.named("migration_lock_acquired")) for r in results) == 2


class TestHeartbeat:
    def test_long_command_reports_while_it_runs(self) -> None:
        result = manage("sleepy 1.6", ENTRYPOINT_HEARTBEAT_INTERVAL="0.4")
        assert result.returncode == 0, result.stderr
        beats = result.named("manage_command_running")
        assert len(beats) >= 2
        assert {e["command"] for e in beats} == {"sleepy"}
        elapsed = [e["elapsed_s"] for e in beats]
        assert elapsed == sorted(elapsed)
        assert elapsed[0] >= 0.4
        finished = result.named("manage_command_finished")[0]
        assert result.events.index(beats[-1]) < result.events.index(finished)

    def test_zero_turns_it_off(self) -> None:
        result = manage("sleepy 0.5", ENTRYPOINT_HEARTBEAT_INTERVAL="0")
        assert result.returncode == 0, result.stderr
        assert not result.named("manage_command_running")
