"""A fake Discord on 127.0.0.1: the REST API a bot uses and a gateway websocket.

Real discord.py logs in over REST, connects to the gateway (HELLO, IDENTIFY,
READY, GUILD_CREATE) and parses every dispatched event with its own parsers.
REST answers carry `Content-Type: application/json` exactly: discord.py reads
anything else (aiohttp's "; charset=utf-8" included) as text.

Slash commands: the bulk overwrite of application commands (global and per server),
INTERACTION_CREATE with an APPLICATION_COMMAND payload, the interaction callback and
the interaction webhook (followups, edits of the original response), with Discord's
rules: one callback per interaction, nothing on its webhook before it.

The setup page's calls: the current application (with its intent flags), the bot's
servers and their channels. `token` is the one accepted: set another to have the bot's
refused. `serving_in_thread()` runs a fake for sync code (views) calling it with httpx.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from contextlib import AbstractContextManager
from typing import Any

from aiohttp import WSMsgType, web

from chatbridge.config import DiscordConfig
from tests.fakes.threaded import in_thread

TOKEN = "fake.discord.token-9f3e"
BOT = {
    "id": "1000",
    "username": "serdabot",
    "discriminator": "0",
    "global_name": None,
    "avatar": None,
    "bot": True,
}
HUMAN = {"id": "2000", "username": "alice", "discriminator": "0", "global_name": "Alice", "avatar": None}
OTHER_BOT = {
    "id": "2500",
    "username": "musicbot",
    "discriminator": "0",
    "global_name": None,
    "avatar": None,
    "bot": True,
}
OWNER_ID = "2999"
GUILD, CHANNEL, OTHER_CHANNEL = "3000", "4000", "4001"
NOW = "2025-01-01T00:00:00+00:00"
EVERYONE_PERMISSIONS = "104324673"  # the @everyone role's: no moderation permission
MANAGE_MESSAGES = 1 << 13
MESSAGE_CONTENT_INTENT = 1 << 15
EPHEMERAL = 1 << 6  # message flags
DEFERRED_CHANNEL_MESSAGE = 5  # interaction callback types
CHANNEL_MESSAGE = 4
GATEWAY_MESSAGE_CONTENT = 1 << 18  # application flags: the intent switched on in the portal
GATEWAY_MESSAGE_CONTENT_LIMITED = 1 << 19
CATEGORY = "3900"  # a category channel (type 4): no messages, never picked
VOICE = "4002"


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        headers={**(headers or {}), "Content-Type": "application/json"},
    )


def guild_create() -> dict[str, Any]:
    return {
        "id": GUILD,
        "name": "Le serveur du stream",
        "icon": None,
        "owner_id": OWNER_ID,
        "roles": [
            {
                "id": GUILD,
                "name": "@everyone",
                "permissions": EVERYONE_PERMISSIONS,
                "position": 0,
                "color": 0,
                "hoist": False,
                "managed": False,
                "mentionable": False,
            }
        ],
        "emojis": [],
        "features": [],
        "member_count": 3,
        "large": False,
        "unavailable": False,
        "members": [],
        "presences": [],
        "voice_states": [],
        "threads": [],
        "stickers": [],
        "channels": [
            {
                "id": cid,
                "type": 0,
                "name": name,
                "position": n,
                "permission_overwrites": [],
                "guild_id": GUILD,
            }
            for n, (cid, name) in enumerate([(CHANNEL, "general"), (OTHER_CHANNEL, "off-topic")])
        ],
    }


def message_create(
    content: str,
    *,
    message_id: str,
    author: dict[str, Any] = HUMAN,
    channel: str = CHANNEL,
    mentions: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    return {
        "id": message_id,
        "channel_id": channel,
        "guild_id": GUILD,
        "author": author,
        "member": {"roles": [], "joined_at": NOW, "deaf": False, "mute": False, "flags": 0},
        "content": content,
        "timestamp": NOW,
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": list(mentions),
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": False,
        "type": 0,
    }


def thread_create(thread_id: str, parent: str, name: str = "un fil") -> dict[str, Any]:
    return {
        "id": thread_id,
        "guild_id": GUILD,
        "parent_id": parent,
        "owner_id": HUMAN["id"],
        "name": name,
        "type": 11,  # a public thread
        "last_message_id": None,
        "message_count": 0,
        "member_count": 1,
        "thread_metadata": {
            "archived": False,
            "auto_archive_duration": 1440,
            "archive_timestamp": NOW,
            "locked": False,
        },
    }


def interaction_token(interaction_id: str) -> str:
    return f"interaction-token-{interaction_id}"


def interaction_create(
    command: str,
    options: dict[str, str] | None = None,
    *,
    interaction_id: str,
    user: dict[str, Any] = HUMAN,
    channel: str = CHANNEL,
    permissions: str = EVERYONE_PERMISSIONS,
    guild: bool = True,
    guild_command: bool = True,
) -> dict[str, Any]:
    """An APPLICATION_COMMAND interaction as the gateway sends it (`/ask question:…`).

    `permissions` are the member's in that channel, as Discord computes them;
    `guild_command`: the command was synced to the server (its data names the server).
    """
    data: dict[str, Any] = {
        "id": "7700" if command == "ask" else "7701",
        "name": command,
        "type": 1,
        "options": [{"name": name, "type": 3, "value": value} for name, value in (options or {}).items()],
    }
    payload: dict[str, Any] = {
        "id": interaction_id,
        "application_id": BOT["id"],
        "type": 2,
        "token": interaction_token(interaction_id),
        "version": 1,
        "channel_id": channel,
        "data": data,
        "locale": "fr",
        "app_permissions": "2248473465835073",
        "entitlements": [],
        "attachment_size_limit": 10_485_760,
    }
    if not guild:
        payload["channel"] = {"id": channel, "type": 1, "recipients": [user]}
        payload["user"] = user
        payload["context"] = 1
        payload["authorizing_integration_owners"] = {"0": GUILD}
        return payload
    if guild_command:
        data["guild_id"] = GUILD
    payload["guild_id"] = GUILD
    payload["guild_locale"] = "fr"
    payload["context"] = 0
    payload["authorizing_integration_owners"] = {"0": GUILD}
    payload["channel"] = {
        "id": channel,
        "type": 0,
        "guild_id": GUILD,
        "name": "general",
        "position": 0,
        "permission_overwrites": [],
        "permissions": permissions,
    }
    payload["member"] = {
        "user": user,
        "roles": [],
        "joined_at": NOW,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "nick": None,
        "permissions": permissions,
    }
    return payload


class FakeDiscord:
    def __init__(self, *, token: str = TOKEN) -> None:
        self.token = token
        self.requests: list[str] = []
        self.posts: list[dict[str, Any]] = []  # messages accepted
        self.post_attempts = 0
        self.rate_limit_next = 0  # the next N message POSTs answer 429 (with Via: retried by discord.py)
        self.identified = asyncio.Event()
        self.identifies: list[dict[str, Any]] = []  # IDENTIFY payloads, token left out
        # Off: the Message Content intent is not enabled in the developer portal (close 4014).
        self.message_content_allowed = True
        # Application command bulk overwrites: (server id, or None for global; the commands).
        self.command_syncs: list[tuple[str | None, list[dict[str, Any]]]] = []
        self.refuse_sync_to: set[str] = set()  # servers answering 403 Missing Access
        self.refuse_channels_of: set[str] = set()  # servers whose channel list answers 403
        # GET /applications/@me's flags: the Message Content intent on in the portal.
        self.application_flags = GATEWAY_MESSAGE_CONTENT
        self.guilds = [guild_create()]  # the servers the bot is in (GET /users/@me/guilds)
        # Interaction callbacks, followups and edits of the original response, in order.
        self.callbacks: list[dict[str, Any]] = []
        self.followups: list[dict[str, Any]] = []
        self.edits: list[dict[str, Any]] = []
        self._messages = itertools.count(5500)
        self.sockets: list[web.WebSocketResponse] = []
        self._seq = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> FakeDiscord:
        app = web.Application(middlewares=[self._log])
        app.add_routes(
            [
                web.get("/api/v10/users/@me", self._me),
                web.get("/api/v10/oauth2/applications/@me", self._application),
                web.get("/api/v10/applications/@me", self._current_application),
                web.get("/api/v10/users/@me/guilds", self._my_guilds),
                web.get("/api/v10/guilds/{guild}/channels", self._guild_channels),
                web.post("/api/v10/channels/{channel}/messages", self._post_message),
                web.put("/api/v10/applications/{app}/commands", self._put_commands),
                web.put("/api/v10/applications/{app}/guilds/{guild}/commands", self._put_commands),
                web.post("/api/v10/interactions/{interaction}/{token}/callback", self._callback),
                web.patch("/api/v10/webhooks/{app}/{token}/messages/@original", self._edit_original),
                web.post("/api/v10/webhooks/{app}/{token}", self._followup),
                web.get("/gateway", self._gateway),
            ]
        )
        self._runner = web.AppRunner(app, access_log=None)  # its lines are the fake's, not the bot's
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        for socket in self.sockets:
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def config(self, **overrides: Any) -> DiscordConfig:
        values: dict[str, Any] = {
            "token": TOKEN,
            "api_url": f"http://127.0.0.1:{self.port}/api/v10",
            "gateway_url": f"ws://127.0.0.1:{self.port}/gateway",
        }
        values.update(overrides)
        return DiscordConfig(**values)

    def env(self, token: str = TOKEN) -> dict[str, str]:
        return {
            "DISCORD_TOKEN": token,
            "DISCORD_API_URL": f"http://127.0.0.1:{self.port}/api/v10",
            "DISCORD_GATEWAY_URL": f"ws://127.0.0.1:{self.port}/gateway",
        }

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a gateway DISPATCH to every connected client."""
        for socket in self.sockets:
            if not socket.closed:
                await socket.send_json({"op": 0, "t": event, "s": next(self._seq), "d": data})

    def replies_to(self, message_id: str) -> list[dict[str, Any]]:
        return [
            p for p in self.posts if str((p.get("message_reference") or {}).get("message_id")) == message_id
        ]

    def answers_to(self, interaction_id: str) -> list[dict[str, Any]]:
        """Everything the bot sent for one interaction, in order: its callback, then its
        followups and edits (each record's "kind" says which)."""
        token = interaction_token(interaction_id)
        sent = [
            *({"kind": "callback", **c} for c in self.callbacks),
            *({"kind": "followup", **f} for f in self.followups),
            *({"kind": "edit", **e} for e in self.edits),
        ]
        return sorted((r for r in sent if r["token"] == token), key=lambda r: r["order"])

    def synced(self, guild: str | None) -> list[str]:
        """The command names of the last overwrite for that server (None: global)."""
        names = [[c["name"] for c in commands] for where, commands in self.command_syncs if where == guild]
        return names[-1] if names else []

    @web.middleware
    async def _log(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append(f"{request.method} {request.path}")
        response: web.StreamResponse = await handler(request)
        return response

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bot {self.token}"

    async def _me(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        return _json(BOT)

    async def _application(self, request: web.Request) -> web.Response:
        return _json(
            {
                "id": BOT["id"],
                "name": "SerdaBot",
                "description": "",
                "icon": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": HUMAN,
                "verify_key": "x",
                "flags": 0,
            }
        )

    async def _current_application(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        return _json(
            {
                "id": BOT["id"],
                "name": "SerdaBot",
                "description": "",
                "icon": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "bot": BOT,
                "verify_key": "x",
                "flags": self.application_flags,
            }
        )

    async def _my_guilds(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        return _json(
            [
                {
                    "id": g["id"],
                    "name": g["name"],
                    "icon": None,
                    "owner": False,
                    "permissions": "0",
                    "features": [],
                }
                for g in self.guilds
            ]
        )

    async def _guild_channels(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        guild = next((g for g in self.guilds if g["id"] == request.match_info["guild"]), None)
        if guild is None or guild["id"] in self.refuse_channels_of:
            return _json({"message": "Missing Access", "code": 50001}, status=403)
        extra = [
            {"id": CATEGORY, "type": 4, "name": "Salons", "position": 0, "guild_id": guild["id"]},
            {"id": VOICE, "type": 2, "name": "vocal", "position": 5, "guild_id": guild["id"]},
        ]
        return _json([*guild["channels"], *extra] if guild["id"] == GUILD else guild["channels"])

    async def _post_message(self, request: web.Request) -> web.Response:
        self.post_attempts += 1
        if self.rate_limit_next > 0:
            self.rate_limit_next -= 1
            return _json(
                {"message": "You are being rate limited.", "retry_after": 0.2, "global": False},
                status=429,
                headers={
                    "X-RateLimit-Limit": "5",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset-After": "0.2",
                    "X-RateLimit-Bucket": "fake-bucket",
                    "X-RateLimit-Scope": "user",
                    "Via": "1.1 google",  # discord.py retries a 429 only when it came through Discord's proxy
                },
            )
        body = await request.json()
        self.posts.append({**body, "channel": request.match_info["channel"]})
        # The message Discord gives back: the same shape as the interactions' followups.
        return _json(self._message(request.match_info["channel"], body))

    def _message(self, channel: str, body: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {
            "id": str(next(self._messages)),
            "channel_id": channel,
            "author": BOT,
            "content": body.get("content", ""),
            "timestamp": NOW,
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "type": 0,
            "flags": body.get("flags", 0),
            **extra,
        }

    async def _put_commands(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        guild = request.match_info.get("guild")
        if guild in self.refuse_sync_to:
            return _json({"message": "Missing Access", "code": 50001}, status=403)
        body = await request.json()
        self.command_syncs.append((guild, body))
        answered = []
        for n, command in enumerate(body):
            stored = {
                **command,
                "id": str(7700 + n),
                "application_id": request.match_info["app"],
                "version": "1",
                "type": command.get("type", 1),
            }
            if guild is not None:
                stored["guild_id"] = guild
            answered.append(stored)
        return _json(answered)

    def _interaction(self, token: str) -> dict[str, Any] | None:
        """The callback an interaction got, by its token."""
        return next((c for c in self.callbacks if c["token"] == token), None)

    async def _callback(self, request: web.Request) -> web.Response:
        token, interaction = request.match_info["token"], request.match_info["interaction"]
        if token != interaction_token(interaction):
            return _json({"message": "Unknown interaction", "code": 10062}, status=404)
        if self._interaction(token) is not None:
            return _json({"message": "Interaction has already been acknowledged.", "code": 40060}, status=400)
        body = await request.json()
        order = len(self.requests)
        self.callbacks.append({**body, "token": token, "interaction": interaction, "order": order})
        flags = (body.get("data") or {}).get("flags", 0)
        resource: dict[str, Any] = {"type": body["type"]}
        if body["type"] == CHANNEL_MESSAGE:
            resource["message"] = self._message(CHANNEL, body.get("data") or {}, webhook_id=BOT["id"])
        return _json(
            {
                "interaction": {
                    "id": interaction,
                    "type": 2,
                    "response_message_loading": body["type"] == DEFERRED_CHANNEL_MESSAGE,
                    "response_message_ephemeral": bool(flags & EPHEMERAL),
                },
                "resource": resource,
            }
        )

    async def _edit_original(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        if self._interaction(token) is None:
            return _json({"message": "Unknown Webhook", "code": 10015}, status=404)
        body = await request.json()
        self.edits.append({**body, "token": token, "order": len(self.requests)})
        return _json(self._message(CHANNEL, body, webhook_id=BOT["id"]))

    async def _followup(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        if self._interaction(token) is None:
            return _json({"message": "Unknown Webhook", "code": 10015}, status=404)
        body = await request.json()
        self.followups.append({**body, "token": token, "order": len(self.requests)})
        return _json(self._message(CHANNEL, body, webhook_id=BOT["id"]))

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self.sockets.append(socket)
        await socket.send_json({"op": 10, "d": {"heartbeat_interval": 41_250}})
        async for message in socket:
            if message.type != WSMsgType.TEXT:
                break
            payload = json.loads(message.data)
            if payload["op"] == 1:  # heartbeat
                await socket.send_json({"op": 11})
            elif payload["op"] == 2:  # identify
                self.identifies.append({k: v for k, v in payload["d"].items() if k != "token"})
                if payload["d"].get("token") != self.token:
                    await socket.close(code=4004)
                    break
                if (
                    payload["d"].get("intents", 0) & MESSAGE_CONTENT_INTENT
                    and not self.message_content_allowed
                ):
                    await socket.close(code=4014)  # Disallowed intent(s)
                    break
                ready = {
                    "v": 10,
                    "user": BOT,
                    "guilds": [],
                    "session_id": "fake-session",
                    "resume_gateway_url": f"ws://127.0.0.1:{self.port}/gateway",
                    "application": {"id": BOT["id"], "flags": 0},
                }
                await socket.send_json({"op": 0, "t": "READY", "s": next(self._seq), "d": ready})
                await socket.send_json(
                    {"op": 0, "t": "GUILD_CREATE", "s": next(self._seq), "d": guild_create()}
                )
                self.identified.set()
        return socket


def serving_in_thread(**options: Any) -> AbstractContextManager[FakeDiscord]:
    """A FakeDiscord on its own event loop in a background thread, for sync code (views,
    management commands) that calls it with blocking HTTP."""
    return in_thread(FakeDiscord(**options), "fake-discord")
