"""Login throttling on the admin's login form (the dashboard's too): by user name and by address."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from tests.subprocesses import bot_env, uvicorn_serving

PASSWORD = "a-long-test-password-42"
LIMIT = 5  # AXES_FAILURE_LIMIT
ATTACKER = "203.0.113.7"
ELSEWHERE = "198.51.100.20"


@pytest.fixture
def streamer(db: None) -> User:
    return User.objects.create_superuser("streamer", "s@example.com", PASSWORD)


def log_in(username: str, password: str, address: str) -> tuple[Client, Any]:
    """A fresh browser posting the real admin login form from `address`."""
    client = Client(REMOTE_ADDR=address)
    form = {"username": username, "password": password, "next": "/"}
    return client, client.post("/admin/login/?next=/", form)


def logged_in(client: Client) -> bool:
    return client.get("/").status_code == 200


def fail(times: int, *, username: str = "streamer", address: str = ATTACKER) -> list[int]:
    return [log_in(username, "wrong-password", address)[1].status_code for _ in range(times)]


def test_the_right_password_works_after_fewer_failures_than_the_limit(streamer: User) -> None:
    assert fail(LIMIT - 1) == [200] * (LIMIT - 1)  # the form again, with its error

    client, response = log_in("streamer", PASSWORD, ATTACKER)

    assert response.status_code == 302 and logged_in(client)


def test_the_limit_locks_the_user_out_even_with_the_right_password(streamer: User) -> None:
    statuses = fail(LIMIT)

    client, response = log_in("streamer", PASSWORD, ATTACKER)

    assert statuses == [200] * (LIMIT - 1) + [429]
    assert response.status_code == 429
    page = response.content.decode()
    assert "Too many failed logins" in page and "Try again in 15 minutes." in page
    assert "axes_reset_username" in page
    assert not logged_in(client)


def test_a_locked_user_name_is_refused_from_any_address(streamer: User) -> None:
    fail(LIMIT)

    client, response = log_in("streamer", PASSWORD, ELSEWHERE)

    assert response.status_code == 429 and not logged_in(client)


def test_an_address_guessing_many_names_is_locked_for_every_name(streamer: User) -> None:
    for name in ("admin", "root", "bot", "mod", "staff"):
        fail(1, username=name)

    from_there, refused = log_in("streamer", PASSWORD, ATTACKER)
    from_elsewhere, accepted = log_in("streamer", PASSWORD, ELSEWHERE)

    assert refused.status_code == 429 and not logged_in(from_there)
    # Nothing was tried against "streamer" itself: its owner, elsewhere, still logs in.
    assert accepted.status_code == 302 and logged_in(from_elsewhere)


def test_other_users_and_addresses_are_not_locked_by_one_users_failures(streamer: User) -> None:
    User.objects.create_superuser("moderator", "m@example.com", PASSWORD)
    fail(LIMIT - 1, address=ATTACKER)
    fail(LIMIT - 1, address=ELSEWHERE)  # the name alone is now over the limit, no address is

    blocked, refused = log_in("streamer", PASSWORD, "192.0.2.1")
    other, accepted = log_in("moderator", PASSWORD, ATTACKER)

    assert refused.status_code == 429 and not logged_in(blocked)
    assert accepted.status_code == 302 and logged_in(other)


def test_axes_reset_username_lifts_the_lock(streamer: User) -> None:
    fail(LIMIT)

    call_command("axes_reset_username", "streamer")
    client, response = log_in("streamer", PASSWORD, ATTACKER)

    assert response.status_code == 302 and logged_in(client)


def test_a_login_without_a_request_is_not_throttled(streamer: User) -> None:
    # Django's test Client.login() passes no request: there is no client to count against.
    fail(LIMIT)

    assert Client().login(username="streamer", password=PASSWORD)
    assert not Client().login(username="streamer", password="wrong-password")


# Behind a proxy: uvicorn reports the X-Forwarded-For address only for a trusted proxy.


@pytest.fixture
def web(local_dir: Path, request: pytest.FixtureRequest) -> Iterator[int]:
    """uvicorn serving the real application, as the web process does; param: FORWARDED_ALLOW_IPS."""
    env = bot_env(local_dir, DJANGO_SUPERUSER_PASSWORD=PASSWORD, FORWARDED_ALLOW_IPS=request.param)
    with uvicorn_serving(env) as port:
        yield port


def post_login(port: int, username: str, password: str, forwarded_for: str) -> int:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-Forwarded-For": forwarded_for}) as c:
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', c.get("/admin/login/").text)
        assert token is not None
        form = {"csrfmiddlewaretoken": token.group(1), "username": username, "password": password}
        return c.post("/admin/login/", data=form).status_code


def guess_names_from_many_addresses(port: int) -> None:
    """One guess per name, each forwarded from its own address: no name, no address at the limit."""
    for i, name in enumerate(("admin", "root", "bot", "mod", "staff")):
        post_login(port, name, "wrong", f"203.0.113.{i}")


@pytest.mark.parametrize("web", ["127.0.0.1"], indirect=True)
def test_behind_a_trusted_proxy_each_forwarded_address_counts_apart(web: int) -> None:
    guess_names_from_many_addresses(web)

    assert post_login(web, "streamer", PASSWORD, "198.51.100.20") == 302


@pytest.mark.parametrize("web", ["192.0.2.99"], indirect=True)
def test_a_forwarded_address_from_an_untrusted_peer_is_ignored(web: int) -> None:
    # 127.0.0.1 is not a trusted proxy here: every guess counts for it, whatever it forwards.
    guess_names_from_many_addresses(web)

    assert post_login(web, "streamer", PASSWORD, "198.51.100.20") == 429
