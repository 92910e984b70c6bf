"""What every benchmark does first: Django on a fresh SQLite of its own (or a given database), migrated."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_django(local_dir: str, redis_url: str = "", *, database_url: str = "") -> None:
    """Settings from the embedded defaults (or Redis for the layer), a database in `local_dir`
    unless `database_url` names one."""
    os.environ["SERDABOT_LOCAL_DIR"] = local_dir
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    else:
        os.environ.pop("DATABASE_URL", None)
    if redis_url:
        os.environ["REDIS_URL"] = redis_url
    else:
        os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "serdabot.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
