"""Sending one reply through Helix `POST /chat/messages`, errors translated for the outbox."""

from __future__ import annotations

import logging
from collections import OrderedDict

import twitchio

from chatbridge.adapters.outbound import Outgoing, RateLimited, Rejected
from chatbridge.sanitize import one_line, trim

log = logging.getLogger("chatbridge.twitch")

TWITCH_LIMIT = 500
# Shared-chat copies answered where they arrived, remembered until their reply is sent.
REPLY_PARENTS_AT_MOST = 5_000


class ReplyParents:
    """What a reply's parent id is called in the channel it goes to.

    A shared-chat event is keyed on the source message id. Answered in the channel that
    showed a copy (the bot does not read the source), the reply must name that copy's own
    id there. Bounded by count: a reply goes out within seconds.
    """

    def __init__(self, at_most: int = REPLY_PARENTS_AT_MOST) -> None:
        self.at_most = at_most
        self._local: OrderedDict[tuple[str, str], str] = OrderedDict()

    def note(self, channel_id: str, message_id: str, local_id: str) -> None:
        if message_id == local_id:
            return
        self._local[(channel_id, message_id)] = local_id
        self._local.move_to_end((channel_id, message_id))
        while len(self._local) > self.at_most:
            self._local.popitem(last=False)

    def local(self, channel_id: str, message_id: str) -> str:
        return self._local.get((channel_id, message_id), message_id)

    def __len__(self) -> int:
        return len(self._local)


def chat_text(text: str) -> str:
    # twitchio measures the whitespace-collapsed text but sends the original: collapse
    # first, so what is measured is what is sent.
    return trim(one_line(text), TWITCH_LIMIT)


class AppTokenRefused(Exception):
    """403 on an app-token send: the channel gave no channel:bot and the bot is not a moderator."""


class HelixSender:
    def __init__(self, client: twitchio.Client, bot_id: str, parents: ReplyParents | None = None) -> None:
        self.client = client
        self.bot_id = bot_id
        self.parents = parents if parents is not None else ReplyParents()
        # Channels where the app token may not chat: the bot's user token is used there.
        self.as_user: set[str] = set()

    async def __call__(self, message: Outgoing) -> None:
        try:
            await self._post(message)
        except AppTokenRefused as refused:
            # The app token (chat-bot badge) needs channel:bot or moderator status; the
            # bot's own user token needs neither. Same message, sent as the bot's user.
            log.warning(
                "Twitch: #%s refused the bot's app token (%s); sending as the bot's user, without the "
                "chat-bot badge (have the broadcaster grant channel:bot, or make the bot a moderator)",
                message.channel,
                refused,
            )
            self.as_user.add(message.channel)
            await self._post(message)

    async def _post(self, message: Outgoing) -> None:
        as_user = message.channel in self.as_user
        channel = self.client.create_partialuser(message.channel_id, message.channel)
        try:
            await channel.send_message(
                chat_text(message.text),
                sender=self.bot_id,
                token_for=self.bot_id if as_user else None,
                reply_to_message_id=self.parents.local(message.channel_id, message.reply_to) or None,
            )
        except twitchio.MessageRejectedError as exc:
            # is_sent false: msg_duplicate, AutoMod, channel settings... Retrying will not help.
            raise Rejected(f"{exc.code or 'rejected'}: {exc.message or 'no detail'}") from None
        except twitchio.HTTPException as exc:
            reason = f"HTTP {exc.status}: {exc.extra.get('message', '')}"
            if exc.status == 429:
                raise RateLimited() from None
            if exc.status == 403 and not as_user:
                raise AppTokenRefused(reason) from None
            if 400 <= exc.status < 500:
                raise Rejected(reason) from None
            raise
