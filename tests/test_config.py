"""The settings object: parsed from an explicit mapping, every problem reported at once."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrypoint import config
from entrypoint.env_reader import YEAR
from entrypoint.errors import ConfigError
from tests.cli import base_env, run_cli
from tests.services import silent_listener

BASE = {"DJANGO_SETTINGS_MODULE": "proj.settings"}
env_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
    max_size=40,
)


def load(**env: str) -> config.Settings:
    return config.load({**BASE, **env})


def problems(**env: str) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        load(**env)
    return info.value.problems


def is_number(value: str, *, allow_zero: bool) -> bool:
    """The documented rule, written independently: ASCII digits, a year at most."""
    value = value.strip()
    if not value:
        return True  # empty means the default
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", value, re.ASCII):
        return False
    number = float(value)
    return number <= 365 * 24 * 3600 and (number > 0 or (allow_zero and number == 0))


class TestDefaults:
    def test_defaults(self) -> None:
        settings = load()
        assert settings.steps == ("wait", "migrate", "admin", "manage", "hooks")
        assert settings.databases == ("default",)
        assert (settings.wait.timeout, settings.wait.stable, settings.wait.interval) == (180, 5, 1)
        assert settings.migrate.lock_id == config.default_lock_id()
        assert -(2**63) <= settings.migrate.lock_id < 2**63
        assert settings.admin is None
        assert (settings.wait.services, settings.manage.commands, settings.manage.locked) == (
            (),
            (),
            False,
        )
        assert settings.hooks.directory == "/etc/django-entrypoint/hooks.d"
        assert (settings.hooks.timeout, settings.heartbeat_interval) == (300, 30)

    def test_settings_module_is_required(self) -> None:
        with pytest.raises(ConfigError, match="DJANGO_SETTINGS_MODULE is not set"):
            config.load({})

    def test_settings_option_wins(self) -> None:
        assert config.load({}, settings_module="x.y").settings_module == "x.y"


class TestSteps:
    @pytest.mark.parametrize(
        ("raw", "steps"),
        [
            ("admin, wait", ("wait", "admin")),
            ("hooks,manage,wait", ("wait", "manage", "hooks")),
            ("migrate,wait,migrate", ("wait", "migrate")),
            ("none", ()),
            ("", ()),
            ("WAIT", None),
        ],
    )
    def test_order_is_fixed(self, raw: str, steps: tuple[str, ...] | None) -> None:
        if steps is None:
            assert "ENTRYPOINT_STEPS" in problems(ENTRYPOINT_STEPS=raw)[0]
        else:
            assert load(ENTRYPOINT_STEPS=raw).steps == steps

    def test_databases_all(self) -> None:
        assert load(ENTRYPOINT_DATABASES="all").databases is None
        assert load(ENTRYPOINT_DATABASES="default, other").databases == ("default", "other")


class TestTargets:
    def test_lines_and_commas(self) -> None:
        settings = load(ENTRYPOINT_MIGRATE_TARGETS="main 0001\nauth, blog zero")
        assert settings.migrate.targets == (("main", "0001"), ("auth", None), ("blog", "zero"))

    @pytest.mark.parametrize("raw", ["main 0001 extra", "main 0001, main 0002", "9x 0001"])
    def test_malformed(self, raw: str) -> None:
        assert "ENTRYPOINT_MIGRATE_TARGETS" in problems(ENTRYPOINT_MIGRATE_TARGETS=raw)[0]


class TestNewSteps:
    def test_manage_lines_are_split_like_a_shell_would(self) -> None:
        settings = load(ENTRYPOINT_MANAGE="collectstatic --noinput\n\n# x\nsay 'a b' c  # d")
        assert settings.manage.commands == (("collectstatic", "--noinput"), ("say", "a b", "c"))

    @pytest.mark.parametrize(
        ("env", "expected"),
        [
            ({"ENTRYPOINT_MANAGE": "ok\nsay 'open"}, "ENTRYPOINT_MANAGE line 2"),
            ({"ENTRYPOINT_MANAGE": "--settings x"}, "starts with an option"),
            ({"ENTRYPOINT_MANAGE_LOCKED": "sure"}, "ENTRYPOINT_MANAGE_LOCKED"),
            ({"ENTRYPOINT_HOOK_TIMEOUT": "0"}, "ENTRYPOINT_HOOK_TIMEOUT"),
            ({"ENTRYPOINT_HEARTBEAT_INTERVAL": "-1"}, "ENTRYPOINT_HEARTBEAT_INTERVAL"),
            ({"ENTRYPOINT_WAIT_SERVICES": "gopher://x"}, "ENTRYPOINT_WAIT_SERVICES"),
        ],
    )
    def test_malformed(self, env: dict[str, str], expected: str) -> None:
        (problem,) = problems(**env)
        assert expected in problem

    def test_service_passwords_not_in_repr(self) -> None:
        settings = load(ENTRYPOINT_WAIT_SERVICES="redis://:svc-pa55@cache:6379")
        assert settings.wait.services[0].password == "svc-pa55"
        assert "svc-pa55" not in repr(settings)


class TestProblemsTogether:
    def test_all_problems_in_one_error(self) -> None:
        found = problems(
            ENTRYPOINT_WAIT_TIMEOUT="0",
            ENTRYPOINT_WAIT_STABLE="-1",
            ENTRYPOINT_LOG_LEVEL="loud",
            ENTRYPOINT_WAIT_TIMOUT="5",
        )
        text = " ".join(found)
        for name in ("ENTRYPOINT_WAIT_TIMEOUT", "ENTRYPOINT_WAIT_STABLE", "ENTRYPOINT_LOG_LEVEL"):
            assert name in text
        assert "ENTRYPOINT_WAIT_TIMOUT is not a known variable" in text

    @pytest.mark.parametrize(
        "url", ["user:hunter22@db/x", "postgres://u:hunter22#x@db/x", "foo://u:hunter22@db/x"]
    )
    def test_database_url_value_is_never_echoed(self, url: str) -> None:
        found = problems(ENTRYPOINT_MIGRATE_DATABASE_URL=url)
        assert "ENTRYPOINT_MIGRATE_DATABASE_URL is not a database URL" in found[0]
        assert "hunter22" not in " ".join(found)

    def test_direct_url_needs_the_default_database(self) -> None:
        found = problems(
            ENTRYPOINT_MIGRATE_DATABASE_URL="postgres://u:p@db/x", ENTRYPOINT_DATABASES="other"
        )
        assert "stands for the default database" in found[0]

    def test_stable_period_must_fit_in_the_timeout(self) -> None:
        found = problems(ENTRYPOINT_WAIT_STABLE="10", ENTRYPOINT_WAIT_TIMEOUT="10")
        assert (
            "ENTRYPOINT_WAIT_STABLE (10) must be shorter than ENTRYPOINT_WAIT_TIMEOUT" in found[0]
        )
        assert load(
            ENTRYPOINT_WAIT_STABLE="10", ENTRYPOINT_WAIT_TIMEOUT="10", ENTRYPOINT_STEPS="none"
        )

    def test_secrets_not_in_repr(self) -> None:
        settings = load(
            DJANGO_ADMIN_USERNAME="root",
            DJANGO_ADMIN_PASSWORD="pa55-w0rd-x",
            ENTRYPOINT_MIGRATE_DATABASE_URL="postgres://u:dsn-pa55@h/db",
        )
        assert "pa55-w0rd-x" not in repr(settings)
        assert "dsn-pa55" not in repr(settings)


class TestLimits:
    @pytest.mark.parametrize(
        "raw",
        ["1e10", "1_000", "\u0661\u0662", "inf", "nan", "+5", "0x10", "31536000.5", "5.", ".5"],
    )
    def test_seconds_are_ascii_decimals_up_to_a_year(self, raw: str) -> None:
        """float() takes all of these; the variables do not."""
        [problem] = problems(ENTRYPOINT_WAIT_TIMEOUT=raw)
        assert problem.startswith("ENTRYPOINT_WAIT_TIMEOUT=")
        assert "from more than 0 to 31536000 (a year)" in problem

    @pytest.mark.parametrize("raw", ["31536000", "0.5", " 30 ", "007"])
    def test_seconds_accepted(self, raw: str) -> None:
        assert load(ENTRYPOINT_WAIT_TIMEOUT=raw, ENTRYPOINT_WAIT_STABLE="0").wait.timeout == float(
            raw
        )

    @pytest.mark.parametrize("raw", ["1_000", "+5", "\u0661", "9223372036854775808", "1.0"])
    def test_lock_id_is_ascii_and_64_bit(self, raw: str) -> None:
        [problem] = problems(ENTRYPOINT_MIGRATE_LOCK_ID=raw)
        assert problem.startswith("ENTRYPOINT_MIGRATE_LOCK_ID=")

    @pytest.mark.parametrize("raw", ["0", "0.5", "3600.5", "1e3", "ten", "-5"])
    def test_network_timeout_is_one_second_to_an_hour(self, raw: str) -> None:
        """Keepalive times are whole seconds and the kernel takes at most 32767 of them."""
        [problem] = problems(ENTRYPOINT_DB_NETWORK_TIMEOUT=raw)
        assert problem.startswith("ENTRYPOINT_DB_NETWORK_TIMEOUT=")
        assert "from 1 to 3600" in problem

    @pytest.mark.parametrize(("raw", "seconds"), [("", 10.0), ("1", 1.0), (" 3600 ", 3600.0)])
    def test_network_timeout_accepted(self, raw: str, seconds: float) -> None:
        assert load(ENTRYPOINT_DB_NETWORK_TIMEOUT=raw).db_network_timeout == seconds

    def test_lock_id_range_ends(self) -> None:
        assert load(ENTRYPOINT_MIGRATE_LOCK_ID=str(-(2**63))).migrate.lock_id == -(2**63)
        assert load(ENTRYPOINT_MIGRATE_LOCK_ID=str(2**63 - 1)).migrate.lock_id == 2**63 - 1

    def test_error_output_is_bounded(self) -> None:
        """10,000 bad targets: every problem is kept, 20 are shown, then how many more."""
        targets = ",".join(f"app{i} 0001 extra{'x' * 100}" for i in range(10_000))
        with pytest.raises(ConfigError) as info:
            load(ENTRYPOINT_MIGRATE_TARGETS=targets)
        assert len(info.value.problems) == 10_000
        text = str(info.value)
        assert text.endswith("; and 9980 more problems")
        assert len(text) < 20 * 600

    def test_a_long_problem_is_cut(self) -> None:
        text = str(ConfigError("x" * 10_000))
        assert len(text) == ConfigError.MAX_CHARS
        assert text.endswith("...")


class TestNames:
    def test_miscased_names_are_a_warning_event(self) -> None:
        """entrypoint_steps is not ENTRYPOINT_STEPS: it is ignored, and said so."""
        env = base_env(
            ENTRYPOINT_STEPS="none", entrypoint_steps="wait", Django_Admin_Username="boss"
        )
        result = run_cli(env=env, timeout=60)
        assert result.returncode == 0, result.stderr
        [warning] = result.named("env_names_ignored")
        assert warning["names"] == ["Django_Admin_Username", "entrypoint_steps"]
        assert warning["level"] == "warning"


NUMBER_VARS = {
    "ENTRYPOINT_WAIT_TIMEOUT": False,
    "ENTRYPOINT_WAIT_STABLE": True,
    "ENTRYPOINT_WAIT_INTERVAL": False,
    "ENTRYPOINT_MIGRATE_LOCK_TIMEOUT": True,
    "ENTRYPOINT_HOOK_TIMEOUT": False,
    "ENTRYPOINT_HEARTBEAT_INTERVAL": True,
}
CHOICE_VARS = {
    "ENTRYPOINT_WAIT_FOR": ("connection", "migrations"),
    "ENTRYPOINT_LOG_FORMAT": ("auto", "json", "console"),
    "ENTRYPOINT_LOG_LEVEL": ("debug", "info", "warning", "error"),
    "ENTRYPOINT_MIGRATE_LOCK_MODE": ("auto", "session", "none"),
    "ENTRYPOINT_MIGRATE_PHASE": ("pre", "post"),
    "ENTRYPOINT_SCHEMA_CHECK": ("warn", "refuse", "off"),
}


@st.composite
def garbage(draw: st.DrawFn) -> tuple[str, str]:
    """A variable and a value it must reject."""
    name = draw(st.sampled_from(sorted([*NUMBER_VARS, *CHOICE_VARS, "ENTRYPOINT_STEPS"])))
    if name in NUMBER_VARS:
        value = draw(env_text.filter(lambda v: not is_number(v, allow_zero=NUMBER_VARS[name])))
    elif name in CHOICE_VARS:
        value = draw(env_text.filter(lambda v: v.strip().lower() not in (*CHOICE_VARS[name], "")))
    else:
        value = draw(
            env_text.filter(
                lambda v: any(p.strip() not in (*config.STEPS, "none", "") for p in v.split(","))
            )
        )
    return name, value


class TestGarbage:
    @given(garbage())
    def test_every_bad_value_names_its_variable(self, case: tuple[str, str]) -> None:
        name, value = case
        found = problems(**{name: value})
        assert len(found) == 1
        assert found[0].startswith(name)

    @given(
        name=st.sampled_from(sorted(NUMBER_VARS)),
        seconds=st.floats(min_value=YEAR + 0.01, max_value=1e300),
    )
    def test_numbers_beyond_a_year_are_rejected(self, name: str, seconds: float) -> None:
        """Written as plain decimals (1e10 is refused for its form already): out of range."""
        found = problems(**{name: f"{seconds:.3f}", "ENTRYPOINT_STEPS": "none"})
        assert len(found) == 1
        assert found[0].startswith(name)
        assert "to 31536000 (a year)" in found[0]

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(case=garbage(), other=st.text(alphabet=string.ascii_uppercase, min_size=1, max_size=8))
    def test_cli_exits_78_without_touching_the_database(
        self, case: tuple[str, str], other: str
    ) -> None:
        """Run the real CLI: exit 78, one JSON error naming the variable, no connection made."""
        name, value = case
        with silent_listener() as listener:
            port = listener.getsockname()[1]
            env = base_env(DATABASE_URL=f"postgres://u@127.0.0.1:{port}/db", **{name: value})
            env[f"ENTRYPOINT_{other}_TYPO"] = "1"
            result = run_cli("--", "true", env=env, timeout=30)
            with pytest.raises(BlockingIOError):
                listener.accept()
        assert result.returncode == 78
        assert len(result.events) == 1
        event = result.events[0]
        assert event["event"] == "config_invalid"
        assert name in event["error"]
        assert f"ENTRYPOINT_{other}_TYPO" in event["error"]
        assert "Traceback" not in result.stderr
