"""A phrase for one chat line: the set, the channel's language and fallback mode, no repeat,
`{user}` and `{channel}` filled. The handler, the adapters' guard and the web chat's guard
all pick this way."""

from __future__ import annotations

from dataclasses import dataclass

from chatbridge.channel_settings import ChannelConfig
from chatbridge.commands import Command
from chatbridge.events import ChatEvent
from chatbridge.sanitize import fill_variables
from fallbacks.services import LastPhrases, choose_fallback


@dataclass(frozen=True, slots=True)
class Picked:
    intent: str  # the phrase set it came from (chill standing in for a set without phrases)
    text: str  # as written, or the fixed text of the silent and minimal modes
    body: str  # with {user} and {channel} filled: what goes after "@user "
    fixed: bool  # the silent or minimal mode's text, which may repeat: it is the mode

    @property
    def phrase(self) -> str:
        """What `Reply.phrase` carries for the no-repeat rule ("" for a fixed text)."""
        return "" if self.fixed else self.text


def phrase_mode(command: Command | None, intent: str, mode: str) -> str:
    """The fallback mode for a phrase of `intent` answering `command`.

    A custom command's own phrases are its answer, not a stand-in for a model that failed:
    the silent and minimal modes (a neutral sentence, "🤖") do not replace them.
    """
    return "fun" if command is not None and command.custom is not None and intent == command.intent else mode


def pick(
    event: ChatEvent,
    intent: str,
    config: ChannelConfig,
    mode: str,
    *,
    command: Command | None = None,
    memory: LastPhrases | None = None,
) -> Picked:
    """A phrase of `intent` for `event`, in `mode` (the channel's own mode wins over it)."""
    mode = phrase_mode(command, intent, config.fallback_mode or mode)
    fallback = choose_fallback(
        intent, mode, language=config.language, channel=f"{event.platform}:{event.channel}", memory=memory
    )
    body = fill_variables(fallback.text, user=event.user, channel=event.channel_name or event.channel)
    return Picked(fallback.intent, fallback.text, body, mode != "fun")
