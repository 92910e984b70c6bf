"""Live switches reaching a second process.

A real `manage.py chat --json` session, on its own SQLite file and a fake local LLM, answers
from the model. This process saves the live switches into that database, as the admin's
process would: within seconds the session stops calling the model (a pause) and answers in
the fallback mode the row names; unpaused, it calls the model again. No restart, no Redis:
the bot's own watcher reads the row.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.sqlite3.base import DatabaseWrapper as SQLiteWrapper

from fallbacks.services import MINIMAL_REPLY
from llm.models import LiveSwitches, TierEvent
from tests.fakes.openai_server import DEFAULT_ANSWER, FakeOpenAI
from tests.subprocesses import ChatSession, bot_env

pytestmark = pytest.mark.timeout(120)

# The bot's watcher reads the row every SWITCH_POLL (2 s) seconds: room for a loaded CI machine.
APPLIED_WITHIN = 20.0
BOT_DB = "bot"


@contextlib.contextmanager
def bot_database(local_dir: Path, blocker: Any) -> Iterator[str]:
    """A database alias of this process for the bot's SQLite file, as long as the block lasts.

    A connection of its own: the test database (in memory, on the default alias) is left alone.
    """
    # SQLite whatever this run's database is: the bot process runs on the embedded default.
    bot_settings = {
        **connections[DEFAULT_DB_ALIAS].settings_dict,
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(local_dir / "db.sqlite3"),
        "OPTIONS": {},
        **dict.fromkeys(("USER", "PASSWORD", "HOST", "PORT"), ""),
    }
    wrapper = SQLiteWrapper(bot_settings, BOT_DB)
    with blocker.unblock():
        connections[BOT_DB] = wrapper
        try:
            yield BOT_DB
        finally:
            wrapper.close()
            del connections[BOT_DB]


def until(check: Callable[[], dict[str, Any] | None], what: str) -> dict[str, Any]:
    """Ask `check` again until it returns a reply; fail after APPLIED_WITHIN seconds."""
    give_up = time.monotonic() + APPLIED_WITHIN
    while True:
        found = check()
        if found is not None:
            return found
        if time.monotonic() > give_up:
            raise AssertionError(f"not within {APPLIED_WITHIN} s: {what}")
        time.sleep(0.2)


def test_a_pause_saved_here_reaches_the_bot_process_and_so_does_the_unpause(
    local_dir: Path, tmp_path: Path, django_db_blocker: Any
) -> None:
    def save(**values: Any) -> None:
        with bot_database(local_dir, django_db_blocker) as alias:
            row = LiveSwitches.objects.using(alias).order_by("pk").first() or LiveSwitches()
            for name, value in values.items():
                setattr(row, name, value)
            row.save(using=alias)

    def reply_from(source: str) -> Callable[[], dict[str, Any] | None]:
        def check() -> dict[str, Any] | None:
            reply = session.say("!ask c'est quoi Python ?")
            return reply if reply["source"] == source else None

        return check

    with FakeOpenAI() as model:
        env = bot_env(local_dir, LLM_ENDPOINT=model.url, LLM_MODEL="fake-model", LLM_PROBE_INTERVAL="60")
        session = ChatSession(env, tmp_path / "chat.log")
        try:
            first = session.say("!ask c'est quoi Python ?")
            assert first["source"] == "local" and DEFAULT_ANSWER in first["reply"], first

            save(paused=True, fallback_mode="minimal")
            paused = until(reply_from("fallback"), "the pause applied in the bot process")
            calls = model.chat_requests
            again = session.say("!ask et maintenant ?")

            save(paused=False, fallback_mode="")
            back = until(reply_from("local"), "the unpause applied in the bot process")
        finally:
            code = session.close()
        assert code == 0, (tmp_path / "chat.log").read_text()

    # Paused: no model tried, the fallback mode the row names, and the model got nothing more.
    assert paused["tiers"] == [] and paused["reply"] == f"@viewer {MINIMAL_REPLY}"
    assert (again["source"], again["tiers"], again["reply"]) == ("fallback", [], f"@viewer {MINIMAL_REPLY}")
    assert model.chat_requests == calls + 1  # only the answer after the unpause
    assert DEFAULT_ANSWER in back["reply"]
    with bot_database(local_dir, django_db_blocker) as alias:
        events = TierEvent.objects.using(alias).filter(tier="local").order_by("created", "pk")
        states = list(events.values_list("state", "detail"))
    assert states == [
        ("up", "at start"),
        ("paused", "paused from the admin"),
        ("up", "unpaused in the admin"),
        ("stopped", "the bot stopped"),  # the console run ended
    ]
