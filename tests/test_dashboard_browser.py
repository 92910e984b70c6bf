"""A real browser: log in, open the dashboard, see a new probe arrive without a reload.

The server is a real process (the web server `runbot` runs, on its own SQLite file);
the probe is recorded inside it by the real HistoryRecorder, so the row goes through
the database, the channel layer, the websocket consumer and the page's script.
Screenshots land in artifacts/.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import chromium_page
from tests.subprocesses import ROOT, bot_env, free_port, manage, wait_for_port

pytestmark = pytest.mark.browser

ARTIFACTS = ROOT / "artifacts"
PASSWORD = "a-long-test-password-9"


class DashboardServer:
    def __init__(self, env: dict[str, str], port: int) -> None:
        self.env, self.port = env, port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "dashboard_server.py"), str(self.port)],
            env=self.env,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        wait_for_port(self.port, proc=self.proc)

    def record(self, **row: object) -> None:
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(row) + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "recorded"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


@pytest.fixture
def server(local_dir: Path) -> Iterator[DashboardServer]:
    env = bot_env(local_dir, DJANGO_SUPERUSER_PASSWORD=PASSWORD)
    made = manage(env, "createsuperuser", "--noinput", "--username", "streamer", "--email", "s@example.com")
    assert made.returncode == 0, made.stderr
    server = DashboardServer(env, free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def page(server: DashboardServer) -> Iterator[object]:
    # A phone-sized window: the dashboard must read there too.
    with chromium_page(viewport={"width": 412, "height": 900}, locale="en-US") as page:
        yield page


def log_in(page, server: DashboardServer) -> None:
    page.goto(server.url + "/")
    assert "/admin/login/" in page.url  # anonymous: sent to the login form
    page.fill("#id_username", "streamer")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(server.url + "/")


def test_a_new_probe_appears_live_without_a_reload(server: DashboardServer, page) -> None:
    from playwright.sync_api import expect

    log_in(page, server)
    expect(page.locator("#live-status")).to_have_text("Live", timeout=15_000)
    expect(page.locator('svg.heartbeat[data-heartbeat="local"] rect')).to_have_count(0)
    page.evaluate("window.__sameDocument = true")

    server.record(kind="tier_event", tier="local", state="up")  # it answered once: a failure is downtime
    server.record(
        kind="probe", tier="local", ok=False, latency_ms=None, error="BrowserProbeError", detail="refused"
    )
    server.record(kind="tier_event", tier="local", state="down", error="BrowserProbeError")

    beat = page.locator('svg.heartbeat[data-heartbeat="local"] rect.beat.down')
    expect(beat).to_have_count(1, timeout=10_000)
    expect(beat.locator("title")).to_contain_text("down · BrowserProbeError: refused")
    # The badge is redrawn by the server, which knows the tier had answered before.
    expect(page.locator('[data-state-for="local"]')).to_have_text("Down", timeout=20_000)
    expect(page.locator("#live-feed li").first).to_contain_text("local is now Down (BrowserProbeError)")
    # The panels refresh from the server a moment later: the incident is listed, still ongoing.
    expect(page.locator("table.incidents tr.ongoing")).to_contain_text("BrowserProbeError", timeout=20_000)
    assert page.evaluate("window.__sameDocument") is True  # never reloaded
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-live.png"), full_page=True)


def test_the_page_says_when_the_socket_drops_and_reconnects(server: DashboardServer, page) -> None:
    from playwright.sync_api import expect

    log_in(page, server)
    status = page.locator("#live-status")
    expect(status).to_have_text("Live", timeout=15_000)

    server.stop()
    expect(status).to_contain_text("Connection lost", timeout=10_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-offline.png"))

    server.start()
    expect(status).to_contain_text("reconnected", timeout=40_000)
    server.record(kind="probe", tier="openai", ok=True, latency_ms=42.0)
    expect(page.locator('svg.heartbeat[data-heartbeat="openai"] rect.beat.up')).to_have_count(
        1, timeout=10_000
    )


class Receiver:
    """A JSON webhook on 127.0.0.1 that records what it receives (an alert's stand-in receiver)."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        received: list[dict[str, object]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def no_horizontal_overflow(page) -> None:
    """Nothing wider than the screen, and no table clipped or scrolled sideways (rows stack)."""
    widths = page.evaluate(
        """() => ({
          page: document.documentElement.scrollWidth,
          screen: window.innerWidth,
          tables: [...document.querySelectorAll('.table-wrap')].map(w => [w.scrollWidth, w.clientWidth]),
        })"""
    )
    assert widths["page"] <= widths["screen"], widths
    assert widths["tables"], "no table on the page"
    assert all(scroll <= client for scroll, client in widths["tables"]), widths["tables"]


@pytest.mark.parametrize("width", [1280, 390])
def test_first_boot_outage_pause_and_alert_at_desktop_and_phone_widths(
    server: DashboardServer, width: int
) -> None:
    """Screenshots of what a streamer meets: a first boot without LM Studio, an outage, a pause, an alert."""
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    receiver = Receiver()
    with (
        contextlib.closing(receiver),
        chromium_page(viewport={"width": width, "height": 900}, locale="en-US") as page,
    ):
        log_in(page, server)

        # A first boot on a fresh install, LM Studio not running, no OpenAI key.
        server.record(
            kind="boot",
            mode="auto",
            found=False,
            endpoint="http://localhost:1234/v1",
            error="ConnectError",
        )
        server.record(kind="tier_event", tier="local", state="down", error="ConnectError", detail="at start")
        server.record(kind="tier_event", tier="openai", state="not_configured", detail="at start")
        page.goto(server.url + "/")
        local = page.locator('[data-state-for="local"]')
        expect(local).to_have_text("Not detected")
        expect(local).to_have_class(re.compile(r"\btone-grey\b"))
        expect(page.locator('[data-advice-for="local"]')).to_contain_text(
            "LM Studio not detected: start it, or set LLM_MODE=disabled."
        )
        expect(page.locator('[data-state-for="openai"]')).to_have_text("Not configured")
        expect(page.locator(".incident-summary")).to_contain_text("0 incidents")
        expect(page.locator("table.boots")).to_contain_text("not found")
        page.screenshot(path=str(ARTIFACTS / f"dashboard-first-boot-{width}.png"), full_page=True)
        if width < 600:
            no_horizontal_overflow(page)

        # LM Studio started, answered, then failed: that is an outage.
        server.record(kind="tier_event", tier="local", state="up")
        server.record(kind="tier_event", tier="local", state="down", error="ReadTimeout")
        page.goto(server.url + "/")
        expect(local).to_have_text("Down")
        expect(local).to_have_class(re.compile(r"\btone-down\b"))
        expect(page.locator("table.incidents tr.ongoing")).to_contain_text("ReadTimeout")
        page.screenshot(path=str(ARTIFACTS / f"dashboard-outage-{width}.png"), full_page=True)
        if width < 600:
            no_horizontal_overflow(page)

        # Paused from the admin while a game needs the GPU: grey, and the outage is over.
        server.record(kind="tier_event", tier="local", state="paused", detail="paused from the admin")
        page.goto(server.url + "/")
        expect(local).to_have_text("Paused")
        expect(local).to_have_class(re.compile(r"\btone-grey\b"))
        expect(page.locator("table.incidents tr.ongoing")).to_have_count(0)
        page.screenshot(path=str(ARTIFACTS / f"dashboard-pause-{width}.png"), full_page=True)

        # A test alert, sent for real to a webhook on 127.0.0.1, is listed.
        server.record(kind="test_alert", url=receiver.url)
        assert [body["event"] for body in receiver.received] == ["test"]
        page.goto(server.url + "/")
        expect(page.locator("#alerts")).to_contain_text("Sent")
        page.locator("#alerts").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / f"dashboard-alert-{width}.png"), full_page=True)
        if width < 600:
            no_horizontal_overflow(page)
