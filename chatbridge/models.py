"""Chat platform state kept in the database: channel settings, adapter state, Twitch tokens."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from serdabot.encryption import EncryptedTextField


class Platform(models.TextChoices):
    TWITCH = "twitch", "Twitch"
    DISCORD = "discord", "Discord"


class FallbackMode(models.TextChoices):
    DEFAULT = "", _("Global setting (FALLBACK_MODE)")
    FUN = "fun", _("Fun phrases")
    SILENT = "silent", _("One neutral sentence")
    MINIMAL = "minimal", _("🤖 only")


class Persona(models.TextChoices):
    GEEK_FR = "geek_fr", _("Geek, French")
    NEUTRAL_FR = "neutral_fr", _("Neutral, French")
    ENGLISH = "english", _("English")


class Language(models.TextChoices):
    FR = "fr", _("French")
    EN = "en", _("English")


class ChannelSettings(models.Model):
    """How the bot behaves in one channel. Channels without a row get these defaults."""

    platform = models.CharField(_("platform"), max_length=16, choices=Platform.choices)
    channel = models.CharField(
        _("channel"), max_length=100, help_text=_("Twitch: the channel's login. Discord: the channel's id.")
    )
    label = models.CharField(
        _("label"), max_length=100, blank=True, help_text=_("A readable name (Discord channels).")
    )
    ask_enabled = models.BooleanField("!ask", default=True)
    chill_enabled = models.BooleanField("!chill", default=True)
    mention_enabled = models.BooleanField(_("Mentions"), default=True)
    user_cooldown = models.PositiveIntegerField(
        _("Cooldown per user (s)"),
        default=30,
        help_text=_("Per command: one user's !ask does not cool down !chill."),
    )
    channel_cooldown = models.PositiveIntegerField(_("Cooldown per channel (s)"), default=5)
    moderators_bypass = models.BooleanField(
        _("Moderators bypass cooldowns"),
        default=True,
        help_text=_("The broadcaster and moderators are never cooled."),
    )
    cooldown_notice = models.BooleanField(
        _("Tell users they are cooling down"),
        default=False,
        help_text=_("Off: silence. On: one short notice per cooldown with the time left."),
    )
    fallback_mode = models.CharField(
        _("fallback mode"), max_length=16, choices=FallbackMode.choices, blank=True, default=""
    )
    extra_names = models.CharField(
        _("other names"),
        max_length=200,
        blank=True,
        help_text=_("Other names the bot answers to here, comma-separated (e.g. 'bot, robot')."),
    )
    reply_queue_limit = models.PositiveIntegerField(
        _("Pending replies kept"),
        default=10,
        help_text=_("Replies waiting for the chat rate limit; past this the oldest are dropped."),
    )
    bot_enabled = models.BooleanField(
        _("Bot on"),
        default=True,
        db_default=True,
        help_text=_("Off (`!serdabot off`): the bot answers nothing here except `!serdabot on`."),
    )
    llm_enabled = models.BooleanField(
        _("Language model on"),
        default=True,
        db_default=True,
        help_text=_("Off (`!serdabot llm off`): phrases only, no model call."),
    )
    persona = models.CharField(
        _("persona"),
        max_length=16,
        choices=Persona.choices,
        default=Persona.GEEK_FR,
        db_default=Persona.GEEK_FR,
        help_text=_("The preset the prompts below start from when they are empty."),
    )
    language = models.CharField(
        _("language"),
        max_length=8,
        choices=Language.choices,
        default=Language.FR,
        db_default=Language.FR,
        help_text=_("The language of replies."),
    )
    ask_prompt = models.TextField(
        _("!ask system prompt"),
        blank=True,
        default="",
        db_default="",
        help_text=_("Empty: the persona's. Applies live, no restart."),
    )
    chill_prompt = models.TextField(
        _("Mentions and !chill system prompt"),
        blank=True,
        default="",
        db_default="",
        help_text=_("Empty: the persona's. Applies live."),
    )
    allow_links = models.BooleanField(
        _("Allow links in answers"),
        default=False,
        db_default=False,
        help_text=_("Off: links are removed from the model's answers."),
    )
    joined = models.BooleanField(
        _("Joined"),
        default=True,
        db_default=True,
        help_text=_("Off: paused. Twitch: chat is no longer read. Discord: see Only chosen channels."),
    )
    broadcaster_id = models.CharField(
        _("Twitch broadcaster id"),
        max_length=32,
        blank=True,
        default="",
        db_default="",
        help_text=_("Filled in from Twitch's API."),
    )
    guild_id = models.CharField(
        _("Discord server id"),
        max_length=32,
        blank=True,
        default="",
        db_default="",
        help_text=_("The server this Discord channel belongs to."),
    )
    bot_authorized = models.BooleanField(
        _("Bot authorized by the broadcaster"),
        default=False,
        db_default=False,
        help_text=_("Twitch: the broadcaster granted channel:bot from the connect page."),
    )
    updated = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["platform", "channel"], name="unique_channel_settings")
        ]
        ordering = ["platform", "channel"]
        verbose_name = _("channel settings")
        verbose_name_plural = _("channel settings")

    def __str__(self) -> str:
        return f"{self.platform}/{self.label or self.channel}"

    def clean(self) -> None:
        if self.reply_queue_limit < 1:
            raise ValidationError({"reply_queue_limit": _("Keep at least one pending reply.")})
        # A preset's prompt names its language: with the other one, the model gets two orders.
        persona_language = Language.EN if self.persona == Persona.ENGLISH else Language.FR
        if self.language != persona_language:
            raise ValidationError(
                {
                    "language": gettext(
                        "The %(persona)s persona answers in %(language)s: pick that language, "
                        "or another persona."
                    )
                    % {"persona": self.get_persona_display(), "language": persona_language.label}
                }
            )
        if self.platform == Platform.TWITCH:
            self.channel = self.channel.strip().lstrip("#").lower()

    def names(self) -> tuple[str, ...]:
        return tuple(n.strip().lstrip("@") for n in self.extra_names.split(",") if n.strip().lstrip("@"))


class AdapterState(models.Model):
    """What one platform adapter is doing; the dashboard reads it."""

    class State(models.TextChoices):
        STARTING = "starting", _("Starting")
        CONNECTED = "connected", _("Connected")
        RECONNECTING = "reconnecting", _("Reconnecting")
        FAILED = "failed", _("Failed")
        STOPPED = "stopped", _("Stopped")

    platform = models.CharField(_("platform"), max_length=16, choices=Platform.choices, unique=True)
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.STOPPED)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    messages_in = models.PositiveBigIntegerField(
        _("messages in"), default=0, help_text=_("Chat messages received since start.")
    )
    messages_out = models.PositiveBigIntegerField(
        _("messages out"), default=0, help_text=_("Replies sent since start.")
    )
    replies_dropped = models.PositiveBigIntegerField(
        _("replies dropped"), default=0, help_text=_("Replies dropped since start.")
    )
    cooldown_hits = models.PositiveBigIntegerField(
        _("cooldown hits"), default=0, help_text=_("Commands refused by a cooldown.")
    )
    started = models.DateTimeField(_("started"), null=True, blank=True)
    updated = models.DateTimeField(_("updated"), default=timezone.now)

    class Meta:
        ordering = ["platform"]
        verbose_name = _("adapter state")
        verbose_name_plural = _("adapter states")

    def __str__(self) -> str:
        return f"{self.platform}: {self.state}"


class TwitchApp(models.Model):
    """The Twitch application (client id and secret) and the bot account it connected.

    One row (pk 1), written by the connect page. Environment variables, when set, win.
    """

    client_id = models.CharField(_("client id"), max_length=64, blank=True, default="")
    client_secret = EncryptedTextField(_("client secret"), blank=True, default="")
    bot_id = models.CharField(_("Bot account id"), max_length=32, blank=True, default="")
    bot_login = models.CharField(_("Bot account login"), max_length=64, blank=True, default="")
    updated = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("Twitch application")
        verbose_name_plural = _("Twitch application")

    def __str__(self) -> str:
        return gettext("Twitch application %(client_id)s") % {
            "client_id": self.client_id or gettext("(not set)")
        }

    def __repr__(self) -> str:
        return f"<TwitchApp client_id={self.client_id} bot_id={self.bot_id}>"

    @classmethod
    def load(cls) -> TwitchApp:
        return cls.objects.get_or_create(pk=1)[0]


class TwitchToken(models.Model):
    """A Twitch user token (the bot account's), kept by twitchio's token hooks and the
    connect page. Encrypted at rest; never shown or logged."""

    user_id = models.CharField(_("user id"), max_length=32, unique=True)
    login = models.CharField(_("login"), max_length=64, blank=True, default="", db_default="")
    token = EncryptedTextField(_("token"))
    refresh = EncryptedTextField(_("refresh token"))
    scopes = models.CharField(_("scopes"), max_length=500, blank=True, default="", db_default="")
    # Twitch refused it and its refresh token: the connect page says "reconnect".
    needs_reconnect = models.BooleanField(_("needs reconnecting"), default=False, db_default=False)
    # When the setup page (or `twitchlogin`) last stored it: a running adapter restarts with a
    # newer one, and never writes its own older token over it.
    connected = models.DateTimeField(_("connected"), null=True, blank=True)
    updated = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("Twitch token")
        verbose_name_plural = _("Twitch tokens")

    def __str__(self) -> str:
        return gettext("Twitch token for user %(user_id)s") % {"user_id": self.user_id}

    def __repr__(self) -> str:
        return f"<TwitchToken user_id={self.user_id}>"


class DiscordBot(models.Model):
    """The Discord bot token and what its application says about itself. One row (pk 1),
    written by the Discord setup page; `DISCORD_TOKEN`, when set, wins."""

    token = EncryptedTextField(_("token"), blank=True, default="")
    application_id = models.CharField(_("application id"), max_length=32, blank=True, default="")
    bot_name = models.CharField(_("bot name"), max_length=100, blank=True, default="")
    # The privileged intent, as the application's flags said at the last check.
    message_content = models.BooleanField(_("Message Content intent"), default=False)
    # On: only channels whose row is joined get answers; off: every channel the bot can read.
    only_listed = models.BooleanField(_("Only chosen channels"), default=False)
    updated = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("Discord bot")
        verbose_name_plural = _("Discord bot")

    def __str__(self) -> str:
        return gettext("Discord bot %(name)s") % {"name": self.bot_name or gettext("(not set)")}

    def __repr__(self) -> str:
        return f"<DiscordBot application_id={self.application_id}>"

    @classmethod
    def load(cls) -> DiscordBot:
        return cls.objects.get_or_create(pk=1)[0]


class Seeded(models.Model):
    """Environment settings already copied into rows once (e.g. TWITCH_CHANNELS): they seed
    a fresh install and are not applied again over the streamer's edits."""

    name = models.CharField(_("name"), max_length=64, unique=True)
    created = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("seeded setting")
        verbose_name_plural = _("seeded settings")

    def __str__(self) -> str:
        return self.name


# The moderation models live with the code that uses them; imported here so Django registers them.
from chatbridge.moderation.models import BlockedTerm, HeldReply  # noqa: E402, F401
