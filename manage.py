#!/usr/bin/env python
"""Django's command-line utility for SerdaBot."""

from __future__ import annotations

import os
import sys


def main() -> None:
    from serdabot.env import SettingError
    from serdabot.env_file import load_env_file

    try:
        # First: `.env` may name the settings module too, and the environment still wins.
        load_env_file()
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "serdabot.settings")
        from django.core.management import execute_from_command_line

        execute_from_command_line(sys.argv)
    except SettingError as exc:
        # One clear line naming the setting, not a traceback.
        print(f"Configuration error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
