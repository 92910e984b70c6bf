"""Chat platform state kept in the database: channel settings, adapter state, Twitch tokens."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone


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


class TwitchToken(models.Model):
    """The bot account's user token, kept by twitchio's token hooks. Never shown or logged."""

    user_id = models.CharField(max_length=32, unique=True)
    token = models.CharField(max_length=200)
    refresh = models.CharField(max_length=200)
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Twitch token for user {self.user_id}"

    def __repr__(self) -> str:
        return f"<TwitchToken user_id={self.user_id}>"


# The moderation models live with the code that uses them; imported here so Django registers them.
from chatbridge.moderation.models import BlockedTerm, HeldReply  # noqa: E402, F401
