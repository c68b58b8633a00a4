"""A loopback fake of Discord's REST API (the parts briefbot uses), as an aiohttp app on 127.0.0.1.

It speaks the real wire format closely enough for discord.py 2.7 to parse its answers:
- every JSON reply has `Content-Type: application/json` exactly (discord.py compares the header
  verbatim; with `; charset=utf-8` it would treat the body as text);
- messages are full message objects, so `Webhook.send(wait=True)` can build a `WebhookMessage`;
- 429s carry `Via` (without it discord.py assumes a Cloudflare ban and gives up), a JSON body with
  `retry_after`, `X-RateLimit-*` headers and `Retry-After`.

Routes (all under /api/v10):
  GET  /users/@me, /oauth2/applications/@me, /gateway/bot
  GET  /channels/{id}                                -> a guild text channel (with its `guild_id`)
  GET  /webhooks/{id}/{token}                        -> the webhook object (its `guild_id`, `channel_id`)
  POST /channels/{id}/messages                       -> `messages` (deduplicated by nonce; a reply
                                                        with `message_reference` is type 19)
  PATCH /channels/{id}/messages/{message}            -> `message_edits` (the message is changed in place)
  POST /webhooks/{id}/{token}[?wait=true]            -> `webhook_executions`, or `followups` for the app id
  PATCH /webhooks/{app}/{token}/messages/@original   -> `edits`
  POST /interactions/{id}/{token}/callback           -> `callbacks`
  PUT  /applications/{app}/commands, /applications/{app}/guilds/{guild}/commands -> `command_syncs`

Gateway (enough for `briefbot run` to receive commands): GET /gateway/bot names ws://…/gateway, where
the fake sends HELLO, answers IDENTIFY with READY and heartbeats with ACK, and `dispatch(...)` pushes
events such as INTERACTION_CREATE to every connected client.

Failures are scripted per path with `fail(...)` / `rate_limit(...)`, consumed in order; `hold(...)`
creates a channel message and answers only once an event is set (a client killed while waiting).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

API_PREFIX = "/api/v10"
BOT_USER_ID = "900000000000000001"
APPLICATION_ID = "900000000000000002"
# The server every fake channel and webhook belongs to, and the channel a webhook posts to.
GUILD_ID = "910000000000000001"
WEBHOOK_CHANNEL_ID = "800000000000000002"

# Discord's JSON error codes used by the tests.
UNKNOWN_CHANNEL = 10003
UNKNOWN_WEBHOOK = 10015
UNKNOWN_MESSAGE = 10008
INVALID_FORM_BODY = 50035
MISSING_ACCESS = 50001
# Permission bits (https://discord.com/developers/docs/topics/permissions).
ADMINISTRATOR = 1 << 3
MANAGE_CHANNELS = 1 << 4
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
USE_APPLICATION_COMMANDS = 1 << 31
ALL_PERMISSIONS = (1 << 51) - 1
_ERROR_MESSAGES = {UNKNOWN_CHANNEL: "Unknown Channel", UNKNOWN_WEBHOOK: "Unknown Webhook", UNKNOWN_MESSAGE: "Unknown Message",
                   MISSING_ACCESS: "Missing Access", 0: "401: Unauthorized"}


@dataclass
class Recorded:
    method: str
    path: str  # without the /api/v10 prefix
    query: dict[str, str]
    headers: dict[str, str]
    body: Any  # parsed JSON, or None

    @property
    def payload(self) -> dict:
        return self.body if isinstance(self.body, dict) else {}


@dataclass
class Scripted:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return web.Response(status=status, body=json.dumps(data).encode("utf-8"), headers=all_headers)


class FakeDiscord:
    def __init__(self, *, bot_token: str = "fake-bot-token-0123456789") -> None:
        self.bot_token = bot_token
        self.application_id = APPLICATION_ID
        self.channels: set[str] = set()
        self.webhooks: dict[str, str] = {}  # id -> token
        self.channel_guilds: dict[str, str] = {}  # channel id -> its guild id
        self.webhook_places: dict[str, tuple[str, str]] = {}  # webhook id -> (guild id, channel id)
        self.requests: list[Recorded] = []
        self.messages: list[dict] = []  # {"channel_id", "payload", "id"} for each created channel message
        self.webhook_executions: list[dict] = []
        self.followups: list[dict] = []
        self.edits: list[dict] = []
        self.message_edits: list[dict] = []  # {"channel_id", "message_id", "payload"} per channel message edit
        self._stored: dict[str, dict] = {}  # message id -> the channel message as it stands
        self._holds: dict[str, list[asyncio.Event]] = {}
        self.callbacks: list[dict] = []
        self.command_syncs: list[dict] = []
        self.guild_roles: dict[str, dict[str, int]] = {}  # guild id -> role id -> permission bits
        self._scripts: dict[str, list[Scripted]] = {}
        self._nonces: dict[tuple[str, str], dict] = {}
        self._ids = itertools.count(1_100_000_000_000_000_001)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self.gateway_received: list[dict] = []
        self._sockets: list[web.WebSocketResponse] = []
        self._sequence = itertools.count(1)
        self.identified = asyncio.Event()
        self._recorded = asyncio.Condition()

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> "FakeDiscord":
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return self.origin + API_PREFIX

    # ----------------------------------------------------------------- setup helpers
    def add_channel(self, channel_id: int | str, guild_id: str = GUILD_ID) -> str:
        self.channels.add(str(channel_id))
        self.channel_guilds[str(channel_id)] = guild_id
        return str(channel_id)

    def add_webhook(self, webhook_id: int | str, token: str, channel_id: str = WEBHOOK_CHANNEL_ID,
                    guild_id: str = GUILD_ID) -> str:
        self.webhooks[str(webhook_id)] = token
        self.webhook_places[str(webhook_id)] = (guild_id, channel_id)
        return f"https://discord.com/api/webhooks/{webhook_id}/{token}"

    # ----------------------------------------------------------------- guild roles and members
    async def create_guild(self, guild_id: str, roles: dict[str, int]) -> None:
        """Send GUILD_CREATE for a guild whose roles (id -> permission bits) are these, as Discord does
        for every guild of a bot with the `guilds` intent; the role whose id is the guild's is @everyone."""
        self.guild_roles[guild_id] = dict(roles)
        role_objects = [{"id": role_id, "name": "@everyone" if role_id == guild_id else f"role-{role_id[-4:]}",
                         "color": 0, "hoist": False, "icon": None, "unicode_emoji": None, "position": i,
                         "permissions": str(bits), "managed": False, "mentionable": False, "flags": 0}
                        for i, (role_id, bits) in enumerate(roles.items())]
        await self.dispatch("GUILD_CREATE", {
            "id": guild_id, "name": "Briefbot test guild", "icon": None, "owner_id": "700000000000000009",
            "roles": role_objects, "emojis": [], "stickers": [], "features": [], "channels": [], "threads": [],
            "members": [], "presences": [], "voice_states": [], "stage_instances": [],
            "guild_scheduled_events": [], "member_count": 2, "large": False, "unavailable": False,
            "joined_at": "2024-01-01T00:00:00+00:00", "verification_level": 0, "default_message_notifications": 0,
            "explicit_content_filter": 0, "mfa_level": 0, "nsfw_level": 0, "premium_tier": 0,
            "preferred_locale": "en-US", "system_channel_flags": 0})

    def member(self, guild_id: str, user_id: str, role_ids: list[str]) -> dict:
        """The `member` object of an interaction: its roles and its permissions, computed as Discord
        does without channel overwrites (@everyone's bits, OR each role's; Administrator means all)."""
        roles = self.guild_roles.get(guild_id, {})
        bits = roles.get(guild_id, 0)
        for role_id in role_ids:
            bits |= roles.get(role_id, 0)
        if bits & ADMINISTRATOR:
            bits = ALL_PERMISSIONS
        return {"user": {"id": user_id, "username": f"user{user_id[-4:]}", "discriminator": "0",
                         "global_name": None, "avatar": None},
                "roles": list(role_ids), "joined_at": "2024-01-01T00:00:00+00:00", "deaf": False, "mute": False,
                "flags": 0, "permissions": str(bits)}

    def fail(self, path: str, status: int, code: int = 0, message: str | None = None, times: int = 1,
             headers: dict[str, str] | None = None) -> None:
        body = {"message": message or _ERROR_MESSAGES.get(code, f"HTTP {status}"), "code": code}
        self._scripts.setdefault(path, []).extend(Scripted(status, body, dict(headers or {})) for _ in range(times))

    def rate_limit(self, path: str, retry_after: float = 0.05, times: int = 1, is_global: bool = False,
                   via: bool = True) -> None:
        headers = {
            "Retry-After": str(retry_after),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset-After": str(retry_after),
            "X-RateLimit-Bucket": "fakebucket" + path.replace("/", "-"),
            "X-RateLimit-Scope": "global" if is_global else "user",
        }
        if via:
            headers["Via"] = "1.1 google"
        body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": is_global,
                "code": 0}
        self._scripts.setdefault(path, []).extend(Scripted(429, body, headers) for _ in range(times))

    def hold(self, path: str, release: asyncio.Event) -> None:
        """The next channel message POSTed to `path` is created, and answered once `release` is set."""
        self._holds.setdefault(path, []).append(release)

    def message(self, message_id: str) -> dict | None:
        """A channel message as it stands now (after any edits)."""
        return self._stored.get(str(message_id))

    async def wait_for(self, predicate, timeout: float = 10.0) -> None:
        """Wait until `predicate()` holds after some request; a guard against hanging, not a timing test."""
        async def waiter() -> None:
            async with self._recorded:
                await self._recorded.wait_for(predicate)
        await asyncio.wait_for(waiter(), timeout)

    # ----------------------------------------------------------------- gateway
    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    async def dispatch(self, event: str, data: dict) -> None:
        frame = json.dumps({"op": 0, "s": next(self._sequence), "t": event, "d": data})
        for ws in list(self._sockets):
            await ws.send_str(frame)

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        # Uncompressed text frames: discord.py only decompresses binary frames.
        await ws.send_str(json.dumps({"op": 10, "s": None, "t": None, "d": {"heartbeat_interval": 41250}}))
        try:
            async for msg in ws:
                frame = json.loads(msg.data)
                self.gateway_received.append(frame)
                if frame.get("op") == 1:
                    await ws.send_str(json.dumps({"op": 11, "s": None, "t": None, "d": None}))
                elif frame.get("op") == 2:
                    ready = {"v": 10, "user": self._bot_user(), "guilds": [], "session_id": "fake-session",
                             "resume_gateway_url": self.gateway_url, "shard": [0, 1],
                             "application": {"id": self.application_id, "flags": 0}}
                    await ws.send_str(json.dumps({"op": 0, "s": next(self._sequence), "t": "READY", "d": ready}))
                    self.identified.set()
        finally:
            self._sockets.remove(ws)
        return ws

    # ----------------------------------------------------------------- views for assertions
    def requests_to(self, path: str, method: str | None = None) -> list[Recorded]:
        return [r for r in self.requests if r.path == path and (method is None or r.method == method)]

    def sent_payloads(self) -> list[dict]:
        """Every message-creating payload we accepted: channel posts, webhooks, callbacks, followups, edits."""
        out = [m["payload"] for m in self.messages] + [w["payload"] for w in self.webhook_executions]
        out += [f["payload"] for f in self.followups] + [e["payload"] for e in self.edits]
        out += [c["payload"].get("data") or {} for c in self.callbacks if c["payload"].get("type") == 4]
        return out

    # ----------------------------------------------------------------- request handling
    async def _handle(self, request: web.Request) -> web.Response:
        try:
            return await self._route(request)
        finally:
            async with self._recorded:
                self._recorded.notify_all()

    async def _route(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = request.path
        if path.startswith(API_PREFIX):
            path = path[len(API_PREFIX):]
        rec = Recorded(request.method, path, dict(request.query), dict(request.headers), body)
        self.requests.append(rec)

        script = self._scripts.get(path)
        if script:
            scripted = script.pop(0)
            return json_response(scripted.body, scripted.status, scripted.headers)

        parts = [p for p in path.split("/") if p]
        method = request.method
        if path.startswith("/webhooks/") or path.startswith("/interactions/"):
            return self._webhook_routes(method, parts, rec)
        if not self._authorised(request):
            return json_response({"message": "401: Unauthorized", "code": 0}, 401)
        if method == "GET" and path == "/users/@me":
            return json_response(self._bot_user())
        if method == "GET" and path == "/oauth2/applications/@me":
            return json_response(self._application())
        if method == "GET" and path in ("/gateway/bot", "/gateway"):
            return json_response({"url": self.gateway_url, "shards": 1, "session_start_limit": {
                "total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}})
        if method == "GET" and len(parts) == 2 and parts[0] == "channels":
            return self._channel(parts[1])
        if method == "POST" and len(parts) == 3 and parts[0] == "channels" and parts[2] == "messages":
            response = self._create_message(parts[1], rec)
            if self._holds.get(path):
                await self._holds[path].pop(0).wait()
            return response
        if method == "PATCH" and len(parts) == 4 and parts[0] == "channels" and parts[2] == "messages":
            return self._edit_message(parts[1], parts[3], rec)
        if method == "PUT" and parts[:1] == ["applications"] and parts[-1] == "commands":
            guild_id = parts[3] if len(parts) == 5 and parts[2] == "guilds" else None
            return self._sync_commands(parts[1], guild_id, rec)
        return json_response({"message": "404: Not Found", "code": 0}, 404)

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bot {self.bot_token}"

    def _create_message(self, channel_id: str, rec: Recorded) -> web.Response:
        if channel_id not in self.channels:
            return json_response({"message": "Unknown Channel", "code": UNKNOWN_CHANNEL}, 404)
        payload = rec.payload
        nonce = payload.get("nonce")
        # Discord: with enforce_nonce, a repeated nonce within a few minutes returns the first message.
        if nonce and payload.get("enforce_nonce") and (channel_id, nonce) in self._nonces:
            return json_response(self._nonces[(channel_id, nonce)])
        reference = payload.get("message_reference")
        referenced = None
        if isinstance(reference, dict):
            referenced = self._stored.get(str(reference.get("message_id")))
            if referenced is None and reference.get("fail_if_not_exists", True):
                return json_response({"message": "Invalid Form Body", "code": INVALID_FORM_BODY, "errors": {
                    "message_reference": {"_errors": [{"code": "REPLIES_UNKNOWN_MESSAGE",
                                                       "message": "Unknown message"}]}}}, 400)
        message = self._message(channel_id, payload)
        if referenced is not None:
            message.update(type=19, referenced_message=dict(referenced), message_reference={
                "type": 0, "message_id": referenced["id"], "channel_id": referenced["channel_id"]})
        self.messages.append({"channel_id": channel_id, "payload": payload, "id": message["id"]})
        self._stored[message["id"]] = message
        if nonce:
            self._nonces[(channel_id, nonce)] = message
        return json_response(message)

    def _channel(self, channel_id: str) -> web.Response:
        if channel_id not in self.channels:
            return json_response({"message": "Unknown Channel", "code": UNKNOWN_CHANNEL}, 404)
        return json_response({"id": channel_id, "type": 0, "guild_id": self.channel_guilds[channel_id],
                              "name": f"briefs-{channel_id[-4:]}", "position": 0, "permission_overwrites": [],
                              "nsfw": False, "parent_id": None, "last_message_id": None,
                              "rate_limit_per_user": 0, "topic": None})

    def _edit_message(self, channel_id: str, message_id: str, rec: Recorded) -> web.Response:
        if channel_id not in self.channels:
            return json_response({"message": "Unknown Channel", "code": UNKNOWN_CHANNEL}, 404)
        message = self._stored.get(message_id)
        if message is None or message["channel_id"] != channel_id:
            return json_response({"message": "Unknown Message", "code": UNKNOWN_MESSAGE}, 404)
        payload = rec.payload
        for key in ("content", "embeds"):
            if key in payload:
                message[key] = payload[key]
        message["edited_timestamp"] = datetime.now(timezone.utc).isoformat()
        self.message_edits.append({"channel_id": channel_id, "message_id": message_id, "payload": payload})
        return json_response(message)

    def _webhook_routes(self, method: str, parts: list[str], rec: Recorded) -> web.Response:
        if parts[0] == "interactions" and len(parts) == 4 and parts[3] == "callback" and method == "POST":
            return self._interaction_callback(parts[1], parts[2], rec)
        if parts[0] != "webhooks" or len(parts) < 3:
            return json_response({"message": "404: Not Found", "code": 0}, 404)
        webhook_id, token = parts[1], parts[2]
        if webhook_id == self.application_id:
            # Interaction followups and edits use the application id and the interaction token.
            if method == "POST" and len(parts) == 3:
                message = self._message("800000000000000001", rec.payload, webhook_id=webhook_id)
                self.followups.append({"token": token, "payload": rec.payload, "id": message["id"]})
                return json_response(message)
            if method == "PATCH" and len(parts) == 5 and parts[3] == "messages":
                message = self._message("800000000000000001", rec.payload, webhook_id=webhook_id)
                self.edits.append({"token": token, "message": parts[4], "payload": rec.payload})
                return json_response(message)
            return json_response({"message": "404: Not Found", "code": 0}, 404)
        if self.webhooks.get(webhook_id) != token:
            return json_response({"message": "Unknown Webhook", "code": UNKNOWN_WEBHOOK}, 404)
        guild_id, channel_id = self.webhook_places[webhook_id]
        if method == "GET" and len(parts) == 3:
            # Read with its token, a webhook comes without the user who made it.
            return json_response({"id": webhook_id, "type": 1, "guild_id": guild_id, "channel_id": channel_id,
                                  "name": "briefbot", "avatar": None, "application_id": None, "token": token})
        if method != "POST" or len(parts) != 3:
            return json_response({"message": "405: Method Not Allowed", "code": 0}, 405)
        message = self._message(channel_id, rec.payload, webhook_id=webhook_id)
        self.webhook_executions.append({"webhook_id": webhook_id, "payload": rec.payload, "id": message["id"],
                                        "query": rec.query})
        if rec.query.get("wait") in ("1", "true", "True"):
            return json_response(message)
        return web.Response(status=204)

    def _interaction_callback(self, interaction_id: str, token: str, rec: Recorded) -> web.Response:
        payload = rec.payload
        self.callbacks.append({"interaction_id": interaction_id, "token": token, "payload": payload})
        data = payload.get("data") or {}
        flags = int(data.get("flags") or 0)
        message_id = str(next(self._ids))
        reply: dict[str, Any] = {"interaction": {
            "id": interaction_id, "type": 2, "response_message_id": message_id,
            "response_message_loading": payload.get("type") == 5,
            "response_message_ephemeral": bool(flags & 64)}}
        if payload.get("type") == 4:
            message = self._message("800000000000000001", data, message_id=message_id)
            reply["resource"] = {"type": 4, "message": message}
        return json_response(reply)

    def _sync_commands(self, application_id: str, guild_id: str | None, rec: Recorded) -> web.Response:
        commands = rec.body if isinstance(rec.body, list) else []
        self.command_syncs.append({"guild_id": guild_id, "commands": commands})
        out = []
        for cmd in commands:
            item = dict(cmd)
            item.update(id=str(next(self._ids)), application_id=application_id, version=str(next(self._ids)))
            if guild_id:
                item["guild_id"] = guild_id
            out.append(item)
        return json_response(out)

    # ----------------------------------------------------------------- payload builders
    def _bot_user(self) -> dict:
        return {"id": BOT_USER_ID, "username": "briefbot", "discriminator": "0", "global_name": None,
                "avatar": None, "bot": True, "flags": 0, "mfa_enabled": False, "verified": True}

    def _application(self) -> dict:
        return {"id": self.application_id, "name": "briefbot", "description": "", "icon": None,
                "bot_public": True, "bot_require_code_grant": False, "verify_key": "0" * 64,
                "owner": {"id": "900000000000000009", "username": "owner", "discriminator": "0", "avatar": None},
                "flags": 0, "team": None, "summary": ""}

    def _message(self, channel_id: str, payload: dict, *, webhook_id: str | None = None,
                 message_id: str | None = None) -> dict:
        author = self._bot_user() if webhook_id is None else {
            "id": webhook_id, "username": "briefbot webhook", "discriminator": "0000", "avatar": None, "bot": True}
        message = {
            "id": message_id or str(next(self._ids)), "channel_id": channel_id, "type": 0,
            "content": payload.get("content") or "", "embeds": payload.get("embeds") or [],
            "author": author, "timestamp": datetime.now(timezone.utc).isoformat(), "edited_timestamp": None,
            "tts": False, "mention_everyone": False, "mentions": [], "mention_roles": [], "attachments": [],
            "pinned": False, "flags": int(payload.get("flags") or 0), "components": [],
        }
        if payload.get("nonce"):
            message["nonce"] = payload["nonce"]
        if webhook_id:
            message["webhook_id"] = webhook_id
        return message
