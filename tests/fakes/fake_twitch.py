"""A fake Twitch on 127.0.0.1: OAuth (token, validate), Helix (users, channels, EventSub
subscriptions, chat messages) and the EventSub websocket.

Real twitchio talks to it over real HTTP and websockets. Payload shapes follow
Twitch's documentation (see ../shared/reference/twitch_chat_notification.py).
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web
from yarl import URL

from chatbridge.config import TwitchConfig
from tests.fakes.threaded import in_thread

CLIENT_ID = "fake-client-id"
CLIENT_SECRET = "fake-client-secret-3d9f"
BOT_ID = "2914196"
BOT_LOGIN = "serdabot_tv"
STREAMER = ("1971641", "streamer")
OTHER_CHANNEL = ("1971642", "otherchan")
VIEWER = ("4145994", "viewer32")
NIGHTBOT = ("19264788", "nightbot")

USER_TOKEN = "user-token-6b1c2f0a9e"
REFRESH_TOKEN = "refresh-token-77d0c4b1a2"
APP_TOKEN = "app-token-5e8a1b"
BOT_SCOPES = ["user:read:chat", "user:write:chat", "user:bot"]
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
NOW = "2024-01-01T00:00:00Z"


def _badges(names: list[str]) -> list[dict[str, str]]:
    # "subscriber" badges carry the months in "info"; the adapter reads only set_id.
    return [{"set_id": b, "id": "1", "info": ""} for b in names]


def chat_message(
    text: str,
    *,
    chatter: tuple[str, str] = VIEWER,
    broadcaster: tuple[str, str] = STREAMER,
    badges: list[str] = (),  # type: ignore[assignment]
    mention: tuple[str, str] | None = None,
    message_id: str | None = None,
    source: tuple[str, str] | None = None,
    source_message_id: str | None = None,
    source_badges: list[str] | None = None,
) -> dict[str, Any]:
    """A `channel.chat.message` websocket notification, as Twitch sends it.

    `source`, `source_message_id`, `source_badges`: a Shared Chat copy of a message typed
    in channel `source` (see `shared_chat_copies`).
    """
    if mention is not None:
        # "@name rest" where "@name" is a mention fragment carrying the user's id.
        at = f"@{mention[1]}"
        rest = text.removeprefix(at)
        fragments: list[dict[str, Any]] = [
            {
                "type": "mention",
                "text": at,
                "cheermote": None,
                "emote": None,
                "mention": {"user_id": mention[0], "user_login": mention[1], "user_name": mention[1]},
            }
        ]
        if rest:
            fragments.append(
                {"type": "text", "text": rest, "cheermote": None, "emote": None, "mention": None}
            )
    else:
        fragments = [{"type": "text", "text": text, "cheermote": None, "emote": None, "mention": None}]
    return {
        "metadata": {
            "message_id": str(uuid.uuid4()),
            "message_type": "notification",
            "message_timestamp": NOW,
            "subscription_type": "channel.chat.message",
            "subscription_version": "1",
        },
        "payload": {
            "subscription": {
                "id": str(uuid.uuid4()),
                "status": "enabled",
                "type": "channel.chat.message",
                "version": "1",
                "condition": {"broadcaster_user_id": broadcaster[0], "user_id": BOT_ID},
                "transport": {"method": "websocket", "session_id": "fake"},
                "created_at": NOW,
                "cost": 0,
            },
            "event": {
                "broadcaster_user_id": broadcaster[0],
                "broadcaster_user_login": broadcaster[1],
                "broadcaster_user_name": broadcaster[1].capitalize(),
                "chatter_user_id": chatter[0],
                "chatter_user_login": chatter[1],
                "chatter_user_name": chatter[1].capitalize(),
                "message_id": message_id or str(uuid.uuid4()),
                "message": {"text": text, "fragments": fragments},
                "color": "#00FF7F",
                "badges": _badges(badges),
                "message_type": "text",
                "cheer": None,
                "reply": None,
                "channel_points_custom_reward_id": None,
                "channel_points_animation_id": None,
                "source_broadcaster_user_id": source[0] if source else None,
                "source_broadcaster_user_login": source[1] if source else None,
                "source_broadcaster_user_name": source[1].capitalize() if source else None,
                "source_message_id": source_message_id,
                "source_badges": None if source_badges is None else _badges(source_badges),
            },
        },
    }


def shared_chat_copies(
    text: str,
    *,
    source: tuple[str, str],
    channels: list[tuple[str, str]],
    chatter: tuple[str, str] = VIEWER,
    badges: list[str] = (),  # type: ignore[assignment]
    elsewhere_badges: list[str] = (),  # type: ignore[assignment]
    source_fields_in_source: bool = False,
) -> list[dict[str, Any]]:
    """One message typed in `source` during a Shared Chat session, as each of `channels` gets it.

    The source channel's copy has its own id and, as Twitch documents it, null source
    fields (`source_fields_in_source`: filled in, naming the channel itself). Every other
    copy has a new id, the source's id, channel and the chatter's badges there
    (`badges`), and in `badges` the chatter's badges in the receiving channel
    (`elsewhere_badges`).
    """
    original = str(uuid.uuid4())
    copies = []
    for channel in channels:
        if channel == source and not source_fields_in_source:
            copy = chat_message(
                text, chatter=chatter, broadcaster=channel, badges=badges, message_id=original
            )
        else:
            here = channel == source
            copy = chat_message(
                text,
                chatter=chatter,
                broadcaster=channel,
                badges=badges if here else elsewhere_badges,
                message_id=original if here else None,
                source=source,
                source_message_id=original,
                source_badges=badges,
            )
        copies.append(copy)
    return copies


def channel_update(broadcaster: tuple[str, str], title: str, game: tuple[str, str]) -> dict[str, Any]:
    """A `channel.update` (version 2) websocket notification; `game` is (category id, name)."""
    return {
        "metadata": {
            "message_id": str(uuid.uuid4()),
            "message_type": "notification",
            "message_timestamp": NOW,
            "subscription_type": "channel.update",
            "subscription_version": "2",
        },
        "payload": {
            "subscription": {
                "id": str(uuid.uuid4()),
                "status": "enabled",
                "type": "channel.update",
                "version": "2",
                "condition": {"broadcaster_user_id": broadcaster[0]},
                "transport": {"method": "websocket", "session_id": "fake"},
                "created_at": NOW,
                "cost": 1,
            },
            "event": {
                "broadcaster_user_id": broadcaster[0],
                "broadcaster_user_login": broadcaster[1],
                "broadcaster_user_name": broadcaster[1].capitalize(),
                "title": title,
                "language": "fr",
                "category_id": game[0],
                "category_name": game[1],
                "content_classification_labels": [],
            },
        },
    }


def bot_message(broadcaster: tuple[str, str], *, moderator: bool = True) -> dict[str, Any]:
    """The bot's own line as its channel's chat echoes it: with a moderator badge where it is one."""
    text = "MrDestructoid"
    return chat_message(
        text, chatter=(BOT_ID, BOT_LOGIN), broadcaster=broadcaster, badges=["moderator"] if moderator else []
    )


@dataclass
class DevicePlan:
    """How a device code ends: approved by `user` with `scopes`, or refused with `message`
    ("expired_token", "invalid device code"), after `after_polls` pending polls, the
    first `slow_downs` of which answer slow_down."""

    user: tuple[str, str] | None = None
    scopes: list[str] | None = None
    message: str = ""
    after_polls: int = 0
    slow_downs: int = 0


@dataclass
class Device:
    user_code: str
    scopes: list[str]
    plan: DevicePlan | None = None
    polls: int = 0


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": "fake", "status": status, "message": message}, status=status)


class FakeTwitch:
    def __init__(self, *, keepalive_every: float = 2.0) -> None:
        self.keepalive_every = keepalive_every
        self.client_secret = CLIENT_SECRET
        self.users = {
            uid: login for uid, login in (STREAMER, OTHER_CHANNEL, VIEWER, NIGHTBOT, (BOT_ID, BOT_LOGIN))
        }
        # token -> (user id, scopes, expires_in); refresh token -> user id
        self.user_tokens: dict[str, tuple[str, list[str], int]] = {USER_TOKEN: (BOT_ID, BOT_SCOPES, 14_000)}
        self.refresh_tokens: dict[str, str] = {REFRESH_TOKEN: BOT_ID}
        self.requests: list[str] = []
        self.subscriptions: list[dict[str, Any]] = []
        self.unsubscribed: list[dict[str, Any]] = []  # subscriptions deleted (DELETE ?id=), in order
        self.sent: list[dict[str, Any]] = []  # chat messages accepted
        self.chat_posts = 0  # every POST /chat/messages, accepted or not
        # What the next chat POSTs answer: "429", "duplicate"; empty: accepted.
        self.chat_script: deque[str] = deque()
        self.stamp: Callable[[], float] | None = None  # a clock to stamp accepted messages with
        # Broadcasters who gave no channel:bot (and the bot is no moderator): app-token sends get 403.
        self.no_channel_bot: set[str] = set()
        self.token_outages = 0  # the next N OAuth token requests answer 500
        # GET /channels: title and (category id, name) by broadcaster id; unknown ids get nothing.
        self.channel_info: dict[str, tuple[str, tuple[str, str]]] = {}
        self.channel_queries: list[list[str]] = []  # the broadcaster ids of each GET /channels
        self.channels_status = 200  # anything else: GET /channels fails with it
        # Subscription types Twitch refuses: type -> (status, message).
        self.refused_subscriptions: dict[str, tuple[int, str]] = {}
        self.sockets: list[tuple[str, web.WebSocketResponse]] = []
        # Authorization-code grant: code -> (user id, scopes), single use (see grant_code).
        self.codes: dict[str, tuple[str, list[str]]] = {}
        # The authorize page: who is signed in to approve (sign_in_as), and each visit's query.
        self.signed_in: tuple[tuple[str, str], list[str] | None] | None = None
        self.authorizations: list[dict[str, str]] = []
        # Every OAuth token request's parameters, query and form body together.
        self.token_requests: list[dict[str, str]] = []
        # Device-code grant: device code -> Device; what the next one started will do.
        self.devices: dict[str, Device] = {}
        self.device_interval: float = 5
        self.device_expires_in: float = 1800
        self.device_polls = 0
        self._device_plan: DevicePlan | None = None
        self._sessions = itertools.count(1)
        self._issued = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.port = 0

    # Life cycle.

    async def start(self) -> FakeTwitch:
        app = web.Application(middlewares=[self._log])
        app.add_routes(
            [
                web.post("/oauth2/token", self._token),
                web.post("/oauth2/device", self._device),
                web.get("/oauth2/authorize", self._authorize),
                web.get("/oauth2/validate", self._validate),
                web.get("/helix/users", self._users),
                web.get("/helix/channels", self._channels),
                web.post("/helix/eventsub/subscriptions", self._subscribe),
                web.delete("/helix/eventsub/subscriptions", self._unsubscribe),
                web.post("/helix/chat/messages", self._chat),
                web.get("/ws", self._websocket),
            ]
        )
        self._runner = web.AppRunner(app, access_log=None)  # its lines are the fake's, not the bot's
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.loop = asyncio.get_running_loop()
        return self

    async def close(self) -> None:
        for task in self._background:
            task.cancel()
        for _, socket in self.sockets:
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self, **overrides: Any) -> TwitchConfig:
        values: dict[str, Any] = {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "bot_id": BOT_ID,
            "channels": (STREAMER[1],),
            "bot_token": USER_TOKEN,
            "refresh_token": REFRESH_TOKEN,
            "api_url": f"{self.base}/helix/",
            "auth_url": f"{self.base}/",
            "eventsub_url": f"ws://127.0.0.1:{self.port}/ws",
        }
        values.update(overrides)
        return TwitchConfig(**values)

    def add_channel(self, login: str) -> tuple[str, str]:
        """A new broadcaster (id, login) the bot can be configured to read."""
        by_login = {name: uid for uid, name in self.users.items()}
        if login in by_login:
            return by_login[login], login
        uid = str(30_000_000 + len(self.users))
        self.users[uid] = login
        return uid, login

    def env(self, channels: tuple[str, ...] = (STREAMER[1],)) -> dict[str, str]:
        return {
            "TWITCH_CLIENT_ID": CLIENT_ID,
            "TWITCH_CLIENT_SECRET": CLIENT_SECRET,
            "TWITCH_BOT_ID": BOT_ID,
            "TWITCH_CHANNELS": ",".join(channels),
            "TWITCH_BOT_TOKEN": USER_TOKEN,
            "TWITCH_REFRESH_TOKEN": REFRESH_TOKEN,
            "TWITCH_API_URL": f"{self.base}/helix/",
            "TWITCH_AUTH_URL": f"{self.base}/",
            "TWITCH_EVENTSUB_URL": f"ws://127.0.0.1:{self.port}/ws",
        }

    # What tests do.

    async def push(self, notification: dict[str, Any]) -> None:
        """Send a notification over the newest websocket that has a subscription."""
        sessions = {s["transport"]["session_id"] for s in self.subscriptions}
        for session, socket in reversed(self.sockets):
            if session in sessions and not socket.closed:
                notification["payload"]["subscription"]["transport"]["session_id"] = session
                await socket.send_json(notification)
                return
        raise AssertionError("no subscribed websocket to push to")

    async def drop_websockets(self) -> None:
        for _, socket in self.sockets:
            await socket.close()

    def replies_to(self, message_id: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if m.get("reply_parent_message_id") == message_id]

    def sign_in_as(self, user: tuple[str, str], scopes: list[str] | None = None) -> None:
        """The next visits to the authorize page approve at once, as `user` (id, login),
        granting what was asked (or `scopes`), and redirect back with a code."""
        self.signed_in = (user, scopes)

    def call(self, coroutine: Any, timeout: float = 10.0) -> Any:
        """Run a coroutine on the fake's own loop (from a test's thread)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    async def _authorize(self, request: web.Request) -> web.Response:
        # What the browser meets on Twitch: the consent page, approved by a signed-in user.
        self.authorizations.append(dict(request.query))
        if self.signed_in is None:
            return web.Response(text="Log in to Twitch", content_type="text/html")
        user, scopes = self.signed_in
        granted = scopes if scopes is not None else request.query.get("scope", "").split()
        code = f"code-{uuid.uuid4().hex[:12]}"
        self.grant_code(code, user, granted)
        target = URL(request.query["redirect_uri"]).update_query(
            code=code, scope=" ".join(granted), state=request.query.get("state", "")
        )
        raise web.HTTPFound(str(target))

    def grant_code(self, code: str, user: tuple[str, str], scopes: list[str]) -> None:
        """`user` (id, login) approved `scopes` on the authorize page; Twitch redirects with `code`."""
        self.users[user[0]] = user[1]
        self.codes[code] = (user[0], list(scopes))

    def approve_device(
        self,
        user: tuple[str, str],
        scopes: list[str] | None = None,
        *,
        after_polls: int = 0,
        slow_downs: int = 0,
    ) -> None:
        """`user` enters the code of the newest waiting device flow (or of the next one
        started): the token request after `after_polls` pending polls gets tokens for
        `scopes` (default: those the device flow asked for)."""
        self.users[user[0]] = user[1]
        self._decide(DevicePlan(user=user, scopes=scopes, after_polls=after_polls, slow_downs=slow_downs))

    def expire_device(self, *, after_polls: int = 0, message: str = "expired_token") -> None:
        """The newest waiting device code (or the next one) runs out after `after_polls` polls."""
        self._decide(DevicePlan(message=message, after_polls=after_polls))

    def _decide(self, plan: DevicePlan) -> None:
        waiting = [d for d in self.devices.values() if d.plan is None]
        if waiting:
            waiting[-1].plan = plan
        else:
            self._device_plan = plan

    # Handlers.

    @web.middleware
    async def _log(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append(f"{request.method} {request.path}")
        response: web.StreamResponse = await handler(request)
        return response

    async def _token(self, request: web.Request) -> web.Response:
        # twitchio sends query parameters; the setup pages a form body, as Twitch documents.
        query = {k: str(v) for k, v in [*request.query.items(), *(await request.post()).items()]}
        self.token_requests.append(query)
        if self.token_outages > 0:
            self.token_outages -= 1
            return _error(500, "Internal Server Error")
        if query.get("grant_type") == DEVICE_GRANT:
            # A public client's device flow: the client id only, no secret.
            return self._device_token(query)
        if query.get("client_id") != CLIENT_ID or query.get("client_secret") != self.client_secret:
            return _error(403, "invalid client secret")
        if query.get("grant_type") == "authorization_code":
            granted = self.codes.pop(query.get("code", ""), None)
            if granted is None:
                return _error(400, "Invalid authorization code")
            return self._issue(*granted)
        if query.get("grant_type") == "client_credentials":
            return web.json_response(
                {"access_token": APP_TOKEN, "expires_in": 5_000_000, "token_type": "bearer"}
            )
        user_id = self.refresh_tokens.pop(query.get("refresh_token", ""), None)
        if user_id is None:
            return _error(400, "Invalid refresh token")
        n = next(self._issued)
        token, refresh = f"user-token-refreshed-{n}a9", f"refresh-token-refreshed-{n}c4"
        self.user_tokens[token] = (user_id, BOT_SCOPES, 14_000)
        self.refresh_tokens[refresh] = user_id
        return web.json_response(
            {
                "access_token": token,
                "refresh_token": refresh,
                "expires_in": 14_000,
                "scope": BOT_SCOPES,
                "token_type": "bearer",
            }
        )

    def _issue(self, user_id: str, scopes: list[str]) -> web.Response:
        n = next(self._issued)
        token, refresh = f"user-token-granted-{n}e5", f"refresh-token-granted-{n}f7"
        self.user_tokens[token] = (user_id, scopes, 14_000)
        self.refresh_tokens[refresh] = user_id
        return web.json_response(
            {
                "access_token": token,
                "refresh_token": refresh,
                "expires_in": 14_000,
                "scope": scopes,
                "token_type": "bearer",
            }
        )

    async def _device(self, request: web.Request) -> web.Response:
        params = {k: str(v) for k, v in [*request.query.items(), *(await request.post()).items()]}
        if params.get("client_id") != CLIENT_ID:
            return _error(400, "invalid client")
        n = next(self._issued)
        device_code, user_code = f"device-code-{n}b8", f"FAKE{n:04d}"
        device = Device(user_code, params.get("scopes", "").split(), plan=self._device_plan)
        self._device_plan = None
        self.devices[device_code] = device
        return web.json_response(
            {
                "device_code": device_code,
                "expires_in": self.device_expires_in,
                "interval": self.device_interval,
                "user_code": user_code,
                "verification_uri": f"https://www.twitch.tv/activate?public=true&device-code={user_code}",
            }
        )

    def _device_token(self, query: dict[str, str]) -> web.Response:
        device = self.devices.get(query.get("device_code", ""))
        if device is None or query.get("client_id") != CLIENT_ID:
            return _error(400, "invalid device code")
        self.device_polls += 1
        device.polls += 1
        plan = device.plan
        if plan is None or device.polls <= plan.after_polls:
            if plan is not None and plan.slow_downs > 0:
                plan.slow_downs -= 1
                return _error(400, "slow_down")
            return _error(400, "authorization_pending")
        del self.devices[query["device_code"]]
        if plan.user is None:
            return _error(400, plan.message)
        return self._issue(plan.user[0], plan.scopes if plan.scopes is not None else device.scopes)

    async def _validate(self, request: web.Request) -> web.Response:
        # Twitch takes "OAuth <token>" or "Bearer <token>" here; twitchio sends either.
        token = request.headers.get("Authorization", "").removeprefix("OAuth ").removeprefix("Bearer ")
        if token == APP_TOKEN:
            return web.json_response({"client_id": CLIENT_ID, "scopes": [], "expires_in": 5_000_000})
        if token not in self.user_tokens:
            return _error(401, "invalid access token")
        user_id, scopes, expires_in = self.user_tokens[token]
        return web.json_response(
            {
                "client_id": CLIENT_ID,
                "login": self.users[user_id],
                "user_id": user_id,
                "scopes": scopes,
                "expires_in": expires_in,
            }
        )

    def _bearer(self, request: web.Request) -> str:
        return request.headers.get("Authorization", "").removeprefix("Bearer ")

    async def _users(self, request: web.Request) -> web.Response:
        if self._bearer(request) not in (APP_TOKEN, *self.user_tokens):
            return _error(401, "invalid access token")
        by_login = {login: uid for uid, login in self.users.items()}
        ids = request.query.getall("id", []) + [
            by_login[x] for x in request.query.getall("login", []) if x in by_login
        ]
        data = [
            {
                "id": uid,
                "login": self.users[uid],
                "display_name": self.users[uid].capitalize(),
                "type": "",
                "broadcaster_type": "",
                "description": "",
                "profile_image_url": "http://127.0.0.1/x.png",
                "offline_image_url": "",
                "created_at": NOW,
            }
            for uid in ids
            if uid in self.users
        ]
        return web.json_response({"data": data})

    async def _channels(self, request: web.Request) -> web.Response:
        if self._bearer(request) not in (APP_TOKEN, *self.user_tokens):
            return _error(401, "invalid access token")
        ids = request.query.getall("broadcaster_id", [])
        self.channel_queries.append(ids)
        if self.channels_status != 200:
            return _error(self.channels_status, "fake outage")
        if not 1 <= len(ids) <= 100:
            return _error(400, "between 1 and 100 broadcaster_id")
        data = [
            {
                "broadcaster_id": uid,
                "broadcaster_login": self.users[uid],
                "broadcaster_name": self.users[uid].capitalize(),
                "broadcaster_language": "fr",
                "game_id": self.channel_info[uid][1][0],
                "game_name": self.channel_info[uid][1][1],
                "title": self.channel_info[uid][0],
                "delay": 0,
                "tags": [],
                "content_classification_labels": [],
                "is_branded_content": False,
            }
            for uid in ids
            if uid in self.users and uid in self.channel_info
        ]
        return web.json_response({"data": data})

    async def _subscribe(self, request: web.Request) -> web.Response:
        token = self._bearer(request)
        if token not in self.user_tokens:
            return _error(401, "invalid access token")
        body = await request.json()
        if body["type"] in self.refused_subscriptions:
            return _error(*self.refused_subscriptions[body["type"]])
        subscription = {
            "id": str(uuid.uuid4()),
            "status": "enabled",
            "type": body["type"],
            "version": body["version"],
            "condition": body["condition"],
            "transport": body["transport"],
            "created_at": NOW,
            "cost": 0,
        }
        self.subscriptions.append({**subscription, "token": token})
        return web.json_response(
            {"data": [subscription], "total": 1, "total_cost": 0, "max_total_cost": 10}, status=202
        )

    async def _unsubscribe(self, request: web.Request) -> web.Response:
        if self._bearer(request) not in self.user_tokens:
            return _error(401, "invalid access token")
        wanted = request.query.get("id", "")
        found = [s for s in self.subscriptions if s["id"] == wanted]
        if not found:
            return _error(404, "subscription not found")
        self.subscriptions.remove(found[0])
        self.unsubscribed.append(found[0])
        return web.Response(status=204)

    async def _chat(self, request: web.Request) -> web.Response:
        self.chat_posts += 1
        body = await request.json()
        if self._bearer(request) == APP_TOKEN and body["broadcaster_id"] in self.no_channel_bot:
            return _error(403, "The broadcaster must authorize channel:bot or the sender must be a moderator")
        outcome = self.chat_script.popleft() if self.chat_script else "ok"
        if outcome == "429":
            return _error(429, "Too Many Requests")
        if outcome == "duplicate":
            dropped = {"code": "msg_duplicate", "message": "Your message is identical to one sent recently."}
            return web.json_response({"data": [{"message_id": "", "is_sent": False, "drop_reason": dropped}]})
        record = {**body, "auth": request.headers.get("Authorization", "")}
        if self.stamp is not None:
            record["t"] = self.stamp()
        self.sent.append(record)
        return web.json_response(
            {"data": [{"message_id": str(uuid.uuid4()), "is_sent": True, "drop_reason": None}]}
        )

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        session = f"session-{next(self._sessions)}"
        self.sockets.append((session, socket))
        await socket.send_json(
            {
                "metadata": {
                    "message_id": str(uuid.uuid4()),
                    "message_type": "session_welcome",
                    "message_timestamp": NOW,
                },
                "payload": {
                    "session": {
                        "id": session,
                        "status": "connected",
                        "connected_at": NOW,
                        "keepalive_timeout_seconds": 10,
                        "reconnect_url": None,
                    }
                },
            }
        )
        keepalive = asyncio.create_task(self._keepalive(socket))
        self._background.add(keepalive)
        try:
            async for message in socket:
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            keepalive.cancel()
            self._background.discard(keepalive)
        return socket

    async def _keepalive(self, socket: web.WebSocketResponse) -> None:
        # Without these twitchio decides the connection is dead after 10 + 5 s.
        while not socket.closed:
            await asyncio.sleep(self.keepalive_every)
            if socket.closed:
                return
            await socket.send_json(
                {
                    "metadata": {
                        "message_id": str(uuid.uuid4()),
                        "message_type": "session_keepalive",
                        "message_timestamp": NOW,
                    },
                    "payload": {},
                }
            )


def serving_in_thread(**options: Any) -> AbstractContextManager[FakeTwitch]:
    """A FakeTwitch on its own event loop in a background thread, for sync code (views,
    management commands) that calls it with blocking HTTP."""
    return in_thread(FakeTwitch(**options), "fake-twitch")
