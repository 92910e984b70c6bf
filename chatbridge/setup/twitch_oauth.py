"""Twitch's OAuth endpoints as the setup pages and `twitchlogin` use them (sync, httpx).

Every URL starts from `TwitchConfig.auth_url` or `api_url`, so `TWITCH_AUTH_URL` and
`TWITCH_API_URL` point all of it at a test double. Errors are `TwitchError`s whose
message can be shown as is: it never holds a token, a code or the client secret.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from django.utils.translation import gettext as _

from chatbridge.config import TwitchConfig

TIMEOUT = 10.0
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# RFC 8628: after a slow_down the client waits this much longer between polls, for good.
SLOW_DOWN_STEP = 5.0
# Twitch's words for a device code that is no longer any good (its docs and RFC 8628's).
DEVICE_GONE = frozenset({"expired_token", "invalid device code"})


class TwitchError(Exception):
    """Twitch refused, or could not be reached. The message is safe to show."""


class TwitchUnreachable(TwitchError):
    """No answer from Twitch (network, timeout): worth trying again."""


class DeviceCodeExpired(TwitchError):
    """The device code ran out (or was never valid) before anyone entered it."""


@dataclass(frozen=True, slots=True)
class Grant:
    """Tokens Twitch issued for a user. Never logged: kept out of repr."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a user token belongs to, as `oauth2/validate` says."""

    user_id: str
    login: str
    scopes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DeviceCode:
    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    expires_in: float
    interval: float


def authorize_url(config: TwitchConfig, *, redirect_uri: str, scopes: Sequence[str], state: str) -> str:
    """Where the browser goes to grant `scopes`. force_verify: Twitch shows the consent
    page even when it was given before, so a streamer can pick another account."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": config.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(scopes),
            "state": state,
            "force_verify": "true",
        },
        quote_via=quote,
    )
    return f"{config.auth_url}oauth2/authorize?{query}"


def exchange_code(config: TwitchConfig, code: str, redirect_uri: str) -> Grant:
    body = _call(
        "POST",
        f"{config.auth_url}oauth2/token",
        secrets=(config.client_secret, code),
        data={
            "client_id": config.client_id,
            "client_secret": config.client_secret,
            "code": code,
            "grant_type": "authorization_code",
            "redirect_uri": redirect_uri,
        },
    )
    return _grant(body)


def validate(config: TwitchConfig, token: str) -> Identity:
    """The user a token belongs to, and what it may do: ids and logins come from here."""
    body = _call(
        "GET",
        f"{config.auth_url}oauth2/validate",
        secrets=(token,),
        headers={"Authorization": f"OAuth {token}"},
    )
    user_id, login = str(body.get("user_id") or ""), str(body.get("login") or "")
    if not user_id or not login:
        raise TwitchError(_("Twitch returned an application token where a user token was expected."))
    return Identity(user_id, login.lower(), _scopes(body.get("scopes")))


def app_token(config: TwitchConfig) -> str:
    """An app access token (client credentials), for Helix lookups."""
    body = _call(
        "POST",
        f"{config.auth_url}oauth2/token",
        secrets=(config.client_secret,),
        data={
            "client_id": config.client_id,
            "client_secret": config.client_secret,
            "grant_type": "client_credentials",
        },
    )
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise TwitchError(_("Twitch's answer had no access token."))
    return token


def find_user(config: TwitchConfig, login: str, token: str) -> tuple[str, str] | None:
    """(id, login) of a Twitch account, or None when no account has that login."""
    body = _call(
        "GET",
        f"{config.api_url}users",
        secrets=(token,),
        params={"login": login},
        headers={"Authorization": f"Bearer {token}", "Client-Id": config.client_id},
    )
    data = body.get("data")
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        return None
    return str(data[0]["id"]), str(data[0]["login"]).lower()


def start_device_flow(config: TwitchConfig, scopes: Sequence[str]) -> DeviceCode:
    body = _call(
        "POST",
        f"{config.auth_url}oauth2/device",
        data={"client_id": config.client_id, "scopes": " ".join(scopes)},
    )
    try:
        return DeviceCode(
            device_code=str(body["device_code"]),
            user_code=str(body["user_code"]),
            verification_uri=str(body["verification_uri"]),
            expires_in=float(body.get("expires_in", 1800)),
            interval=float(body.get("interval", 5)),
        )
    except (KeyError, TypeError, ValueError):
        raise TwitchError(_("Twitch's answer to the device code request was not understood.")) from None


def wait_for_device_token(
    config: TwitchConfig,
    device: DeviceCode,
    scopes: Sequence[str],
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Grant:
    """Poll the token endpoint until the user enters the code (RFC 8628 section 3.5).

    Waits `device.interval` between polls, longer after each slow_down; a lost
    connection is polled through until the code expires.
    """
    interval = device.interval
    deadline = clock() + device.expires_in
    while True:
        sleep(interval)
        try:
            outcome = _device_token(config, device, scopes)
        except TwitchUnreachable:
            outcome = "authorization_pending"
        if isinstance(outcome, Grant):
            return outcome
        if outcome == "slow_down":
            interval += SLOW_DOWN_STEP
        if clock() >= deadline:
            raise DeviceCodeExpired(_("The code was not entered in time. Run the command again."))


def _device_token(config: TwitchConfig, device: DeviceCode, scopes: Sequence[str]) -> Grant | str:
    """A Grant, or "authorization_pending" / "slow_down"."""
    response = _send(
        "POST",
        f"{config.auth_url}oauth2/token",
        data={
            "client_id": config.client_id,
            "scopes": " ".join(scopes),
            "device_code": device.device_code,
            "grant_type": DEVICE_GRANT,
        },
    )
    body = _body(response)
    if response.is_success:
        return _grant(body)
    reason = _reason(body, response)
    if reason in ("authorization_pending", "slow_down"):
        return reason
    if reason in DEVICE_GONE:
        raise DeviceCodeExpired(_("The code expired before it was entered. Run the command again."))
    raise _refused(response, body, secrets=(device.device_code,))


def _grant(body: dict[str, Any]) -> Grant:
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise TwitchError(_("Twitch's answer had no access token."))
    return Grant(token, str(body.get("refresh_token") or ""), _scopes(body.get("scope")))


def _scopes(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list):
        return tuple(str(s) for s in value)
    return ()


def _call(method: str, url: str, *, secrets: Iterable[str] = (), **kwargs: Any) -> dict[str, Any]:
    response = _send(method, url, **kwargs)
    body = _body(response)
    if not response.is_success:
        raise _refused(response, body, secrets=secrets)
    return body


def _send(method: str, url: str, **kwargs: Any) -> httpx.Response:
    try:
        with httpx.Client(timeout=TIMEOUT) as client:
            return client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        # The exception's text can carry the URL; the class name says enough.
        raise TwitchUnreachable(
            _("Twitch could not be reached (%(error)s). Check the connection and try again.")
            % {"error": type(exc).__name__}
        ) from None


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _reason(body: dict[str, Any], response: httpx.Response) -> str:
    # Twitch says {"status": 400, "message": "..."}; RFC 6749 servers say {"error": "..."}.
    return str(body.get("message") or body.get("error") or response.reason_phrase).strip()


def _refused(response: httpx.Response, body: dict[str, Any], *, secrets: Iterable[str]) -> TwitchError:
    reason = _reason(body, response)[:200]
    for secret in secrets:
        if secret:
            reason = reason.replace(secret, "[redacted]")
    return TwitchError(
        _("Twitch refused the request (HTTP %(status)s: %(reason)s).")
        % {"status": response.status_code, "reason": reason}
    )
