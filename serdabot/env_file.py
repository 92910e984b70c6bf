"""The `.env` file: settings written once in a file instead of exported in every shell.

manage.py, the ASGI application and the settings module each load it first thing (the file
is read once per process, by whichever comes first). A variable already in the
environment wins over the file, so a deployment's own variables are never overridden.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

from dotenv import load_dotenv
from dotenv.parser import parse_stream

from serdabot.env import SettingError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FILE_SETTING = "SERDABOT_ENV_FILE"

_loaded: set[Path] = set()


def env_file() -> Path | None:
    """The file to read: SERDABOT_ENV_FILE, else `.env` at the project root. None: no file."""
    named = os.environ.get("SERDABOT_ENV_FILE", "").strip()
    if not named:
        default = PROJECT_ROOT / ".env"
        return default if default.is_file() else None
    if named == os.devnull:
        return None  # said on purpose: no file at all (the tests' processes)
    path = Path(named).expanduser()
    if not path.is_file():
        # Named but missing is a typo: silently running without the settings would hide it.
        raise SettingError(f"{FILE_SETTING}: no file at {path} (unset it to read .env at the project root)")
    return path


def load_env_file() -> Path | None:
    """Put the file's variables into the environment, those already set excepted. The path read."""
    path = env_file()
    if path is None:
        return None
    key = path.resolve()
    if key in _loaded:
        return path
    _loaded.add(key)
    try:
        # utf-8-sig: Windows Notepad may start the file with a byte-order mark.
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise SettingError(f"{FILE_SETTING}: {path} is not UTF-8 text (save it as UTF-8)") from None
    except OSError as exc:
        raise SettingError(f"{FILE_SETTING}: cannot read {path} ({exc.strerror or exc})") from None
    # interpolate=False: a "${" inside a password or token is kept as typed, not expanded.
    load_dotenv(stream=io.StringIO(_valid_lines(text, path)), override=False, interpolate=False)
    return path


def _valid_lines(text: str, path: Path) -> str:
    """The file without the lines python-dotenv cannot parse, each one reported.

    A line is reported by its number only: it may hold a secret. Printed, not logged:
    logging is configured by the settings, which this runs before.
    """
    kept: list[str] = []
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            print(
                f"{path}, line {binding.original.line}: ignored, expected NAME=value",
                file=sys.stderr,
            )
        else:
            kept.append(binding.original.string)
    return "".join(kept)
