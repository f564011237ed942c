"""The admin seed parsed from an explicit mapping: no database, no Django, no os.environ."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from entrypoint import config
from entrypoint.admin.config import AdminSeed, read_admin_seed
from entrypoint.env_reader import SECRET_FILE_MAX
from entrypoint.errors import ConfigError
from tests.cli import base_env, run_cli

SECRET = "unit-Secret-31"


def read(env: dict[str, str]) -> tuple[AdminSeed | None, list[str]]:
    problems: list[str] = []
    return read_admin_seed(env, problems), problems


class TestSeedValues:
    def test_no_username_means_no_seed(self) -> None:
        """Without a username the step is skipped, even when other admin variables are set."""
        assert read({"DJANGO_ADMIN_EMAIL": "a@example.org"}) == (None, [])

    def test_admin_variables(self) -> None:
        """DJANGO_ADMIN_* fill the seed; other DJANGO_ADMIN_<FIELD> go to extra, lower-cased."""
        seed, problems = read(
            {
                "DJANGO_ADMIN_USERNAME": "boss",
                "DJANGO_ADMIN_PASSWORD": SECRET,
                "DJANGO_ADMIN_EMAIL": "boss@example.org",
                "DJANGO_ADMIN_DISPLAY_NAME": "Boss",
            }
        )
        assert problems == []
        assert seed == AdminSeed("boss", SECRET, "boss@example.org", {"display_name": "Boss"})
        assert seed.update is False

    def test_superuser_fallbacks(self) -> None:
        """Django's createsuperuser names work too, extra fields included."""
        seed, problems = read(
            {
                "DJANGO_SUPERUSER_USERNAME": "su",
                "DJANGO_SUPERUSER_PASSWORD": SECRET,
                "DJANGO_SUPERUSER_EMAIL": "su@example.org",
                "DJANGO_SUPERUSER_DISPLAY_NAME": "Su",
            }
        )
        assert problems == []
        assert seed == AdminSeed("su", SECRET, "su@example.org", {"display_name": "Su"})

    def test_admin_names_win_and_empty_ones_fall_back(self) -> None:
        """DJANGO_ADMIN_X beats DJANGO_SUPERUSER_X unless it is empty."""
        seed, _ = read(
            {
                "DJANGO_ADMIN_USERNAME": "admin",
                "DJANGO_SUPERUSER_USERNAME": "su",
                "DJANGO_ADMIN_PASSWORD": "",
                "DJANGO_SUPERUSER_PASSWORD": SECRET,
            }
        )
        assert seed is not None
        assert (seed.username, seed.password) == ("admin", SECRET)

    def test_username_without_password(self) -> None:
        """A username alone is a configuration error that points at the _FILE form."""
        seed, problems = read({"DJANGO_ADMIN_USERNAME": "boss"})
        assert seed is None
        assert len(problems) == 1
        assert "DJANGO_ADMIN_PASSWORD_FILE" in problems[0]

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("true", True),
            ("1", True),
            ("YES", True),
            ("false", False),
            ("0", False),
            ("no", False),
            ("", False),
        ],
    )
    def test_update_flag(self, raw: str, expected: bool) -> None:
        """ENTRYPOINT_ADMIN_UPDATE accepts true/false/1/0/yes/no, any case."""
        seed, problems = read(
            {
                "DJANGO_ADMIN_USERNAME": "b",
                "DJANGO_ADMIN_PASSWORD": SECRET,
                "ENTRYPOINT_ADMIN_UPDATE": raw,
            }
        )
        assert problems == []
        assert seed is not None
        assert seed.update is expected

    @pytest.mark.parametrize("raw", ["maybe", "on", "2"])
    def test_update_flag_rejects_other_values(self, raw: str) -> None:
        """Anything else is reported with the accepted forms."""
        _, problems = read({"ENTRYPOINT_ADMIN_UPDATE": raw})
        assert len(problems) == 1
        assert "ENTRYPOINT_ADMIN_UPDATE" in problems[0]
        assert "true/false/1/0/yes/no" in problems[0]


class TestSecretFiles:
    @pytest.mark.parametrize(
        ("content", "mark_removed"),
        [
            (SECRET, False),
            (SECRET + "\n", False),
            (SECRET + "\r\n", False),  # a Windows editor
            ("\ufeff" + SECRET + "\n", True),  # Notepad's UTF-8
            ("\ufeff" + SECRET + "\r\n", True),
        ],
        ids=["bare", "LF", "CRLF", "BOM-LF", "BOM-CRLF"],
    )
    def test_one_trailing_line_break_and_a_byte_order_mark_are_no_part_of_the_value(
        self, tmp_path: Path, content: str, mark_removed: bool
    ) -> None:
        """One trailing \\n or \\r\\n goes, and a leading byte-order mark, which the seed
        records for the step's warning; the password is the one that was meant."""
        path = tmp_path / "password"
        path.write_bytes(content.encode())
        seed, problems = read(
            {"DJANGO_ADMIN_USERNAME": "boss", "DJANGO_ADMIN_PASSWORD_FILE": str(path)}
        )
        assert problems == []
        assert seed is not None
        assert seed.password == SECRET
        assert seed.marks_removed == (("DJANGO_ADMIN_PASSWORD_FILE",) if mark_removed else ())

    @pytest.mark.parametrize(
        "content",
        [
            SECRET + "\n\n",
            SECRET + "\r",
            SECRET + "\r\r\n",
            SECRET[:4] + "\t" + SECRET[4:],
            SECRET[:4] + "\x00" + SECRET[4:],
            SECRET[:4] + "\x1b" + SECRET[4:],
            SECRET[:4] + "\x85" + SECRET[4:],  # a C1 control: NEL
            "\n" + SECRET,
        ],
        ids=["two-LF", "CR", "CR-CRLF", "tab", "NUL", "ESC", "NEL", "leading-LF"],
    )
    def test_any_other_control_character_is_refused_naming_the_file(
        self, tmp_path: Path, content: str
    ) -> None:
        """A value that would silently differ from the one typed is a problem that names the
        variable and the file, never the content."""
        path = tmp_path / "password"
        path.write_bytes(content.encode())
        seed, problems = read(
            {"DJANGO_ADMIN_USERNAME": "boss", "DJANGO_ADMIN_PASSWORD_FILE": str(path)}
        )
        assert seed is None
        assert f"DJANGO_ADMIN_PASSWORD_FILE='{path}' holds a control character" in problems[0]
        assert not any(SECRET[:4] in p for p in problems)

    def test_every_seed_value_can_come_from_a_file(self, tmp_path: Path) -> None:
        """Username, email and extra fields have _FILE twins too."""
        for name, value in [("user", "boss\n"), ("mail", "b@example.org\n"), ("dn", "Boss")]:
            (tmp_path / name).write_text(value)
        (tmp_path / "pw").write_text(SECRET)
        seed, problems = read(
            {
                "DJANGO_ADMIN_USERNAME_FILE": str(tmp_path / "user"),
                "DJANGO_ADMIN_PASSWORD_FILE": str(tmp_path / "pw"),
                "DJANGO_ADMIN_EMAIL_FILE": str(tmp_path / "mail"),
                "DJANGO_ADMIN_DISPLAY_NAME_FILE": str(tmp_path / "dn"),
            }
        )
        assert problems == []
        assert seed == AdminSeed("boss", SECRET, "b@example.org", {"display_name": "Boss"})

    def test_both_forms_set(self, tmp_path: Path) -> None:
        """A variable and its _FILE twin together are ambiguous: both are named."""
        path = tmp_path / "pw"
        path.write_text(SECRET)
        seed, problems = read(
            {
                "DJANGO_ADMIN_USERNAME": "boss",
                "DJANGO_ADMIN_PASSWORD": SECRET,
                "DJANGO_ADMIN_PASSWORD_FILE": str(path),
            }
        )
        assert seed is None
        assert any(
            "DJANGO_ADMIN_PASSWORD and DJANGO_ADMIN_PASSWORD_FILE are both set" in p
            for p in problems
        )
        assert not any(SECRET in p for p in problems)

    @pytest.mark.parametrize("kind", ["missing", "directory", "not_utf8"])
    def test_unreadable_file_names_the_path_never_the_content(
        self, tmp_path: Path, kind: str
    ) -> None:
        """The problem names the variable and the path; a file's bytes are never echoed."""
        path = tmp_path / "pw"
        if kind == "directory":
            path.mkdir()
        elif kind == "not_utf8":
            path.write_bytes(b"\xff\xfe" + SECRET.encode())
        _, problems = read({"DJANGO_ADMIN_USERNAME": "b", "DJANGO_ADMIN_PASSWORD_FILE": str(path)})
        assert any(f"DJANGO_ADMIN_PASSWORD_FILE='{path}' cannot be read" in p for p in problems)
        assert not any(SECRET in p for p in problems)


def special_file(tmp_path: Path, kind: str) -> str:
    """A path that is not a secret file, of the kind a careless mount gives."""
    if kind == "fifo":
        os.mkfifo(tmp_path / "fifo")  # open() for reading would block without a writer
        return str(tmp_path / "fifo")
    if kind == "directory":
        return str(tmp_path)
    if kind == "too_big":
        (tmp_path / "big").write_bytes(b"x" * (SECRET_FILE_MAX + 1))
        return str(tmp_path / "big")
    return "/dev/zero"  # endless: read() would fill memory


SPECIAL_FILES = ["dev_zero", "fifo", "directory", "too_big"]


class TestSecretFileKinds:
    @pytest.mark.parametrize("kind", SPECIAL_FILES)
    def test_refused_within_a_second(self, tmp_path: Path, kind: str) -> None:
        """Only a regular file of bounded size is read; anything else is a problem at once."""
        env = {
            "DJANGO_ADMIN_USERNAME": "b",
            "DJANGO_ADMIN_PASSWORD_FILE": special_file(tmp_path, kind),
        }
        outcome: list[tuple[AdminSeed | None, list[str]]] = []
        worker = threading.Thread(target=lambda: outcome.append(read(env)), daemon=True)
        worker.start()
        worker.join(1.0)
        assert outcome, f"reading a {kind} did not finish within a second"
        [(seed, problems)] = outcome
        assert seed is None
        assert problems[0].startswith(
            f"DJANGO_ADMIN_PASSWORD_FILE={env['DJANGO_ADMIN_PASSWORD_FILE']!r}"
        )

    def test_a_symlink_to_a_regular_file_is_read(self, tmp_path: Path) -> None:
        """Kubernetes mounts each key as a symlink (..data/password): that is fine."""
        (tmp_path / "real").write_text(SECRET + "\n")
        (tmp_path / "link").symlink_to(tmp_path / "real")
        seed, problems = read(
            {"DJANGO_ADMIN_USERNAME": "b", "DJANGO_ADMIN_PASSWORD_FILE": str(tmp_path / "link")}
        )
        assert problems == []
        assert seed is not None
        assert seed.password == SECRET

    @pytest.mark.parametrize("kind", SPECIAL_FILES)
    def test_cli_exits_78(self, tmp_path: Path, kind: str) -> None:
        """The real CLI: one config_invalid event, 78, no hang (the timeout would raise)."""
        env = base_env(
            ENTRYPOINT_STEPS="admin",
            DJANGO_ADMIN_USERNAME="b",
            DJANGO_ADMIN_PASSWORD_FILE=special_file(tmp_path, kind),
        )
        result = run_cli(env=env, timeout=30)
        assert result.returncode == 78
        assert [e["event"] for e in result.events] == ["config_invalid"]
        assert "DJANGO_ADMIN_PASSWORD_FILE" in result.last()["error"]


class TestOnlyWhenTheStepRuns:
    @pytest.mark.parametrize("steps", ["none", "wait,hooks"])
    def test_no_admin_secret_is_read_without_the_admin_step(
        self, tmp_path: Path, steps: str
    ) -> None:
        """An app container beside an initContainer that ensures the admin: the secret is
        mounted only there, and the same variables must not stop this one."""
        env = base_env(
            ENTRYPOINT_STEPS=steps,
            ENTRYPOINT_HOOKS_DIR=str(tmp_path / "no-hooks"),
            DJANGO_ADMIN_USERNAME="b",
            DJANGO_ADMIN_PASSWORD_FILE=str(tmp_path / "mounted-in-the-init-container-only"),
            DJANGO_ADMIN_EMIAL="a typo no step reads",
        )
        result = run_cli(env=env, timeout=60)
        assert result.returncode == 0, result.stderr
        assert not any("DJANGO_ADMIN" in str(e) for e in result.events)

    def test_settings_have_no_seed_without_the_step(self) -> None:
        env = {"DJANGO_SETTINGS_MODULE": "x.settings", "DJANGO_ADMIN_USERNAME": "boss"}
        assert config.load(env, steps="wait").admin is None
        with pytest.raises(ConfigError, match="no password is"):
            config.load(env, steps="wait,admin")


class TestInSettings:
    def test_password_not_in_repr(self) -> None:
        """repr of the settings object (and of the seed) never shows the password."""
        settings = config.load(
            {
                "DJANGO_SETTINGS_MODULE": "x.settings",
                "DJANGO_ADMIN_USERNAME": "boss",
                "DJANGO_ADMIN_PASSWORD": SECRET,
            }
        )
        assert settings.admin is not None
        assert settings.admin.password == SECRET
        assert "boss" in repr(settings)
        assert SECRET not in repr(settings)
        assert SECRET not in str(settings)

    def test_admin_problems_reported_with_the_others(self, tmp_path: Path) -> None:
        """One ConfigError lists the admin problems together with every other bad variable."""
        (tmp_path / "pw").write_text(SECRET)
        with pytest.raises(ConfigError) as caught:
            config.load(
                {
                    "DJANGO_SETTINGS_MODULE": "x.settings",
                    "ENTRYPOINT_WAIT_TIMEOUT": "soon",
                    "ENTRYPOINT_ADMIN_UPDATE": "sometimes",
                    "DJANGO_ADMIN_USERNAME": "boss",
                    "DJANGO_ADMIN_PASSWORD": SECRET,
                    "DJANGO_ADMIN_PASSWORD_FILE": str(tmp_path / "pw"),
                }
            )
        text = str(caught.value)
        for name in ("ENTRYPOINT_WAIT_TIMEOUT", "ENTRYPOINT_ADMIN_UPDATE", "PASSWORD_FILE"):
            assert name in text
        assert SECRET not in text
