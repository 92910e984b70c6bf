"""Whether a command may be used here, by this person: the one rule the relay (before the
channel layer) and the handler (in the worker) both apply.

- A channel switched off (`!serdabot off`) answers nothing but `!serdabot on`, from a
  moderator or the broadcaster.
- `!ask`, `!chill` and mentions follow the channel's enabled commands; `!forget` is on
  wherever the model is.
- `!serdabot …` is for moderators and the broadcaster; viewers get silence, not an argument.
- A custom command follows its intent's permission (everyone, subscribers, VIPs, moderators).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from chatbridge.channel_settings import ChannelConfig
from chatbridge.commands import CONTROL, FORGET, MODEL_COMMANDS, Command, parse
from chatbridge.events import ChatEvent
from fallbacks.commands import CustomCommand, custom_commands, permitted


def privileged(event: ChatEvent) -> bool:
    return event.is_moderator or event.is_broadcaster


def turns_on(command: Command) -> bool:
    return command.control and command.prompt.lower().split()[:1] == ["on"]


def decide(
    event: ChatEvent,
    config: ChannelConfig,
    names: Iterable[str],
    custom: Mapping[str, CustomCommand] | None = None,
) -> Command | None:
    command = parse(
        event.text,
        (*names, *config.extra_names),
        mentions_bot=event.mentions_bot,
        custom=custom_commands() if custom is None else custom,
    )
    if command is None:
        return None
    if command.control:
        if not privileged(event):
            return None
        return command if config.bot_enabled or turns_on(command) else None
    if not config.bot_enabled:
        return None
    spec = command.custom
    if spec is None:
        if command.name in MODEL_COMMANDS:
            return command if command.name in config.commands else None
        return command if command.name == FORGET and config.commands else None
    if not permitted(
        spec.permission,
        moderator=event.is_moderator,
        broadcaster=event.is_broadcaster,
        vip=event.is_vip,
        subscriber=event.is_subscriber,
    ):
        return None
    return command


def cooldowns(command: Command, config: ChannelConfig) -> tuple[float, float]:
    """(per user, per channel) seconds for `command` here: a custom command's own, else the channel's."""
    if command.name == CONTROL:
        return 0.0, 0.0  # moderators only, and a moderator locked out of `on` would be absurd
    spec = command.custom
    user = spec.user_cooldown if spec is not None and spec.user_cooldown is not None else None
    channel = spec.channel_cooldown if spec is not None and spec.channel_cooldown is not None else None
    return (
        config.user_cooldown if user is None else float(user),
        config.channel_cooldown if channel is None else float(channel),
    )
