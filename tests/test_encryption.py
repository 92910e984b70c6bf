"""Secrets at rest: Fernet in the database, a clear error with the wrong key, rotation."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import override_settings

from chatbridge.adapters.twitch.tokens import TokenPair, load_pair, store_pair
from chatbridge.models import DiscordBot, TwitchApp
from serdabot import encryption
from serdabot.encryption import SecretUnreadable, Unreadable, check, decrypt, encrypt
from serdabot.env import SettingError

TOKEN = "user-token-e7c1d2b3a4"
REFRESH = "refresh-token-0f9e8d7c"
SECRET = "client-secret-44aa31"


@pytest.fixture(autouse=True)
def fresh_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("SERDABOT_ENCRYPTION_KEY", raising=False)
    monkeypatch.delenv("SERDABOT_ENCRYPTION_KEY_OLD", raising=False)
    encryption.reset_keys()
    yield
    encryption.reset_keys()


def use_key(monkeypatch: pytest.MonkeyPatch, key: str, old: str = "") -> None:
    monkeypatch.setenv("SERDABOT_ENCRYPTION_KEY", key)
    if old:
        monkeypatch.setenv("SERDABOT_ENCRYPTION_KEY_OLD", old)
    encryption.reset_keys()


def load_pairs() -> list[TokenPair]:
    stored = load_pair("2914196")
    return [stored.pair] if stored is not None else []


def raw(table: str, column: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table}")
        return [row[0] for row in cursor.fetchall()]


def test_a_value_round_trips_and_its_ciphertext_differs_each_time() -> None:
    first, second = encrypt(TOKEN), encrypt(TOKEN)
    assert first.startswith(encryption.PREFIX) and TOKEN not in first
    assert first != second  # Fernet's IV: equal secrets are not recognisable in the table
    assert decrypt(first) == decrypt(second) == TOKEN
    assert encrypt("") == "" and decrypt("") == ""


@pytest.mark.django_db
def test_the_raw_columns_hold_no_secret() -> None:
    store_pair("2914196", TOKEN, REFRESH, login="serdabot_tv", scopes="user:bot")
    TwitchApp.objects.create(pk=1, client_id="abc", client_secret=SECRET)
    DiscordBot.objects.create(pk=1, token="discord-token-9f8e")

    stored = [
        *raw("chatbridge_twitchtoken", "token"),
        *raw("chatbridge_twitchtoken", "refresh"),
        *raw("chatbridge_twitchapp", "client_secret"),
        *raw("chatbridge_discordbot", "token"),
    ]
    assert len(stored) == 4
    for value in stored:
        assert value.startswith(encryption.PREFIX)
        assert not any(secret in value for secret in (TOKEN, REFRESH, SECRET, "discord-token-9f8e"))
    assert [(p.token, p.refresh) for p in load_pairs()] == [(TOKEN, REFRESH)]
    assert TwitchApp.objects.get().client_secret == SECRET


@pytest.mark.django_db
def test_a_wrong_key_gives_a_clear_error_and_never_destroys_the_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = Fernet.generate_key().decode()
    use_key(monkeypatch, first)
    store_pair("2914196", TOKEN, REFRESH)
    TwitchApp.objects.create(pk=1, client_id="abc", client_secret=SECRET)

    use_key(monkeypatch, Fernet.generate_key().decode())
    with pytest.raises(SecretUnreadable, match="SERDABOT_ENCRYPTION_KEY") as error:
        load_pairs()
    assert "connect again" in str(error.value) and TOKEN not in str(error.value)
    app = TwitchApp.objects.get()
    assert isinstance(app.client_secret, Unreadable) and not app.client_secret  # never used as a secret
    with pytest.raises(SecretUnreadable):
        check(app.client_secret, "the client secret")
    app.client_id = "edited"
    app.save()  # saving with the wrong key keeps the stored ciphertext as it was

    use_key(monkeypatch, first)
    assert TwitchApp.objects.get().client_secret == SECRET
    assert [p.token for p in load_pairs()] == [TOKEN]


@pytest.mark.django_db
def test_the_old_key_reads_what_it_wrote_during_a_rotation(monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    use_key(monkeypatch, old)
    store_pair("2914196", TOKEN, REFRESH)
    use_key(monkeypatch, new, old=old)
    assert [p.token for p in load_pairs()] == [TOKEN]
    store_pair("2914196", TOKEN + "x", REFRESH)  # saved again: with the new key
    use_key(monkeypatch, new)
    assert [p.token for p in load_pairs()] == [TOKEN + "x"]


@pytest.mark.django_db
def test_without_a_key_it_is_derived_from_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    store_pair("2914196", TOKEN, REFRESH)
    with override_settings(SECRET_KEY="another-secret-key-" + "x" * 40):
        encryption.reset_keys()
        with pytest.raises(SecretUnreadable):
            load_pairs()
    encryption.reset_keys()
    assert [p.token for p in load_pairs()] == [TOKEN]


def test_a_passphrase_is_accepted_and_a_short_key_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    use_key(monkeypatch, "a long passphrase that is at least thirty-two characters")
    assert decrypt(encrypt(TOKEN)) == TOKEN
    use_key(monkeypatch, "short")
    with pytest.raises(SettingError, match=r"SERDABOT_ENCRYPTION_KEY.*32"):
        encrypt(TOKEN)


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_clear_tokens_and_back() -> None:
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    try:
        executor.migrate([("chatbridge", "0002_moderation_persona_controls")])
        before = MigrationExecutor(connection).loader.project_state(
            ("chatbridge", "0002_moderation_persona_controls")
        )
        before.apps.get_model("chatbridge", "TwitchToken").objects.create(
            user_id="2914196", token=TOKEN, refresh=REFRESH
        )
        assert raw("chatbridge_twitchtoken", "token") == [TOKEN]

        executor = MigrationExecutor(connection)
        executor.migrate([("chatbridge", "0003_setup_encrypted_secrets")])
        assert TOKEN not in raw("chatbridge_twitchtoken", "token")[0]
        after = MigrationExecutor(connection).loader.project_state(
            ("chatbridge", "0003_setup_encrypted_secrets")
        )
        assert after.apps.get_model("chatbridge", "TwitchToken").objects.get().token == TOKEN

        executor = MigrationExecutor(connection)
        executor.migrate([("chatbridge", "0002_moderation_persona_controls")])
        assert raw("chatbridge_twitchtoken", "token") == [TOKEN]
        assert raw("chatbridge_twitchtoken", "refresh") == [REFRESH]
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(latest)


@pytest.mark.django_db
def test_the_old_secret_key_as_old_key_keeps_secrets_readable_after_a_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What the README says to do before changing SECRET_KEY without an encryption key.
    with override_settings(SECRET_KEY="the-first-secret-key-" + "a" * 40):
        encryption.reset_keys()
        store_pair("2914196", TOKEN, REFRESH)
    with override_settings(SECRET_KEY="the-second-secret-key-" + "b" * 40):
        use_key(monkeypatch, Fernet.generate_key().decode(), old="the-first-secret-key-" + "a" * 40)
        assert [p.token for p in load_pairs()] == [TOKEN]


@pytest.mark.django_db
def test_reencrypt_writes_every_secret_with_the_new_key(monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    use_key(monkeypatch, old)
    store_pair("2914196", TOKEN, REFRESH)
    TwitchApp.objects.create(pk=1, client_id="abc", client_secret=SECRET)
    use_key(monkeypatch, new, old=old)
    out = StringIO()
    call_command("reencrypt", stdout=out)
    assert out.getvalue().startswith("2 row(s)")

    use_key(monkeypatch, new)  # the old key dropped: everything still reads
    assert [p.token for p in load_pairs()] == [TOKEN]
    assert TwitchApp.objects.get().client_secret == SECRET

    use_key(monkeypatch, Fernet.generate_key().decode())
    with pytest.raises(CommandError, match="2 row"):
        call_command("reencrypt", stdout=StringIO())


@pytest.mark.django_db
def test_another_accounts_unreadable_token_does_not_block_the_bots(monkeypatch: pytest.MonkeyPatch) -> None:
    use_key(monkeypatch, Fernet.generate_key().decode())
    store_pair("1971641", "streamers-token-0101", "streamers-refresh-0101")  # connected by mistake once
    use_key(monkeypatch, Fernet.generate_key().decode())
    store_pair("2914196", TOKEN, REFRESH)  # the bot, connected again after the key changed
    assert [p.token for p in load_pairs()] == [TOKEN]
