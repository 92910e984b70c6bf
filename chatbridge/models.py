"""Chat platform state kept in the database: channel settings, adapter state, Twitch tokens."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from serdabot.encryption import EncryptedTextField


class Platform(models.TextChoices):
    TWITCH = "twitch", "Twitch"
    DISCORD = "discord", "Discord"


class FallbackMode(models.TextChoices):
    DEFAULT = "", "Global setting (FALLBACK_MODE)"
    FUN = "fun", "Fun phrases"
    SILENT = "silent", "One neutral sentence"
    MINIMAL = "minimal", "🤖 only"


class Persona(models.TextChoices):
    GEEK_FR = "geek_fr", "Geek, French"
    NEUTRAL_FR = "neutral_fr", "Neutral, French"
    ENGLISH = "english", "English"


class Language(models.TextChoices):
    FR = "fr", "French"
    EN = "en", "English"


class ChannelSettings(models.Model):
    """How the bot behaves in one channel. Channels without a row get these defaults."""

    platform = models.CharField(max_length=16, choices=Platform.choices)
    channel = models.CharField(
        max_length=100, help_text="Twitch: the channel's login. Discord: the channel's id."
    )
    label = models.CharField(max_length=100, blank=True, help_text="A readable name (Discord channels).")
    ask_enabled = models.BooleanField("!ask", default=True)
    chill_enabled = models.BooleanField("!chill", default=True)
    mention_enabled = models.BooleanField("Mentions", default=True)
    user_cooldown = models.PositiveIntegerField(
        "Cooldown per user (s)",
        default=30,
        help_text="Per command: one user's !ask does not cool down !chill.",
    )
    channel_cooldown = models.PositiveIntegerField("Cooldown per channel (s)", default=5)
    moderators_bypass = models.BooleanField(
        "Moderators bypass cooldowns",
        default=True,
        help_text="The broadcaster and moderators are never cooled.",
    )
    cooldown_notice = models.BooleanField(
        "Tell users they are cooling down",
        default=False,
        help_text="Off: silence. On: one short notice per cooldown with the time left.",
    )
    fallback_mode = models.CharField(max_length=16, choices=FallbackMode.choices, blank=True, default="")
    extra_names = models.CharField(
        max_length=200,
        blank=True,
        help_text="Other names the bot answers to here, comma-separated (e.g. 'bot, robot').",
    )
    reply_queue_limit = models.PositiveIntegerField(
        "Pending replies kept",
        default=10,
        help_text="Replies waiting for the chat rate limit; past this the oldest are dropped.",
    )
    bot_enabled = models.BooleanField(
        "Bot on",
        default=True,
        db_default=True,
        help_text="Off (`!serdabot off`): the bot answers nothing here except `!serdabot on`.",
    )
    llm_enabled = models.BooleanField(
        "Language model on",
        default=True,
        db_default=True,
        help_text="Off (`!serdabot llm off`): phrases only, no model call.",
    )
    persona = models.CharField(
        max_length=16,
        choices=Persona.choices,
        default=Persona.GEEK_FR,
        db_default=Persona.GEEK_FR,
        help_text="The preset the prompts below start from when they are empty.",
    )
    language = models.CharField(
        max_length=8,
        choices=Language.choices,
        default=Language.FR,
        db_default=Language.FR,
        help_text="The language of replies.",
    )
    ask_prompt = models.TextField(
        "!ask system prompt",
        blank=True,
        default="",
        db_default="",
        help_text="Empty: the persona's. Applies live, no restart.",
    )
    chill_prompt = models.TextField(
        "Mentions and !chill system prompt",
        blank=True,
        default="",
        db_default="",
        help_text="Empty: the persona's. Applies live.",
    )
    allow_links = models.BooleanField(
        "Allow links in answers",
        default=False,
        db_default=False,
        help_text="Off: links are removed from the model's answers.",
    )
    joined = models.BooleanField(
        "Joined",
        default=True,
        db_default=True,
        help_text="Off: paused. Twitch: chat is no longer read. Discord: see Only chosen channels.",
    )
    broadcaster_id = models.CharField(
        "Twitch broadcaster id",
        max_length=32,
        blank=True,
        default="",
        db_default="",
        help_text="Filled in from Twitch's API.",
    )
    guild_id = models.CharField(
        "Discord server id",
        max_length=32,
        blank=True,
        default="",
        db_default="",
        help_text="The server this Discord channel belongs to.",
    )
    bot_authorized = models.BooleanField(
        "Bot authorized by the broadcaster",
        default=False,
        db_default=False,
        help_text="Twitch: the broadcaster granted channel:bot from the connect page.",
    )
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["platform", "channel"], name="unique_channel_settings")
        ]
        ordering = ["platform", "channel"]
        verbose_name_plural = "channel settings"

    def __str__(self) -> str:
        return f"{self.platform}/{self.label or self.channel}"

    def clean(self) -> None:
        if self.reply_queue_limit < 1:
            raise ValidationError({"reply_queue_limit": "Keep at least one pending reply."})
        # A preset's prompt names its language: with the other one, the model gets two orders.
        persona_language = Language.EN if self.persona == Persona.ENGLISH else Language.FR
        if self.language != persona_language:
            raise ValidationError(
                {
                    "language": f"The {self.get_persona_display()} persona answers in "
                    f"{persona_language.label}: pick that language, or another persona."
                }
            )
        if self.platform == Platform.TWITCH:
            self.channel = self.channel.strip().lstrip("#").lower()

    def names(self) -> tuple[str, ...]:
        return tuple(n.strip().lstrip("@") for n in self.extra_names.split(",") if n.strip().lstrip("@"))


class AdapterState(models.Model):
    """What one platform adapter is doing; the dashboard reads it."""

    class State(models.TextChoices):
        STARTING = "starting", "Starting"
        CONNECTED = "connected", "Connected"
        RECONNECTING = "reconnecting", "Reconnecting"
        FAILED = "failed", "Failed"
        STOPPED = "stopped", "Stopped"

    platform = models.CharField(max_length=16, choices=Platform.choices, unique=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.STOPPED)
    last_error = models.CharField(max_length=500, blank=True)
    messages_in = models.PositiveBigIntegerField(default=0, help_text="Chat messages received since start.")
    messages_out = models.PositiveBigIntegerField(default=0, help_text="Replies sent since start.")
    replies_dropped = models.PositiveBigIntegerField(default=0, help_text="Replies dropped since start.")
    cooldown_hits = models.PositiveBigIntegerField(default=0, help_text="Commands refused by a cooldown.")
    started = models.DateTimeField(null=True, blank=True)
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["platform"]

    def __str__(self) -> str:
        return f"{self.platform}: {self.state}"


class TwitchApp(models.Model):
    """The Twitch application (client id and secret) and the bot account it connected.

    One row (pk 1), written by the connect page. Environment variables, when set, win.
    """

    client_id = models.CharField(max_length=64, blank=True, default="")
    client_secret = EncryptedTextField(blank=True, default="")
    bot_id = models.CharField("Bot account id", max_length=32, blank=True, default="")
    bot_login = models.CharField("Bot account login", max_length=64, blank=True, default="")
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Twitch application {self.client_id or '(not set)'}"

    def __repr__(self) -> str:
        return f"<TwitchApp client_id={self.client_id} bot_id={self.bot_id}>"

    @classmethod
    def load(cls) -> TwitchApp:
        return cls.objects.get_or_create(pk=1)[0]


class TwitchToken(models.Model):
    """A Twitch user token (the bot account's), kept by twitchio's token hooks and the
    connect page. Encrypted at rest; never shown or logged."""

    user_id = models.CharField(max_length=32, unique=True)
    login = models.CharField(max_length=64, blank=True, default="", db_default="")
    token = EncryptedTextField()
    refresh = EncryptedTextField()
    scopes = models.CharField(max_length=500, blank=True, default="", db_default="")
    # Twitch refused it and its refresh token: the connect page says "reconnect".
    needs_reconnect = models.BooleanField(default=False, db_default=False)
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Twitch token for user {self.user_id}"

    def __repr__(self) -> str:
        return f"<TwitchToken user_id={self.user_id}>"


class DiscordBot(models.Model):
    """The Discord bot token and what its application says about itself. One row (pk 1),
    written by the Discord setup page; `DISCORD_TOKEN`, when set, wins."""

    token = EncryptedTextField(blank=True, default="")
    application_id = models.CharField(max_length=32, blank=True, default="")
    bot_name = models.CharField(max_length=100, blank=True, default="")
    # The privileged intent, as the application's flags said at the last check.
    message_content = models.BooleanField(default=False)
    # On: only channels whose row is joined get answers; off: every channel the bot can read.
    only_listed = models.BooleanField(default=False)
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Discord bot {self.bot_name or '(not set)'}"

    def __repr__(self) -> str:
        return f"<DiscordBot application_id={self.application_id}>"

    @classmethod
    def load(cls) -> DiscordBot:
        return cls.objects.get_or_create(pk=1)[0]


class Seeded(models.Model):
    """Environment settings already copied into rows once (e.g. TWITCH_CHANNELS): they seed
    a fresh install and are not applied again over the streamer's edits."""

    name = models.CharField(max_length=64, unique=True)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


# The moderation models live with the code that uses them; imported here so Django registers them.
from chatbridge.moderation.models import BlockedTerm, HeldReply  # noqa: E402, F401
