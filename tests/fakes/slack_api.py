"""A loopback fake of the Slack Web API, response_url endpoint and Socket Mode WebSocket.

It speaks the real wire format: form or JSON POSTs (and GETs) to `/api/<method>` with a Bearer
token, `{"ok": true, ...}` / `{"ok": false, "error": ...}` replies, 429 with `Retry-After`. It also
enforces the Block Kit limits Slack enforces (50 blocks, section text 3,000, header 150, ...), so
a rendering bug shows up as `invalid_blocks` exactly like in production.

It runs an aiohttp server on its own thread and event loop, so sync tests, async tests and
subprocesses can all talk to it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web
from waits import TIMEOUT, async_wait_until, wait_until

BOT_TOKEN = "xoxb-1111-2222-briefbot-test-token"
APP_TOKEN = "xapp-1-A111-2222-briefbot-app-token"


@dataclass
class Channel:
    exists: bool = True
    member: bool = True
    archived: bool = False
    messages: list[dict] = field(default_factory=list)


@dataclass
class ApiCall:
    method: str
    http_method: str
    params: dict[str, Any]
    token: str | None


@dataclass
class Scripted:
    status: int = 200
    error: str | None = None
    retry_after: int | None = None
    body: str | None = None
    content_type: str = "application/json"
    # Record a chat.postMessage as landed, then still answer with this failure (a lost reply).
    land_anyway: bool = False
    # Serve this call normally (lets a script say "ok, then fail").
    passthrough: bool = False
    # Answer only once this is set (a reply the client is still waiting for, e.g. when it is killed).
    hold: threading.Event | None = None


OK = Scripted(passthrough=True)


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true", "yes")


def _block_errors(blocks: Any) -> list[str]:
    """The Block Kit limits Slack checks; messages like Slack's `invalid_blocks` detail."""
    if not isinstance(blocks, list):
        return ["blocks must be an array"]
    errors = []
    if len(blocks) > 50:
        errors.append(f"too many blocks: {len(blocks)} > 50")
    for i, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "header":
            text = block.get("text") or {}
            if text.get("type") != "plain_text":
                errors.append(f"[{i}] header text must be plain_text")
            if not 1 <= len(text.get("text") or "") <= 150:
                errors.append(f"[{i}] header text length {len(text.get('text') or '')} not in 1..150")
        elif kind == "section":
            text, fields = block.get("text"), block.get("fields")
            if text is None and not fields:
                errors.append(f"[{i}] section needs text or fields")
            if text is not None and not 1 <= len(text.get("text") or "") <= 3000:
                errors.append(f"[{i}] section text length {len(text.get('text') or '')} not in 1..3000")
            if fields is not None:
                if len(fields) > 10:
                    errors.append(f"[{i}] too many fields: {len(fields)} > 10")
                for j, f in enumerate(fields):
                    if not 1 <= len(f.get("text") or "") <= 2000:
                        errors.append(f"[{i}].fields[{j}] length {len(f.get('text') or '')} not in 1..2000")
        elif kind == "context":
            elements = block.get("elements") or []
            if not 1 <= len(elements) <= 10:
                errors.append(f"[{i}] context needs 1..10 elements, got {len(elements)}")
            for j, e in enumerate(elements):
                if e.get("type") in ("mrkdwn", "plain_text") and not 1 <= len(e.get("text") or "") <= 3000:
                    errors.append(f"[{i}].elements[{j}] text length not in 1..3000")
        elif kind == "divider":
            pass
        else:
            errors.append(f"[{i}] unsupported block type {kind!r}")
    return errors


class FakeSlack:
    def __init__(self, bot_token: str = BOT_TOKEN, app_token: str = APP_TOKEN,
                 channels: dict[str, Channel] | None = None):
        self.bot_token = bot_token
        self.app_token = app_token
        self.channels: dict[str, Channel] = channels if channels is not None else {"C0BRIEFS1": Channel()}
        self.calls: list[ApiCall] = []
        self.responses: list[dict] = []  # bodies POSTed to response_url, with "_path"
        self.socket_acks: list[dict] = []
        # Workspace members (users.info) and user groups (usergroups.users.list), and the scopes the
        # bot token was granted: a method whose scope is missing answers missing_scope, as Slack does.
        self.users: dict[str, dict] = {}
        self.usergroups: dict[str, list[str]] = {}
        self.scopes: set[str] = {"chat:write", "commands", "channels:history", "users:read", "usergroups:read"}
        self._scripts: dict[str, deque[Scripted]] = {}
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self._ts_base = int(time.time())
        self._sockets: list[web.WebSocketResponse] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.port = 0

    # ------------------------------------------------------------- lifecycle
    def start(self) -> "FakeSlack":
        self._thread = threading.Thread(target=self._run, name="fake-slack", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake Slack server did not start")
        return self

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{name}", self._response_url)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if self._loop is None:
            return

        async def _close_sockets():
            for ws in list(self._sockets):
                await ws.close()

        asyncio.run_coroutine_threadsafe(_close_sockets(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> "FakeSlack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------- test API
    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"http://127.0.0.1:{self.port}/response/{name}"

    def script(self, method: str, *replies: Scripted) -> None:
        """Answer the next calls of `method` with these replies, in order, before normal service."""
        with self._lock:
            self._scripts.setdefault(method, deque()).extend(replies)

    def calls_to(self, method: str) -> list[ApiCall]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def posted(self, channel: str | None = None) -> list[dict]:
        """Messages that landed, oldest first."""
        with self._lock:
            chans = [channel] if channel else list(self.channels)
            return [m for c in chans if c in self.channels for m in self.channels[c].messages]

    def _responses_if(self, count: int) -> list[dict] | None:
        with self._lock:
            return list(self.responses) if len(self.responses) >= count else None

    def wait_for_responses(self, count: int, timeout: float = TIMEOUT) -> list[dict]:
        return wait_until(lambda: self._responses_if(count), f"{count} response_url post(s)", timeout)

    async def async_wait_for_responses(self, count: int, timeout: float = TIMEOUT) -> list[dict]:
        return await async_wait_until(lambda: self._responses_if(count), f"{count} response_url post(s)", timeout)

    def send_socket_envelope(self, envelope: dict) -> None:
        """Push a Socket Mode envelope (e.g. a slash command) to every connected client."""
        async def _send():
            for ws in list(self._sockets):
                await ws.send_str(json.dumps(envelope))

        asyncio.run_coroutine_threadsafe(_send(), self._loop).result(5)

    def socket_connected(self) -> bool:
        with self._lock:
            return bool(self._sockets)

    # ------------------------------------------------------------- handlers
    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            raw = await request.read()
            ctype = request.content_type
            if ctype == "application/json":
                params.update(json.loads(raw or b"{}"))
            else:
                params.update(dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True)))
        for key in ("blocks", "metadata"):
            if isinstance(params.get(key), str):
                try:
                    params[key] = json.loads(params[key])
                except ValueError:
                    pass
        return params

    @staticmethod
    def _ok(**data: Any) -> web.Response:
        return web.json_response({"ok": True, **data})

    @staticmethod
    def _fail(error: str, status: int = 200, **extra: Any) -> web.Response:
        return web.json_response({"ok": False, "error": error, **extra}, status=status)

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        auth = request.headers.get("Authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else params.get("token")
        with self._lock:
            self.calls.append(ApiCall(method, request.method, params, token))
            scripted = self._scripts.get(method)
            reply = scripted.popleft() if scripted else None
        if reply is not None and not reply.passthrough:
            if reply.land_anyway and method == "chat.postMessage":
                self._post_message(params)
            if reply.hold is not None:
                await asyncio.get_running_loop().run_in_executor(None, reply.hold.wait, TIMEOUT)
            headers = {"Retry-After": str(reply.retry_after)} if reply.retry_after is not None else {}
            if reply.body is not None:
                return web.Response(status=reply.status, text=reply.body, content_type=reply.content_type,
                                    headers=headers)
            return web.json_response({"ok": False, "error": reply.error or "internal_error"}, status=reply.status,
                                     headers=headers)

        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if not token:
            return self._fail("not_authed")
        if token != expected:
            return self._fail("invalid_auth")
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return self._fail("unknown_method")
        return handler(params)

    def _m_auth_test(self, params: dict) -> web.Response:
        return self._ok(url="https://briefbot-test.slack.com/", team="Briefbot Test", user="briefbot",
                        team_id="T0TEST001", user_id="U0BOT0001", bot_id="B0BOT0001", is_enterprise_install=False)

    def _m_apps_connections_open(self, params: dict) -> web.Response:
        return self._ok(url=f"ws://127.0.0.1:{self.port}/socket")

    def _channel_error(self, channel_id: str | None) -> web.Response | None:
        channel = self.channels.get(channel_id or "")
        if channel is None or not channel.exists:
            return self._fail("channel_not_found")
        if not channel.member:
            return self._fail("not_in_channel")
        return None

    def _post_message(self, params: dict) -> dict:
        with self._lock:
            n = next(self._ts)
            ts = f"{self._ts_base + n}.{n:06d}"
            message = {"type": "message", "user": "U0BOT0001", "bot_id": "B0BOT0001", "ts": ts,
                       "text": params.get("text", ""), "blocks": params.get("blocks") or []}
            if isinstance(params.get("metadata"), dict):
                message["metadata"] = params["metadata"]
            messages = self.channels[params["channel"]].messages
            parent = next((m for m in messages if m["ts"] == params.get("thread_ts")), None)
            if parent is not None:
                # A reply: in the parent's thread, which Slack numbers by the parent's ts.
                message["thread_ts"] = parent["ts"]
                parent["thread_ts"] = parent["ts"]
                parent["reply_count"] = parent.get("reply_count", 0) + 1
            messages.append(message)
        return message

    def thread(self, channel: str, ts: str) -> list[dict]:
        """The replies in the thread of message `ts`, oldest first."""
        with self._lock:
            return [m for m in self.channels[channel].messages if m.get("thread_ts") == ts and m["ts"] != ts]

    def _m_chat_postMessage(self, params: dict) -> web.Response:
        error = self._channel_error(params.get("channel"))
        if error is not None:
            return error
        if self.channels[params["channel"]].archived:
            return self._fail("is_archived")
        if not params.get("text") and not params.get("blocks"):
            return self._fail("no_text")
        if params.get("blocks") is not None:
            problems = _block_errors(params["blocks"])
            if problems:
                return self._fail("invalid_blocks", errors=problems)
        metadata = params.get("metadata")
        if metadata is not None and not (isinstance(metadata, dict) and metadata.get("event_type")
                                         and isinstance(metadata.get("event_payload"), dict)):
            return self._fail("invalid_metadata_format")
        message = self._post_message(params)
        return self._ok(channel=params["channel"], ts=message["ts"], message=message)

    def _m_chat_update(self, params: dict) -> web.Response:
        error = self._channel_error(params.get("channel"))
        if error is not None:
            return error
        if params.get("blocks") is not None:
            problems = _block_errors(params["blocks"])
            if problems:
                return self._fail("invalid_blocks", errors=problems)
        with self._lock:
            message = next((m for m in self.channels[params["channel"]].messages if m["ts"] == params.get("ts")), None)
            if message is None:
                return self._fail("message_not_found")
            message.update(text=params.get("text", message["text"]), blocks=params.get("blocks") or message["blocks"],
                           edited={"user": "U0BOT0001", "ts": f"{time.time():.6f}"})
            if isinstance(params.get("metadata"), dict):
                message["metadata"] = params["metadata"]
            return self._ok(channel=params["channel"], ts=message["ts"], text=message["text"], message=dict(message))

    def _m_conversations_replies(self, params: dict) -> web.Response:
        error = self._channel_error(params.get("channel"))
        if error is not None:
            return error
        with_metadata = _truthy(params.get("include_all_metadata"))
        with self._lock:
            messages = self.channels[params["channel"]].messages
            parent = next((m for m in messages if m["ts"] == params.get("ts")), None)
            if parent is None:
                return self._fail("thread_not_found")
            # The parent first, then its replies, oldest first.
            thread = [parent] + [m for m in messages if m.get("thread_ts") == parent["ts"] and m is not parent]
        limit = int(params.get("limit") or 1000)
        out = [dict(m) for m in thread[:limit]]
        if not with_metadata:
            for m in out:
                m.pop("metadata", None)
        return self._ok(messages=out, has_more=len(thread) > limit)

    def add_user(self, user_id: str, *, is_admin: bool = False, is_owner: bool = False) -> dict:
        """A workspace member as users.info describes one."""
        user = {"id": user_id, "team_id": "T0TEST001", "name": user_id.lower(), "deleted": False,
                "real_name": f"User {user_id}", "tz": "Asia/Shanghai", "is_admin": is_admin or is_owner,
                "is_owner": is_owner, "is_primary_owner": False, "is_restricted": False,
                "is_ultra_restricted": False, "is_bot": False, "is_app_user": False,
                "profile": {"display_name": user_id.lower(), "real_name": f"User {user_id}"}}
        with self._lock:
            self.users[user_id] = user
        return user

    def _missing_scope(self, needed: str) -> web.Response | None:
        if needed in self.scopes:
            return None
        return self._fail("missing_scope", needed=needed, provided=",".join(sorted(self.scopes)))

    def _m_users_info(self, params: dict) -> web.Response:
        refused = self._missing_scope("users:read")
        if refused is not None:
            return refused
        if not params.get("user"):
            return self._fail("invalid_arguments")
        with self._lock:
            user = self.users.get(params["user"])
        return self._ok(user=user) if user is not None else self._fail("user_not_found")

    def _m_usergroups_users_list(self, params: dict) -> web.Response:
        refused = self._missing_scope("usergroups:read")
        if refused is not None:
            return refused
        with self._lock:
            members = self.usergroups.get(params.get("usergroup") or "")
        return self._ok(users=list(members)) if members is not None else self._fail("no_such_subteam")

    def _m_conversations_history(self, params: dict) -> web.Response:
        error = self._channel_error(params.get("channel"))
        if error is not None:
            return error
        oldest = float(params.get("oldest") or 0)
        limit = int(params.get("limit") or 100)
        with_metadata = _truthy(params.get("include_all_metadata"))
        with self._lock:
            # Top-level messages only: replies live in their threads (conversations.replies).
            messages = [m for m in reversed(self.channels[params["channel"]].messages) if float(m["ts"]) > oldest
                        and m.get("thread_ts", m["ts"]) == m["ts"]]
        out = []
        for m in messages[:limit]:
            m = dict(m)
            if not with_metadata:
                m.pop("metadata", None)
            out.append(m)
        return self._ok(messages=out, has_more=len(messages) > limit)

    async def _response_url(self, request: web.Request) -> web.Response:
        body = await request.json()
        body["_path"] = request.path
        with self._lock:
            self.responses.append(body)
        return web.Response(text="ok", content_type="text/html")

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        with self._lock:
            self._sockets.append(ws)
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1,
                                      "connection_info": {"app_id": "A0TEST001"}}))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    with self._lock:
                        self.socket_acks.append(json.loads(msg.data))
        finally:
            with self._lock:
                if ws in self._sockets:
                    self._sockets.remove(ws)
        return ws


def mrkdwn_texts(blocks: list[dict]) -> list[str]:
    """Every mrkdwn string in Block Kit blocks: where Slack would expand mentions and links."""
    out = []
    for block in blocks:
        if block.get("text", {}).get("type") == "mrkdwn":
            out.append(block["text"]["text"])
        out += [f["text"] for f in block.get("fields", [])]
        out += [e["text"] for e in block.get("elements", []) if e.get("type") == "mrkdwn"]
    return out
