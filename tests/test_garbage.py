"""Garbage in ENTRYPOINT_* and DJANGO_ADMIN_*, run through the real CLI: 78 (or 2), one stream of
JSON events, never a traceback, a hang, or a connection to the database."""

from __future__ import annotations

import os
import string

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from entrypoint.config import KNOWN_VARIABLES
from tests.cli import Result, base_env, run_cli
from tests.services import silent_listener

text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
    max_size=30,
)
ADMIN_NAMES = ["USERNAME", "PASSWORD", "EMAIL", "FIRST_NAME", "IS_STAFF", "GROUPS"]
examples = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def odd_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Paths a careless _FILE variable points at: a FIFO, a directory, a device, nothing."""
    folder = tmp_path_factory.mktemp("odd")
    os.mkfifo(folder / "fifo")
    (folder / "garbage").write_bytes(b"\xff\xfe\x00garbage")
    return [str(folder / "fifo"), str(folder), "/dev/zero", str(folder / "missing")]


@st.composite
def admin_variables(draw: st.DrawFn, odd_files: list[str]) -> dict[str, str]:
    """Some DJANGO_ADMIN_* / DJANGO_SUPERUSER_* variables, plain or _FILE, with any values."""
    env: dict[str, str] = {}
    for _ in range(draw(st.integers(0, 4))):
        prefix = draw(st.sampled_from(["DJANGO_ADMIN_", "DJANGO_SUPERUSER_"]))
        field = draw(
            st.sampled_from(ADMIN_NAMES) | st.text(string.ascii_uppercase + "_", min_size=1)
        )
        if draw(st.booleans()):
            env[f"{prefix}{field}_FILE"] = draw(st.sampled_from(odd_files) | text)
        else:
            env[f"{prefix}{field}"] = draw(text)
    return env


@st.composite
def entrypoint_variables(draw: st.DrawFn) -> dict[str, str]:
    """Known ENTRYPOINT_* variables (the log format stays JSON) with any values."""
    names = sorted(KNOWN_VARIABLES - {"ENTRYPOINT_LOG_FORMAT"})
    chosen = draw(st.lists(st.sampled_from(names), max_size=4, unique=True))
    return {name: draw(text) for name in chosen}


def run_against_listener(variables: dict[str, str]) -> Result:
    with silent_listener() as sock:  # a test fails if anything connects to it
        port = sock.getsockname()[1]
        env = base_env(DATABASE_URL=f"postgres://u@127.0.0.1:{port}/db", **variables)
        result = run_cli("--", "true", env=env, timeout=30)  # a hang raises TimeoutExpired
        with pytest.raises(BlockingIOError):
            sock.accept()
    return result


def assert_refused(result: Result) -> None:
    assert result.returncode in (2, 78), result.stderr
    assert "Traceback" not in result.stderr
    assert result.last()["event"] in ("config_invalid", "usage_error")
    assert not result.named("step_started")
    assert result.stdout == ""


class TestGarbage:
    @examples
    @given(data=st.data())
    def test_bad_environment_variables(self, data: st.DataObject, odd_files: list[str]) -> None:
        """Any mix, plus one ENTRYPOINT_* typo that makes it certainly wrong."""
        variables = data.draw(entrypoint_variables()) | data.draw(admin_variables(odd_files))
        typo = data.draw(st.text(string.ascii_uppercase, min_size=1, max_size=8))
        variables[f"ENTRYPOINT_{typo}_TYPO"] = data.draw(text)
        result = run_against_listener(variables)  # parse_events: every line is JSON
        assert_refused(result)
        assert f"ENTRYPOINT_{typo}_TYPO" in result.last()["error"]

    @examples
    @given(data=st.data())
    def test_bad_admin_seed_after_django_is_set_up(
        self, data: st.DataObject, odd_files: list[str]
    ) -> None:
        """The ENTRYPOINT_* defaults (every step), a seed with any username and password and
        one name that is no field of the user model: refused before the wait step."""
        variables = data.draw(admin_variables(odd_files))
        variables["DJANGO_ADMIN_USERNAME"] = data.draw(text.filter(str.strip))
        variables["DJANGO_ADMIN_PASSWORD"] = data.draw(text.filter(str.strip))
        unknown = data.draw(st.text(string.ascii_uppercase, min_size=1, max_size=8))
        variables[f"DJANGO_ADMIN_NO_FIELD_{unknown}"] = data.draw(text)
        variables["DJANGO_SETTINGS_MODULE"] = "testproj.admin_settings"
        result = run_against_listener(variables)
        assert_refused(result)
        event(
            "refused after Django was set up"
            if "NO_FIELD" in result.last()["error"]
            else "refused by the environment checks"
        )
