"""The phrase editor in a real browser: a pasted phrase is not cut before the server sees it,
the preview shows under the phrase, and long phrases wrap. Screenshots land in artifacts/."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from tests import test_dashboard_browser as dashboard_browser
from tests.test_dashboard_browser import ARTIFACTS, DashboardServer, log_in

pytestmark = pytest.mark.browser

# The dashboard's browser fixtures: a real web server process with a staff account, and a page.
server = dashboard_browser.server
page = dashboard_browser.page


def test_a_pasted_600_character_phrase_reaches_the_server_whole(server: DashboardServer, page: Any) -> None:
    """In a real browser a maxlength would cut the paste before the form saw it."""
    from playwright.sync_api import expect

    pasted = ("Une réplique collée depuis un bloc-notes, bien trop longue pour Twitch. " * 9)[:599] + "!"
    log_in(page, server)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(server.url + reverse("admin:fallbacks_phrase_add"))
    page.select_option("#id_intent", label="chill")
    page.focus("#id_text")
    page.keyboard.insert_text(pasted)  # what a paste does: user input, which a maxlength limits
    assert page.eval_on_selector("#id_text", "box => box.value.length") == 600

    page.click(".phrase-preview-button")
    reply = page.locator('.phrase-preview [data-platform="twitch"] .phrase-preview-reply')
    expect(reply).to_contain_text("@viewer42 Une réplique collée")
    shown = reply.inner_text()
    assert len(shown) <= 500 and shown.endswith("…")

    page.click("input[name=_save]")
    expect(page.locator(".errorlist")).to_contain_text("600")
    assert page.eval_on_selector("#id_text", "box => box.value") == pasted
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "phrase-too-long.png"), full_page=True)


def test_a_long_phrase_wraps_in_the_list_and_the_intent_page(server: DashboardServer, page: Any) -> None:
    from playwright.sync_api import expect

    unbroken = "https://example.com/" + "a" * 460  # one "word": nothing to break at but anywhere
    log_in(page, server)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(server.url + reverse("admin:fallbacks_phrase_add"))
    page.select_option("#id_intent", label="chill")
    page.fill("#id_text", unbroken)
    page.click("input[name=_save]")
    expect(page.locator(".messagelist .warning")).to_contain_text("480")

    page.goto(server.url + reverse("admin:fallbacks_phrase_changelist") + "?q=example.com")
    widths = page.evaluate(
        """() => ({
          page: document.documentElement.scrollWidth,
          screen: window.innerWidth,
          table: document.querySelector('#result_list').scrollWidth,
          room: document.querySelector('.results').clientWidth,
        })"""
    )
    assert widths["page"] <= widths["screen"] and widths["table"] <= widths["room"], widths
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "phrase-list-wraps.png"), full_page=True)

    page.goto(server.url + reverse("admin:fallbacks_intent_changelist") + "?q=chill")
    page.click("#result_list th.field-slug a")
    row = page.locator("tr.has_original", has=page.locator("textarea", has_text="example.com"))
    row.locator(".phrase-preview-button").click()
    expect(row.locator(".phrase-preview-reply").first).to_contain_text("@viewer42 https://example.com/")
    page.screenshot(path=str(ARTIFACTS / "phrase-inline-preview.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_an_expired_session_shows_the_error_not_the_login_page(server: DashboardServer, page: Any) -> None:
    """The preview of a signed-out admin is redirected to the login page, which fetch follows."""
    from playwright.sync_api import expect

    log_in(page, server)
    page.goto(server.url + reverse("admin:fallbacks_phrase_add"))
    page.fill("#id_text", "Bonne soirée à tous !")
    page.context.clear_cookies(name="sessionid")  # the session ran out; the CSRF cookie stays

    page.click(".phrase-preview-button")

    preview = page.locator(".phrase-preview")
    expect(preview).to_have_text("The preview could not be loaded. Reload the page and try again.")
    assert preview.locator("form, input").count() == 0
