"""The `.env` file: read at start by manage.py and serdabot.asgi, under the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from serdabot import env_file
from serdabot.env import SettingError
from serdabot.env_file import load_env_file
from tests.subprocesses import ROOT, bot_env, manage

PRINT_BOT_NAME = "from django.conf import settings; print(settings.BOT_NAME)"


@pytest.fixture
def scratch(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Names a test's file may set: unset now, and unset again after the test."""

    def forget(*names: str) -> None:
        for name in names:
            monkeypatch.setenv(name, "")  # recorded, so that the undo removes what the file set
            monkeypatch.delenv(name)

    return forget


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_it_puts_the_files_variables_into_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scratch: Callable[..., None]
) -> None:
    scratch("SERDABOT_T_PLAIN", "SERDABOT_T_QUOTED", "SERDABOT_T_EXPORTED", "SERDABOT_T_DOLLAR")
    path = write(
        tmp_path / "settings.env",
        '# a comment\nSERDABOT_T_PLAIN=one\nSERDABOT_T_QUOTED="two words"  # and a comment\n'
        "export SERDABOT_T_EXPORTED=three\nSERDABOT_T_DOLLAR=pa${HOME}ss\n",
    )
    monkeypatch.setenv("SERDABOT_ENV_FILE", str(path))

    assert load_env_file() == path
    assert os.environ["SERDABOT_T_PLAIN"] == "one"
    assert os.environ["SERDABOT_T_QUOTED"] == "two words"
    assert os.environ["SERDABOT_T_EXPORTED"] == "three"
    assert os.environ["SERDABOT_T_DOLLAR"] == "pa${HOME}ss"  # a password is kept as typed


def test_the_environment_wins_over_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scratch: Callable[..., None]
) -> None:
    scratch("SERDABOT_T_SET", "SERDABOT_T_EMPTY")
    monkeypatch.setenv("SERDABOT_T_SET", "from the environment")
    monkeypatch.setenv("SERDABOT_T_EMPTY", "")
    path = write(tmp_path / "settings.env", "SERDABOT_T_SET=from the file\nSERDABOT_T_EMPTY=from the file\n")
    monkeypatch.setenv("SERDABOT_ENV_FILE", str(path))

    load_env_file()

    assert os.environ["SERDABOT_T_SET"] == "from the environment"
    # Set, even empty, is set: an operator may blank a value on purpose.
    assert os.environ["SERDABOT_T_EMPTY"] == ""


def test_a_malformed_line_is_reported_by_number_and_the_rest_is_read(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    scratch: Callable[..., None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    scratch("SERDABOT_T_BEFORE", "SERDABOT_T_AFTER")
    path = write(
        tmp_path / "settings.env",
        "SERDABOT_T_BEFORE=1\nthis line has no equals sign hunter2-secret\nSERDABOT_T_AFTER=2\n",
    )
    monkeypatch.setenv("SERDABOT_ENV_FILE", str(path))

    load_env_file()

    assert (os.environ["SERDABOT_T_BEFORE"], os.environ["SERDABOT_T_AFTER"]) == ("1", "2")
    err = capsys.readouterr().err
    assert err == f"{path}, line 2: ignored, expected NAME=value\n"
    assert "hunter2" not in err  # the line itself may hold a secret


def test_a_file_is_read_once_per_process(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    scratch: Callable[..., None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    scratch("SERDABOT_T_ONCE")
    path = write(tmp_path / "settings.env", "SERDABOT_T_ONCE=1\nnot a setting\n")
    monkeypatch.setenv("SERDABOT_ENV_FILE", str(path))
    load_env_file()
    monkeypatch.setenv("SERDABOT_T_ONCE", "changed since")

    load_env_file()  # manage.py, then the settings module

    assert os.environ["SERDABOT_T_ONCE"] == "changed since"
    assert capsys.readouterr().err.count("ignored") == 1


def test_without_serdabot_env_file_it_reads_dot_env_at_the_project_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SERDABOT_ENV_FILE", raising=False)
    monkeypatch.setattr(env_file, "PROJECT_ROOT", tmp_path)
    assert env_file.env_file() is None  # none there: nothing to read, no error

    write(tmp_path / ".env", "")
    assert env_file.env_file() == tmp_path / ".env"


def test_a_named_file_that_is_missing_is_a_setting_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERDABOT_ENV_FILE", str(tmp_path / "nowhere.env"))
    with pytest.raises(SettingError, match=r"^SERDABOT_ENV_FILE: no file at .*nowhere\.env"):
        load_env_file()

    monkeypatch.setenv("SERDABOT_ENV_FILE", os.devnull)  # "no file", on purpose
    assert load_env_file() is None


def test_a_file_that_is_not_utf8_is_a_setting_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "settings.env"
    path.write_text("BOT_NAME=serdabot\n", encoding="utf-16")  # Notepad's "Unicode"
    monkeypatch.setenv("SERDABOT_ENV_FILE", str(path))
    with pytest.raises(SettingError, match="save it as UTF-8"):
        load_env_file()


def test_manage_py_reads_it_and_the_environment_wins(local_dir: Path, tmp_path: Path) -> None:
    path = write(tmp_path / "settings.env", "BOT_NAME=fromthefile\n")

    from_file = manage(bot_env(local_dir, SERDABOT_ENV_FILE=str(path)), "shell", "-c", PRINT_BOT_NAME)
    from_env = manage(
        bot_env(local_dir, SERDABOT_ENV_FILE=str(path), BOT_NAME="fromtheenv"), "shell", "-c", PRINT_BOT_NAME
    )

    assert from_file.returncode == 0, from_file.stderr
    assert from_file.stdout.splitlines()[-1] == "fromthefile"
    assert from_env.stdout.splitlines()[-1] == "fromtheenv"


def test_a_bad_setting_in_the_file_is_one_line_like_any_other(local_dir: Path, tmp_path: Path) -> None:
    path = write(tmp_path / "settings.env", "# mine\nno equals sign here\nMEMORY_TURNS=lots\n")

    result = manage(bot_env(local_dir, SERDABOT_ENV_FILE=str(path)), "shell", "-c", PRINT_BOT_NAME)

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"{path}, line 2: ignored, expected NAME=value",
        "Configuration error: MEMORY_TURNS: expected a whole number, got 'lots'",
    ]


def test_the_asgi_application_reads_it(local_dir: Path, tmp_path: Path) -> None:
    """uvicorn imports serdabot.asgi without manage.py."""
    path = write(tmp_path / "settings.env", "BOT_NAME=fromthefile\n")
    env = bot_env(local_dir, SERDABOT_ENV_FILE=str(path))
    env.pop("DJANGO_SETTINGS_MODULE")  # as a plain `uvicorn serdabot.asgi:application` has it

    result = subprocess.run(
        [sys.executable, "-c", f"import serdabot.asgi; {PRINT_BOT_NAME}"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "fromthefile"
