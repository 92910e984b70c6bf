"""Production settings refused at start with one clear line: a missing or short SECRET_KEY."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from tests.subprocesses import ROOT, bot_env, free_port, manage


def key(length: int) -> str:
    return secrets.token_urlsafe(length)[:length]


def production(local_dir: Path, **extra: str) -> dict[str, str]:
    env = bot_env(local_dir, DEBUG="0", ALLOWED_HOSTS="bot.example.com")
    env.pop("SECRET_KEY", None)  # a developer's own
    env.update(extra)
    return env


def test_a_short_secret_key_is_refused_with_debug_off(tmp_path: Path) -> None:
    short = key(49)

    result = manage(production(tmp_path, SECRET_KEY=short), "check")

    assert result.returncode == 2
    assert result.stderr.strip() == (
        "Configuration error: SECRET_KEY: must be at least 50 characters when DEBUG is off, "
        "got 49 (set it to a long random string)"
    )
    assert short not in result.stdout + result.stderr


def test_a_50_character_key_passes_the_deployment_checks(tmp_path: Path) -> None:
    result = manage(production(tmp_path, SECRET_KEY=key(50)), "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_a_missing_secret_key_is_refused_with_debug_off(tmp_path: Path) -> None:
    result = manage(production(tmp_path), "check")

    assert result.returncode == 2
    assert result.stderr.strip() == (
        "Configuration error: SECRET_KEY: required when DEBUG is off (set it to a long random string)"
    )


def test_a_short_key_is_fine_for_a_local_run(tmp_path: Path) -> None:
    result = manage(bot_env(tmp_path, DEBUG="1", SECRET_KEY="short"), "check")

    assert result.returncode == 0, result.stderr


def test_the_web_process_says_it_in_one_line_too(tmp_path: Path) -> None:
    # uvicorn imports serdabot.asgi, not manage.py: the same line, no traceback.
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "serdabot.asgi:application", "--port", str(free_port())],
        env=production(tmp_path, SECRET_KEY="short"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert result.stderr.strip() == (
        "Configuration error: SECRET_KEY: must be at least 50 characters when DEBUG is off, "
        "got 5 (set it to a long random string)"
    )


def test_shutdown_grace_defaults_to_ten_seconds_and_is_checked(tmp_path: Path) -> None:
    assert settings.SHUTDOWN_GRACE == 10.0

    result = manage(bot_env(tmp_path, SHUTDOWN_GRACE="soon"), "check")

    assert result.returncode == 2
    assert result.stderr.strip() == "Configuration error: SHUTDOWN_GRACE: expected a number, got 'soon'"
