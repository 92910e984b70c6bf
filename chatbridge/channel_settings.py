"""Per-channel settings, read from memory on the hot path.

The database rows (edited in the admin) are loaded into a snapshot at start, again
whenever a row is saved in this process, and periodically for rows saved by
another process. Channels without a row get the model's defaults. The Twitch adapter
follows the joined rows: it is told of each reload (`on_reload`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache

from asgiref.sync import sync_to_async
from django.db import DatabaseError

from chatbridge.commands import ASK, CHILL, MENTION
from chatbridge.models import ChannelSettings
from serdabot.database import database_label, load_through_outage, reconnecting
from serdabot.outage import Outage

log = logging.getLogger("chatbridge.channel_settings")

REFRESH_EVERY = 30.0  # seconds; only matters for rows saved by another process
MAX_UNREMEMBERED = 1_000  # channels first seen during a database outage, kept for their rows


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    commands: frozenset[str]
    user_cooldown: float
    channel_cooldown: float
    moderators_bypass: bool
    cooldown_notice: bool
    fallback_mode: str  # "" = the global FALLBACK_MODE
    extra_names: tuple[str, ...]
    reply_queue_limit: int
    bot_enabled: bool = True  # `!serdabot off`: nothing but `!serdabot on` is answered
    llm_enabled: bool = True  # `!serdabot llm off`: phrases only
    persona: str = "geek_fr"  # chatbridge.prompts.PRESETS
    language: str = "fr"  # "fr" or "en": the model's replies and the bot's own texts
    ask_prompt: str = ""  # "" = the persona's
    chill_prompt: str = ""  # "" = the persona's
    allow_links: bool = False  # off: links are removed from the model's answers
    joined: bool = True  # off: paused (Twitch: chat not read; Discord: see DiscordBot.only_listed)
    broadcaster_id: str = ""  # Twitch: the channel's user id, once the API gave it

    @classmethod
    def from_row(cls, row: ChannelSettings) -> ChannelConfig:
        enabled = {ASK: row.ask_enabled, CHILL: row.chill_enabled, MENTION: row.mention_enabled}
        return cls(
            commands=frozenset(name for name, on in enabled.items() if on),
            user_cooldown=float(row.user_cooldown),
            channel_cooldown=float(row.channel_cooldown),
            moderators_bypass=row.moderators_bypass,
            cooldown_notice=row.cooldown_notice,
            fallback_mode=row.fallback_mode,
            extra_names=row.names(),
            reply_queue_limit=max(row.reply_queue_limit, 1),
            bot_enabled=row.bot_enabled,
            llm_enabled=row.llm_enabled,
            persona=row.persona,
            language=row.language,
            ask_prompt=row.ask_prompt.strip(),
            chill_prompt=row.chill_prompt.strip(),
            allow_links=row.allow_links,
            joined=row.joined,
            broadcaster_id=row.broadcaster_id,
        )


@cache
def defaults() -> ChannelConfig:
    # An unsaved row carries the model's defaults: one place to change them.
    return ChannelConfig.from_row(ChannelSettings())


def channel_key(platform: str, channel: str) -> tuple[str, str]:
    # Twitch logins are case-insensitive; Discord ids are digits.
    return platform, channel.strip().lower()


class ChannelSettingsCache:
    def __init__(self) -> None:
        self._configs: dict[tuple[str, str], ChannelConfig] = {}
        # Configured channels whose rows could not be created (the database was away):
        # the next refresh that reaches it creates them.
        self._unsaved: dict[str, tuple[str, ...]] = {}
        # Channels first seen during an outage (remember_later), with their labels.
        self._unremembered: dict[tuple[str, str], str] = {}
        self._outage: Outage | None = None
        # Called after every reload, from the thread that reloaded: adapters follow the rows.
        self._listeners: list[Callable[[], None]] = []
        self._listeners_lock = threading.Lock()

    @property
    def outage(self) -> Outage:
        # Made on first use: the database is named from settings this module may be imported before.
        if self._outage is None:
            self._outage = Outage("channel settings", database_label(), log)
        return self._outage

    def get(self, platform: str, channel: str) -> ChannelConfig:
        return self._configs.get(channel_key(platform, channel)) or defaults()

    def joined(self, platform: str) -> dict[str, str]:
        """The joined (not paused) channels of `platform` with their broadcaster ids ("" when
        not known yet), in the order their rows were created."""
        return {
            channel: config.broadcaster_id
            for (where, channel), config in self._configs.items()
            if where == platform and config.joined
        }

    def clear(self) -> None:
        self._configs = {}

    def load(self) -> None:
        """Read every row (sync; never called on the hot path)."""
        rows = list(ChannelSettings.objects.order_by("pk"))
        # One assignment: readers see the old snapshot or the new one, never half of each.
        self._configs = {channel_key(r.platform, r.channel): ChannelConfig.from_row(r) for r in rows}
        self._announce()

    def on_reload(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener` after every reload, from whichever thread reloaded (keep it short
        and thread-safe). Returns the function that stops it."""
        with self._listeners_lock:
            self._listeners.append(listener)

        def stop() -> None:
            with self._listeners_lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return stop

    def _announce(self) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener()
            except Exception:
                log.exception("channel settings: a reload listener failed")

    def ensure(self, platform: str, channels: Iterable[str]) -> None:
        """Give configured channels a row with defaults, so they show up in the admin."""
        for channel in channels:
            ChannelSettings.objects.get_or_create(
                platform=platform, channel=channel_key(platform, channel)[1]
            )
        self.load()

    def remember(self, platform: str, channel: str, label: str) -> None:
        """A channel seen for the first time gets a row with defaults, named for the admin.

        Every process loads every row: only channels an operator may want to configure
        come here (a Discord server's channels, not its threads nor DMs, which follow
        their parent's row or the defaults).
        """
        # Not joined: on Discord a joined row is a channel picked on the setup page, answered
        # when the bot answers only there; being seen picks nothing.
        row, created = ChannelSettings.objects.get_or_create(
            platform=platform,
            channel=channel_key(platform, channel)[1],
            defaults={"label": label[:100], "joined": False},
        )
        if not created and not row.label and label:
            ChannelSettings.objects.filter(pk=row.pk).update(label=label[:100])
        # No reload here: a new row holds the defaults, which get() already gives a channel
        # without one (and saving it reloads every process's snapshot: chatbridge/signals.py).

    async def ensure_rows(self, platform: str, channels: Iterable[str]) -> None:
        """`ensure`, for an adapter (re)connecting: never held up by a database outage. The
        adapter connects and answers with the settings in memory (or the defaults), and
        the rows are created by the first refresh that reaches the database."""
        channels = tuple(channels)
        try:
            await sync_to_async(self._ensure_or_disconnect)(platform, channels)
        except DatabaseError as exc:
            self._unsaved[platform] = channels
            self.outage.failed(exc)
            return
        self._unsaved.pop(platform, None)
        self.outage.recovered()

    def _ensure_or_disconnect(self, platform: str, channels: tuple[str, ...]) -> None:
        with reconnecting():
            self.ensure(platform, channels)

    def remember_later(self, platform: str, channel: str, label: str) -> None:
        """`remember`, deferred to the first refresh that reaches the database: while it is
        away, a try per message would queue a connection timeout each on the one thread
        every database call of this process waits for."""
        self._unremembered[channel_key(platform, channel)] = label
        while len(self._unremembered) > MAX_UNREMEMBERED:
            del self._unremembered[next(iter(self._unremembered))]

    async def refresh(self) -> bool:
        # An outage keeps the last snapshot: the bot answers with yesterday's settings, not
        # not at all.
        return await load_through_outage(self._reload, self.outage)

    def _reload(self) -> None:
        # pop(), not del: the event loop's thread may have settled an entry meanwhile.
        for platform, channels in list(self._unsaved.items()):
            self.ensure(platform, channels)
            self._unsaved.pop(platform, None)
        for (platform, channel), label in list(self._unremembered.items()):
            self.remember(platform, channel, label)
            self._unremembered.pop((platform, channel), None)
        self.load()

    async def keep_fresh(self, every: float = REFRESH_EVERY) -> None:
        failing = False  # a bug, not an outage: one traceback until a refresh works again
        while True:
            await asyncio.sleep(every)
            try:
                await self.refresh()
            except Exception:
                if not failing:
                    log.exception("channel settings: refreshing failed")
                failing = True
            else:
                failing = False


# One snapshot per process, shared by the adapters and the handler.
settings_cache = ChannelSettingsCache()
