"""`manage.py chat` end to end, as a real process on its own database."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from chatbridge.controls import TEXTS
from tests.fakes.openai_server import DEFAULT_ANSWER, FakeOpenAI
from tests.subprocesses import ROOT, bot_env, manage


def phrases(local_dir: Path, intent: str) -> set[str]:
    with sqlite3.connect(local_dir / "db.sqlite3") as db:
        rows = db.execute(
            "SELECT p.text FROM fallbacks_phrase p JOIN fallbacks_intent i ON p.intent_id = i.id "
            "WHERE i.slug = ? AND p.enabled",
            (intent,),
        ).fetchall()
    return {text for (text,) in rows}


def test_it_answers_ask_from_the_database_when_no_llm_listens(local_dir: Path) -> None:
    result = manage(bot_env(local_dir), "chat", "--json", "-m", "!ask c'est quoi Python ?")

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["source"] == "fallback"
    assert data["intent"] == "ask"
    assert data["reply"].startswith("@viewer ")
    assert data["reply"].removeprefix("@viewer ") in phrases(local_dir, "ask")
    assert isinstance(data["latency_ms"], float)
    assert (data["fallback_intent"], data["first_token_ms"]) == ("ask", None)
    # Boot detection found nothing: the local tier is skipped, with no network call.
    assert all(tier["outcome"] == "skipped" for tier in data["tiers"])


def test_it_answers_lines_from_stdin_one_json_object_each(local_dir: Path) -> None:
    result = manage(
        bot_env(local_dir), "chat", "--json", "--user", "alice", input="bonjour le chat\n!ask\nserdabot?\n"
    )

    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [line["reply"] is None for line in lines] == [True, False, False]
    assert lines[0] == {
        "reply": None,
        "source": None,
        "intent": None,
        "latency_ms": None,
        "fallback_intent": None,
        "first_token_ms": None,
        "tiers": [],
    }
    assert "!ask" in lines[1]["reply"]  # the usage hint
    assert (lines[1]["fallback_intent"], lines[1]["tiers"]) == ("usage", [])
    assert (lines[2]["intent"], lines[2]["fallback_intent"]) == ("chill", "chill")
    assert lines[2]["reply"].removeprefix("@alice ") in phrases(local_dir, "chill")


def test_llm_mode_disabled_answers_without_looking_for_a_model(local_dir: Path) -> None:
    result = manage(bot_env(local_dir, LLM_MODE="disabled"), "chat", "--json", "-m", "!ask ping")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["source"] == "fallback"


def test_a_bad_setting_stops_start_up_with_one_clear_line(local_dir: Path) -> None:
    result = manage(bot_env(local_dir, LLM_MODE="sometimes"), "chat", "-m", "!ask ping")

    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "LLM_MODE" in lines[0]


def test_it_answers_from_an_openai_compatible_server_at_llm_endpoint(local_dir: Path) -> None:
    with FakeOpenAI(models=("lm-studio-model",)) as server:
        result = manage(
            bot_env(local_dir, LLM_ENDPOINT=server.url), "chat", "--json", "-m", "!ask c'est quoi Python ?"
        )

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["source"] == "local"
    assert data["reply"] == f"@viewer {DEFAULT_ANSWER}"
    assert data["fallback_intent"] is None
    assert isinstance(data["first_token_ms"], float)
    assert [(t["tier"], t["outcome"]) for t in data["tiers"]] == [("local", "answered")]
    # The model is the first one the server lists, found by boot detection.
    assert "lm-studio-model" in result.stderr
    assert [r.body["model"] for r in server.requests if r.method == "POST" and not r.is_probe] == [
        "lm-studio-model"
    ]


def failing_model_env(local_dir: Path, server: FakeOpenAI) -> dict[str, str]:
    # enabled: the cascade tries the model even though boot detection saw the 500 too.
    return bot_env(local_dir, LLM_ENDPOINT=server.url, LLM_MODE="enabled", LLM_BREAKER_FAILURES="10")


def test_it_says_which_phrase_set_answered_a_failed_cascade(local_dir: Path) -> None:
    with FakeOpenAI() as server:
        server.set_fault("http500")
        result = manage(
            failing_model_env(local_dir, server), "chat", "--json", input="!ask ça marche ?\nsalut serdabot\n"
        )

    assert result.returncode == 0, result.stderr
    ask, mention = (json.loads(line) for line in result.stdout.strip().splitlines())
    assert (ask["intent"], ask["fallback_intent"]) == ("ask", "ask_error")
    assert ask["reply"].removeprefix("@viewer ") in phrases(local_dir, "ask_error")
    # A mention whose cascade failed is answered from chill, never ask_error or ask_timeout.
    assert (mention["intent"], mention["fallback_intent"]) == ("chill", "chill")
    assert mention["reply"].removeprefix("@viewer ") in phrases(local_dir, "chill")
    for line in (ask, mention):
        assert line["first_token_ms"] is None
        assert [(t["tier"], t["outcome"], t["error"]) for t in line["tiers"]] == [
            ("local", "failed", "HTTP500")
        ]


def test_the_text_output_names_the_phrase_set_and_the_tiers(local_dir: Path) -> None:
    with FakeOpenAI() as server:
        server.set_fault("http500")
        result = manage(failing_model_env(local_dir, server), "chat", input="!ask ça marche ?\n")

    assert result.returncode == 0, result.stderr
    reply, facts, tiers = result.stdout.strip().splitlines()
    assert reply.removeprefix("@viewer ") in phrases(local_dir, "ask_error")
    assert facts.startswith("  [fallback ask_error, ask, ") and facts.endswith(" ms]")
    assert tiers.startswith("  tiers: local failed HTTP500 ")


def test_moderator_lets_the_console_try_the_controls(local_dir: Path) -> None:
    lines = "!serdabot llm off\n!serdabot status\n!ask c'est quoi Python ?\n!serdabot on\n"

    viewer = manage(bot_env(local_dir), "chat", "--json", input=lines)
    moderator = manage(bot_env(local_dir), "chat", "--json", "--moderator", input=lines)

    assert viewer.returncode == 0 and moderator.returncode == 0, viewer.stderr + moderator.stderr
    as_viewer = [json.loads(line) for line in viewer.stdout.strip().splitlines()]
    assert [line["reply"] is None for line in as_viewer] == [True, True, False, True]
    as_moderator = [json.loads(line) for line in moderator.stdout.strip().splitlines()]
    assert [line["source"] for line in as_moderator] == ["bot", "bot", "fallback", "bot"]
    assert as_moderator[0]["reply"] == f"@viewer {TEXTS['fr']['llm_off']}"
    assert "modèle éteint" in as_moderator[1]["reply"]
    # Saved in the console's database: the setting outlives the run.
    with sqlite3.connect(local_dir / "db.sqlite3") as db:
        [(llm_enabled,)] = db.execute(
            "SELECT llm_enabled FROM chatbridge_channelsettings "
            "WHERE platform = 'console' AND channel = 'console'"
        ).fetchall()
    assert not llm_enabled


class Terminal:
    """`manage.py chat` at a terminal: stdin and stdout on a pseudo-terminal, stderr in a file."""

    def __init__(self, env: dict[str, str], stderr: Path, *args: str) -> None:
        self.stderr = stderr
        master, slave = pty.openpty()
        self.master = master
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "chat", *args],
            env=env,
            cwd=ROOT,
            stdin=slave,
            stdout=slave,
            stderr=stderr.open("w"),
            start_new_session=True,  # a signal sent to the tests' own group does not reach it
        )
        os.close(slave)
        self.screen = ""
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:  # EIO: the process has closed its end
                return
            if not data:
                return
            with self.lock:
                self.screen += data.decode(errors="replace")

    def shown(self) -> str:
        with self.lock:
            return self.screen

    def wait_for(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.shown():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"{text!r} not shown; screen: {self.shown()!r}; log: {self.log()}")
            time.sleep(0.05)

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def log(self) -> str:
        return self.stderr.read_text()

    def exit_code(self, within: float = 15) -> int:
        try:
            return self.proc.wait(within)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            os.close(self.master)


BANNER = "Chatting with the bot as viewer: type a message and press Enter. Ctrl-C or Ctrl-D quits"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) ", re.M)


def test_at_a_terminal_a_banner_says_how_to_quit_and_ctrl_c_does(local_dir: Path, tmp_path: Path) -> None:
    terminal = Terminal(bot_env(local_dir), tmp_path / "stderr.log")
    terminal.wait_for(BANNER + "; --verbose shows the log.\r\n> ")
    terminal.type("!ask c'est quoi Python ?\n")
    terminal.wait_for("@viewer ")
    terminal.wait_for("\r\n> ")

    terminal.proc.send_signal(signal.SIGINT)

    assert terminal.exit_code() == 0, terminal.log()
    assert "Traceback" not in terminal.log() + terminal.shown()
    # The log stays out of the conversation: no line of it on the terminal, and on stderr only
    # start-up warnings (no LLM found), none of the INFO lines each message brings.
    assert not LOG_LINE.search(terminal.shown())
    assert LOG_LINE.findall(terminal.log()) == ["WARNING"]


def test_verbose_shows_the_log_on_stderr_only(local_dir: Path, tmp_path: Path) -> None:
    terminal = Terminal(bot_env(local_dir), tmp_path / "stderr.log", "--verbose")
    terminal.wait_for(BANNER + ".\r\n> ")
    terminal.type("!ask c'est quoi Python ?\n")
    terminal.wait_for("@viewer ")

    terminal.type("\x04")  # Ctrl-D: the end of the input

    assert terminal.exit_code() == 0, terminal.log()
    assert not LOG_LINE.search(terminal.shown())
    assert "INFO chatbridge.handler [ASK]" in terminal.log()


def test_ctrl_c_while_a_reply_is_awaited_quits_cleanly(local_dir: Path, tmp_path: Path) -> None:
    with FakeOpenAI() as server:
        # Every clock longer than the test: the reply is still awaited when Ctrl-C comes.
        env = bot_env(
            local_dir,
            LLM_ENDPOINT=server.url,
            LLM_MODE="enabled",
            LLM_DEADLINE="300",
            LLM_TIMEOUT="300",
            LLM_FIRST_TOKEN_TIMEOUT="300",
        )
        terminal = Terminal(env, tmp_path / "stderr.log")
        terminal.wait_for("> ")
        server.set_fault("hang")
        terminal.type("!ask c'est quoi Python ?\n")
        deadline = time.monotonic() + 30
        while not [r for r in server.requests if r.method == "POST" and not r.is_probe]:
            assert time.monotonic() < deadline, f"the question never reached the model: {terminal.log()}"
            time.sleep(0.05)

        terminal.proc.send_signal(signal.SIGINT)

        assert terminal.exit_code() == 0, terminal.log()
    assert "@viewer" not in terminal.shown()  # it quit waiting, not answered
    assert "Traceback" not in terminal.log() + terminal.shown()
