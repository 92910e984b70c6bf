"""The issue's "done when", in a real browser: from a fresh install to a reply in Twitch chat.

A real `runbot` process on its embedded defaults (its own SQLite, no platform variables but
the test double's addresses), a real Chromium speaking French, and the fake Twitch standing
in for id.twitch.tv, Helix and EventSub. The streamer logs in, pastes the application's id
and secret, connects the bot account and a channel with the buttons, and a viewer's `!ask`
is answered in that channel, without a restart and without a terminal.
Screenshots land in artifacts/.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import chromium_page
from tests.fakes.fake_twitch import (
    BOT_ID,
    BOT_LOGIN,
    BOT_SCOPES,
    CLIENT_ID,
    CLIENT_SECRET,
    STREAMER,
    FakeTwitch,
    chat_message,
    serving_in_thread,
)
from tests.subprocesses import bot_env, free_port, manage, start_runbot, wait_for_port
from tests.test_dashboard_browser import ARTIFACTS, PASSWORD

pytestmark = pytest.mark.browser


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def fake() -> Iterator[FakeTwitch]:
    with serving_in_thread() as fake:
        yield fake


@pytest.fixture
def bot(local_dir: Path, fake: FakeTwitch) -> Iterator[str]:
    env = bot_env(
        local_dir,
        DJANGO_SUPERUSER_PASSWORD=PASSWORD,
        TWITCH_API_URL=f"{fake.base}/helix/",
        TWITCH_AUTH_URL=f"{fake.base}/",
        TWITCH_EVENTSUB_URL=f"ws://127.0.0.1:{fake.port}/ws",
    )
    made = manage(env, "createsuperuser", "--noinput", "--username", "streamer", "--email", "s@example.com")
    assert made.returncode == 0, made.stderr
    port = free_port()
    proc = start_runbot(env, port)
    try:
        wait_for_port(port, proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            output, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        # Whatever the bot logged, no secret of the setup is in it.
        for secret in (CLIENT_SECRET, *fake.user_tokens, *fake.refresh_tokens):
            assert secret not in output


@pytest.fixture
def page(bot: str) -> Iterator[Any]:
    with chromium_page(locale="fr-FR") as page:
        yield page


def chat_subscribed(fake: FakeTwitch, broadcaster_id: str) -> bool:
    return any(
        s["type"] == "channel.chat.message" and s["condition"]["broadcaster_user_id"] == broadcaster_id
        for s in fake.subscriptions
    )


def test_a_streamer_connects_twitch_in_french_and_the_bot_answers_in_chat(
    bot: str, page: Any, fake: FakeTwitch
) -> None:
    from playwright.sync_api import expect

    page.goto(bot + "/twitch/connect/")
    assert "/admin/login/" in page.url  # staff only
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    page.fill("#id_username", "streamer")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(bot + "/twitch/connect/")
    expect(page.locator("h1")).to_have_text("Se connecter avec Twitch")
    expect(page.locator("#redirect-url")).to_have_text(bot + "/twitch/callback/")
    expect(page.locator("#bot-state")).to_contain_text("Non connecté")

    # 1. The application's id and secret, the only things typed.
    page.fill("#id_client_id", CLIENT_ID)
    page.fill("#id_client_secret", CLIENT_SECRET)
    page.click("form[action='/twitch/app/'] button[type=submit]")
    expect(page.locator("#secret-state")).to_contain_text("défini")
    assert CLIENT_SECRET not in page.content()

    # 2. The bot account, signed in on Twitch: one click, approved there, back here.
    fake.sign_in_as((BOT_ID, BOT_LOGIN))
    page.click("#connect-bot")
    page.wait_for_url(bot + "/twitch/connect/")
    expect(page.locator("#bot-state")).to_contain_text(f"Connecté en tant que {BOT_LOGIN}")
    asked = fake.authorizations[-1]
    assert asked["scope"].split() == BOT_SCOPES and asked["state"]

    # 3. The broadcaster authorizes their channel: the row comes from Twitch's answer.
    fake.sign_in_as(STREAMER)
    page.click("#authorize-channel")
    page.wait_for_url(bot + "/twitch/connect/")
    assert fake.authorizations[-1]["scope"] == "channel:bot"
    expect(page.locator(f"#channel-{STREAMER[1]}")).to_contain_text("autorisé")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "twitch-connect-fr.png"), full_page=True)

    # The running bot started Twitch on its own and joined the channel: a viewer asks.
    wait_until(lambda: chat_subscribed(fake, STREAMER[0]), "the channel's chat subscription")
    message = chat_message("!ask c'est quoi un GPU ?")
    fake.call(fake.push(message))
    parent = message["payload"]["event"]["message_id"]
    replies = wait_until(lambda: fake.replies_to(parent), "a reply in chat")
    assert len(replies) == 1 and replies[0]["broadcaster_id"] == STREAMER[0]
    assert replies[0]["sender_id"] == BOT_ID

    # Paused from the page: the subscription goes, live.
    page.click(f"#channel-{STREAMER[1]} form[action$='/joined/'] button")
    wait_until(lambda: not chat_subscribed(fake, STREAMER[0]), "the channel's unsubscription")
    expect(page.locator(f"#channel-{STREAMER[1]}")).to_contain_text("en pause")
