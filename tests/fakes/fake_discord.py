"""A fake Discord on 127.0.0.1: the REST API a bot uses and a gateway websocket.

Real discord.py logs in over REST, connects to the gateway (HELLO, IDENTIFY,
READY, GUILD_CREATE) and parses every dispatched event with its own parsers.
REST answers carry `Content-Type: application/json` exactly: discord.py reads
anything else (aiohttp's "; charset=utf-8" included) as text.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from aiohttp import WSMsgType, web

from chatbridge.config import DiscordConfig

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
                "permissions": "104324673",
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


class FakeDiscord:
    def __init__(self, *, token: str = TOKEN) -> None:
        self.token = token
        self.requests: list[str] = []
        self.posts: list[dict[str, Any]] = []  # messages accepted
        self.post_attempts = 0
        self.rate_limit_next = 0  # the next N message POSTs answer 429 (with Via: retried by discord.py)
        self.identified = asyncio.Event()
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
                web.post("/api/v10/channels/{channel}/messages", self._post_message),
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
        return _json(
            {
                "id": str(5000 + len(self.posts)),
                "channel_id": request.match_info["channel"],
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
            }
        )

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
                if payload["d"].get("token") != self.token:
                    await socket.close(code=4004)
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
