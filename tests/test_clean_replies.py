"""A model's lone surrogate never reaches a platform: `chat --json` prints the reply, whole."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fakes.openai_server import FakeOpenAI
from tests.subprocesses import bot_env, manage


def test_chat_json_prints_an_answer_that_held_a_lone_surrogate(local_dir: Path) -> None:
    # The fake writes the surrogate as the JSON escape "\ud800", as a real server may.
    with FakeOpenAI(models=("fake-model",), answer="Voilà \ud800 une réponse\udfff complète.") as server:
        result = manage(bot_env(local_dir, LLM_ENDPOINT=server.url), "chat", "--json", "-m", "!ask test")

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["source"] == "local"
    assert data["reply"] == "@viewer Voilà une réponse complète."
