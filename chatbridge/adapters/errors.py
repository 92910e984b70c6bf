"""What adapters raise to their supervisor, and error text made safe to log and store."""

from __future__ import annotations

from collections.abc import Iterable

from serdabot.redact import redact as redact_known


class AdapterFatal(Exception):
    """Retrying will not help (bad token, missing scope): report once and stop.

    The message is for the streamer: what is wrong and which setting fixes it.
    It must never contain a secret.
    """


def redact(text: str, secrets: Iterable[str]) -> str:
    # Libraries put secrets in messages (twitchio puts the token in InvalidTokenException,
    # and request URLs carrying client_secret in HTTPException): blank them whatever the source.
    # The adapter's own first (a token refreshed at run time), then the project's one redaction:
    # configured secrets, and anything shaped like a key or a bearer token.
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return redact_known(text)


def describe(exc: BaseException, secrets: Iterable[str] = (), *, limit: int = 300) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return redact(text, secrets)[:limit]
