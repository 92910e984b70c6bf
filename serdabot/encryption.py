"""Secrets at rest: OAuth tokens, the Twitch client secret and the Discord token are
stored encrypted (Fernet: AES-128-CBC with an HMAC-SHA256 tag).

The key is `SERDABOT_ENCRYPTION_KEY` when set (a Fernet key, as
`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`
prints, or any passphrase of 32 characters or more), otherwise one derived from
`SECRET_KEY`. Changing the key in use makes the stored secrets unreadable: the bot
says so, and the streamer connects again (see "Secrets at rest" in the README).
`SERDABOT_ENCRYPTION_KEY_OLD` (comma-separated) lets a rotation read what the old key
wrote; anything saved afterwards uses the new one.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models

from serdabot.env import SettingError, env_list, env_str

# Stored values start with this, so a clear-text value (a row written before encryption,
# or by hand) is told apart from a ciphertext.
PREFIX = "fernet:"
MIN_PASSPHRASE = 32
# Domain separation: the same SECRET_KEY also signs sessions; this key is for storage only.
DERIVATION_SALT = b"serdabot.encryption.v1"


class SecretUnreadable(Exception):
    """A stored secret was encrypted with another key. The message says what to do."""

    def __init__(self, what: str = "a stored secret") -> None:
        super().__init__(
            f"{what} cannot be decrypted: it was stored with another key (SERDABOT_ENCRYPTION_KEY, "
            "or SECRET_KEY when that is unset, changed since). Put the old key back, or connect "
            "again from the setup page to store it with the new one."
        )


def _fernet_key(raw: str, name: str) -> bytes:
    """A Fernet key as given, or one derived from a long passphrase."""
    try:
        key = base64.urlsafe_b64decode(raw.encode())
        if len(key) == 32:
            return raw.encode()
    except (ValueError, TypeError):
        pass
    if len(raw) < MIN_PASSPHRASE:
        raise SettingError(
            f"{name}: expected a Fernet key (44 characters of URL-safe base64) or a passphrase of at "
            f"least {MIN_PASSPHRASE} characters, got {len(raw)} characters"
        )
    return derive(raw)


def derive(secret: str) -> bytes:
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), DERIVATION_SALT, 100_000)
    return base64.urlsafe_b64encode(digest)


@cache
def _keys() -> tuple[bytes, ...]:
    current = env_str("SERDABOT_ENCRYPTION_KEY")
    keys = [_fernet_key(current, "SERDABOT_ENCRYPTION_KEY") if current else derive(settings.SECRET_KEY)]
    keys += [
        _fernet_key(old, "SERDABOT_ENCRYPTION_KEY_OLD") for old in env_list("SERDABOT_ENCRYPTION_KEY_OLD")
    ]
    return tuple(keys)


@cache
def _cipher() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in _keys()])


def reset_keys() -> None:
    """Read the key settings again (tests, and a process whose environment changed)."""
    _keys.cache_clear()
    _cipher.cache_clear()


def encrypt(value: str) -> str:
    if not value:
        return ""
    return PREFIX + _cipher().encrypt(value.encode()).decode()


def decrypt(stored: str, what: str = "a stored secret") -> str:
    if not stored:
        return ""
    if not stored.startswith(PREFIX):
        return stored  # written in clear before encryption; the next save encrypts it
    try:
        return _cipher().decrypt(stored.removeprefix(PREFIX).encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(what) from None


def readable(stored: str) -> bool:
    try:
        decrypt(stored)
    except SecretUnreadable:
        return False
    return True


class EncryptedTextField(models.TextField):  # type: ignore[type-arg]
    """A text column holding a Fernet ciphertext; the model attribute is the clear text.

    Reading a row stored with another key does not fail: the attribute then holds an
    `Unreadable` marker (falsy, equal to no secret) and `decrypt_or_raise` says why, so
    a list of rows still renders and the page can say "reconnect".
    """

    description = "Text encrypted at rest (Fernet)"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if value is None:
            return value
        try:
            return decrypt(value, f"{self.model.__name__}.{self.name}")
        except SecretUnreadable:
            return Unreadable(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None:
            return value
        if isinstance(value, Unreadable):
            return value.stored  # kept as it was: a wrong key never destroys a secret
        return encrypt(str(value))


class Unreadable(str):
    """A stored secret this process cannot decrypt. Empty as a string, so it is never used
    as a token; the ciphertext is kept so saving the row does not lose it."""

    stored: str

    def __new__(cls, stored: str) -> Unreadable:
        instance = super().__new__(cls, "")
        instance.stored = stored
        return instance


def check(value: str, what: str) -> str:
    """`value` as read from an encrypted field, or SecretUnreadable when the key is wrong."""
    if isinstance(value, Unreadable):
        raise SecretUnreadable(what)
    return value


def rotate_all() -> tuple[int, int]:
    """Write every stored secret again with the current key (after a rotation, so the old
    key can be dropped). Returns (rewritten, unreadable): unreadable values are left as
    they are."""
    from django.apps import apps

    rewritten = unreadable = 0
    for model in apps.get_models():
        fields = [f for f in model._meta.get_fields() if isinstance(f, EncryptedTextField)]
        if not fields:
            continue
        for row in model._default_manager.all():
            if any(isinstance(getattr(row, f.attname), Unreadable) for f in fields):
                unreadable += 1
                continue
            # Saving encrypts with the current (first) key.
            row.save(update_fields=[f.attname for f in fields])
            rewritten += 1
    return rewritten, unreadable
