"""Discord delivery: briefs and digests as embeds, over discord.py's REST machinery.

Two target kinds:
- `discord:CHANNEL_ID` posts as the bot (DISCORD_BOT_TOKEN) with `discord.http.HTTPClient` —
  REST only, no gateway connection, so `briefbot poll --once` can post and exit.
- `discord-webhook:URL` executes a channel webhook (no bot needed) with `discord.Webhook`.

Both build their URLs from `discord.http.Route.BASE`, which `set_api_base` points at
DISCORD_API_BASE_URL (tests, proxies). The webhook URL's own host is therefore not used: we keep
only its id and token, so one base setting redirects both kinds consistently.

A follow-up (a later source of a posted story) is a reply to the story's message
(`message_reference`, with a nonce like every bot post) and an edit of that message to the story as
it stands; a webhook has no replies, so there it is a message of its own quoting the story's title.

Every message carries `AllowedMentions.none()` (`{"parse": []}` on the wire): feed and model
text may contain `@everyone`, role or user mentions and must never ping anyone.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from urllib.parse import urlsplit

import aiohttp
import discord
from discord.http import HTTPClient, Route, handle_message_parameters

from bot.adapters.discord.render import (NONCE_LENGTH, NO_MENTIONS, render_alert_embed, render_brief_embed, render_digest,
                                        render_follow_up_embed, render_notice_embed)
from bot.alerts import Alert
from bot.config import Settings
from bot.delivery.adapter import DeliveryError, FollowUp
from bot.models import Brief, Digest, Notice, Target

log = logging.getLogger("briefbot.discord")

DEFAULT_API_BASE = "https://discord.com/api/v10"
_WEBHOOK_PATH_RE = re.compile(r"/webhooks/(\d+)/([\w.-]+)/?$")


# --------------------------------------------------------------------------- API base

def normalise_api_base(url: str | None) -> str:
    """DISCORD_API_BASE_URL may be given as a bare origin, `.../api` or `.../api/v10`."""
    if not url:
        return DEFAULT_API_BASE
    url = url.strip().rstrip("/")
    path = urlsplit(url).path
    if path in ("", "/"):
        return url + "/api/v10"
    if path.endswith("/api"):
        return url + "/v10"
    return url


def set_api_base(url: str | None) -> str:
    """Point discord.py's REST base (bot requests, webhooks, interactions) at `url`.

    `Route` computes each URL when the route is built, so this must run before any request.
    `None` restores the real Discord API. Returns the base in effect.
    """
    Route.BASE = normalise_api_base(url)
    return Route.BASE


# --------------------------------------------------------------------------- delivery

def delivery_nonce(delivery_key: str, part: int = 0) -> str:
    """A stable ≤25-character nonce per outbox row (and message part), so a retry is deduplicated."""
    return hashlib.sha256(f"{delivery_key}#{part}".encode("utf-8")).hexdigest()[:NONCE_LENGTH]


def _webhook_id_token(url: str) -> tuple[int, str]:
    match = _WEBHOOK_PATH_RE.search(urlsplit(url).path)
    if not match:
        raise ValueError("not a Discord webhook URL (…/api/webhooks/ID/TOKEN)")
    return int(match.group(1)), match.group(2)


class DiscordDeliverer:
    """Implements `bot.delivery.adapter.Deliverer` for "discord" and "discord-webhook" targets."""

    kinds = ("discord", "discord-webhook")

    def __init__(self, bot_token: str | None, api_base: str | None = None, settings: Settings | None = None, *,
                 max_ratelimit_timeout: float = 60.0):
        self.bot_token = bot_token
        self.settings = settings
        # Longer waits than this become a retryable DeliveryError: the outbox reschedules the row
        # instead of blocking every other delivery behind one bucket (discord.py's floor is 30 s).
        self.max_ratelimit_timeout = max_ratelimit_timeout
        self.api_base = set_api_base(api_base)
        self._http: HTTPClient | None = None
        self._session: aiohttp.ClientSession | None = None
        self._login_lock = asyncio.Lock()
        self._warned_hosts: set[str] = set()
        # What a message link needs beyond the ids a post returns: a channel's server (None: a DM), and
        # a webhook's server and channel. Asked once each (GET /channels/ID, GET /webhooks/ID/TOKEN).
        self._channel_guilds: dict[str, str | None] = {}
        self._webhook_places: dict[int, tuple[str | None, str | None]] = {}

    # ----------------------------------------------------------------- public API
    async def deliver_brief(self, target: Target, brief: Brief, *, delivery_key: str, attempt: int) -> str | None:
        embed = render_brief_embed(brief, self.settings)
        ids = await self._send_messages(target, [[embed]], delivery_key, attempt)
        return ids[0] if ids else None

    async def deliver_digest(self, target: Target, digest: Digest, *, delivery_key: str, attempt: int) -> str | None:
        messages = render_digest(digest, self.settings)
        ids = await self._send_messages(target, messages, delivery_key, attempt)
        return ",".join(ids) if ids else None

    async def deliver_notice(self, target: Target, notice: Notice, *, delivery_key: str, attempt: int) -> str | None:
        ids = await self._send_messages(target, [[render_notice_embed(notice, self.settings)]], delivery_key, attempt)
        return ids[0] if ids else None

    async def deliver_alert(self, target: Target, alert: Alert, *, delivery_key: str, attempt: int) -> str | None:
        ids = await self._send_messages(target, [[render_alert_embed(alert, self.settings)]], delivery_key, attempt)
        return ids[0] if ids else None

    async def deliver_follow_up(self, target: Target, follow_up: FollowUp, *, delivery_key: str,
                                attempt: int) -> str | None:
        if target.kind != "discord" or not follow_up.parent_ref:
            embed = render_follow_up_embed(follow_up, self.settings, quote_parent=True)
            ids = await self._send_messages(target, [[embed]], delivery_key, attempt)
            return ids[0] if ids else None
        embed = render_follow_up_embed(follow_up, self.settings)
        # As discord.py sends a reply: a missing original makes a plain message, not an error.
        reference = {"message_id": follow_up.parent_ref, "channel_id": target.address, "fail_if_not_exists": False}
        ids = await self._send_messages(target, [[embed]], delivery_key, attempt, reference=reference)
        await self._edit_original(target, follow_up)
        return ids[0] if ids else None

    async def _edit_original(self, target: Target, follow_up: FollowUp) -> None:
        """The story's message shows the story as it stands (an edit is safe to repeat)."""
        try:
            http = await self._client(target)
            with handle_message_parameters(embeds=[render_brief_embed(follow_up.brief, self.settings)],
                                           allowed_mentions=NO_MENTIONS) as params:
                await http.edit_message(int(target.address), int(follow_up.parent_ref), params=params)
        except DeliveryError:
            raise
        except discord.NotFound:
            log.warning("%s: the story's message %s is gone and cannot be updated; its reply names the new source",
                        target.redacted, follow_up.parent_ref)
        except Exception as exc:  # noqa: BLE001 - every failure must become a DeliveryError
            raise self._map_error(target, exc) from None

    async def message_link(self, target: Target, external_id: str) -> str | None:
        """https://discord.com/channels/SERVER/CHANNEL/MESSAGE (SERVER is `@me` in a DM channel)."""
        message_id = external_id.split(",")[0]
        if target.kind not in self.kinds or not message_id.isdigit():
            return None
        try:
            if target.kind == "discord":
                channel_id = target.address
                if channel_id not in self._channel_guilds:
                    channel = await (await self._client(target)).get_channel(int(channel_id))
                    self._channel_guilds[channel_id] = _snowflake(channel.get("guild_id"))
                guild_id = self._channel_guilds[channel_id]
            else:
                guild_id, channel_id = await self._webhook_place(target)
        except DeliveryError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure must become a DeliveryError
            raise self._map_error(target, exc) from None
        if channel_id is None:
            return None
        return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"

    async def _webhook_place(self, target: Target) -> tuple[str | None, str | None]:
        """The server and channel a webhook posts to, from the webhook object its token may read."""
        webhook_id, token = _webhook_id_token(target.address)
        if webhook_id not in self._webhook_places:
            webhook = await discord.Webhook.partial(webhook_id, token, session=self._webhook_session()).fetch(
                prefer_auth=False)
            self._webhook_places[webhook_id] = (_snowflake(webhook.guild_id), _snowflake(webhook.channel_id))
        return self._webhook_places[webhook_id]

    def _webhook_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ----------------------------------------------------------------- internals
    async def _send_messages(self, target: Target, messages: list[list[discord.Embed]], delivery_key: str,
                             attempt: int, reference: dict | None = None) -> list[str]:
        if target.kind not in self.kinds:
            raise DeliveryError(f"{target.redacted}: not a Discord target", permanent=True)
        if attempt > 1:
            log.info("%s: attempt %d for %s; the nonce lets Discord drop a copy that already landed",
                     target.redacted, attempt, delivery_key)
        ids: list[str] = []
        for part, embeds in enumerate(messages):
            try:
                if target.kind == "discord":
                    message_id = await self._post_channel(target, embeds, delivery_nonce(delivery_key, part),
                                                          reference)
                else:
                    message_id = await self._post_webhook(target, embeds)
            except DeliveryError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure must become a DeliveryError
                raise self._map_error(target, exc) from None
            if message_id:
                ids.append(message_id)
        return ids

    async def _client(self, target: Target) -> HTTPClient:
        if self._http is not None:
            return self._http
        async with self._login_lock:
            if self._http is None:
                if not self.bot_token:
                    raise DeliveryError(
                        f"{target.redacted}: DISCORD_BOT_TOKEN is not set. Why: posting to a channel id needs the "
                        "bot's token. Fix: set DISCORD_BOT_TOKEN, or use a discord-webhook:URL target instead.",
                        permanent=True)
                http = HTTPClient(asyncio.get_running_loop(), max_ratelimit_timeout=self.max_ratelimit_timeout)
                try:
                    # GET /users/@me: validates the token once, over REST (no gateway needed).
                    await http.static_login(self.bot_token)
                except BaseException:
                    await http.close()
                    raise
                self._http = http
        return self._http

    async def _post_channel(self, target: Target, embeds: list[discord.Embed], nonce: str,
                            reference: dict | None = None) -> str | None:
        http = await self._client(target)
        # handle_message_parameters sets "enforce_nonce": true with the nonce: Discord then returns the
        # message already created with this nonce (within a few minutes) instead of posting again.
        with handle_message_parameters(embeds=embeds, allowed_mentions=NO_MENTIONS, nonce=nonce,
                                       message_reference=reference or discord.utils.MISSING) as params:
            data = await http.send_message(int(target.address), params=params)
        return str(data["id"]) if isinstance(data, dict) and data.get("id") else None

    async def _post_webhook(self, target: Target, embeds: list[discord.Embed]) -> str | None:
        try:
            webhook_id, token = _webhook_id_token(target.address)
        except ValueError as exc:
            raise DeliveryError(f"{target.redacted}: {exc}. Fix: copy the URL from Channel settings → "
                                "Integrations → Webhooks.", permanent=True) from None
        host = urlsplit(target.address).hostname or ""
        base_host = urlsplit(self.api_base).hostname or ""
        if host != base_host and host not in self._warned_hosts:
            self._warned_hosts.add(host)
            log.info("%s: posting via %s (DISCORD_API_BASE_URL), not %s", target.redacted, base_host, host)
        webhook = discord.Webhook.partial(webhook_id, token, session=self._webhook_session())
        # Webhook execution has no nonce in Discord's API; see docs/discord.md for the retry window.
        message = await webhook.send(embeds=embeds, allowed_mentions=NO_MENTIONS, wait=True)
        return str(message.id) if message else None

    def _secrets(self, target: Target) -> list[str]:
        secrets = [s for s in (self.bot_token,) if s]
        if target.kind == "discord-webhook":
            try:
                secrets.append(_webhook_id_token(target.address)[1])
            except ValueError:
                pass
        return secrets

    def _scrub(self, target: Target, text: str) -> str:
        for secret in self._secrets(target):
            text = text.replace(secret, "***")
        return text

    def _map_error(self, target: Target, exc: BaseException) -> DeliveryError:
        where = target.redacted
        is_webhook = target.kind == "discord-webhook"
        if isinstance(exc, discord.LoginFailure):
            return DeliveryError(
                f"{where}: Discord rejected DISCORD_BOT_TOKEN (401 Unauthorized). Why: the token is wrong or was "
                "reset. Fix: copy a fresh token from Developer Portal → your application → Bot → Reset Token.",
                permanent=True)
        if isinstance(exc, discord.RateLimited):
            return DeliveryError(f"{where}: rate limited by Discord for {exc.retry_after:.1f}s; will retry",
                                 retry_after=exc.retry_after)
        if isinstance(exc, discord.HTTPException):
            status, code = exc.status, exc.code
            detail = self._scrub(target, f"{status} {exc.text or ''}".strip() + (f" (code {code})" if code else ""))
            if status == 404:
                if is_webhook:
                    why, fix = ("the webhook was deleted or the URL is wrong",
                                "create a new webhook (Channel settings → Integrations) and update the target")
                else:
                    why, fix = ("unknown channel: the id is wrong or the channel was deleted",
                                "check the channel id (Developer Mode → right-click the channel → Copy Channel ID)")
                return DeliveryError(f"{where}: Discord says {detail}. Why: {why}. Fix: {fix}.", permanent=True)
            if status == 403:
                return DeliveryError(
                    f"{where}: Discord says {detail}. Why: the bot cannot see or post in this channel. Fix: invite "
                    "the bot to the server and allow View Channel, Send Messages and Embed Links in the channel (and "
                    "Read Message History for follow-up replies).",
                    permanent=True)
            if status == 401:
                what = "the webhook token" if is_webhook else "DISCORD_BOT_TOKEN"
                return DeliveryError(f"{where}: Discord says {detail}. Why: {what} is invalid or revoked. "
                                     "Fix: replace it (see docs/discord.md).", permanent=True)
            if status == 429:
                retry_after = _retry_after(exc)
                return DeliveryError(f"{where}: rate limited by Discord ({detail}); will retry",
                                     retry_after=retry_after)
            if status >= 500:
                return DeliveryError(f"{where}: Discord server error {detail}; will retry")
            # Other 4xx (e.g. 400 invalid form body): the same payload would fail again.
            return DeliveryError(f"{where}: Discord rejected the message: {detail}. Fix: report this as a bug "
                                 "with the brief id; the payload is invalid for Discord.", permanent=True)
        if isinstance(exc, (aiohttp.ClientError, OSError, asyncio.TimeoutError)):
            return DeliveryError(f"{where}: network error reaching {self.api_base}: "
                                 f"{self._scrub(target, type(exc).__name__ + ': ' + str(exc))}; will retry")
        return DeliveryError(f"{where}: unexpected {type(exc).__name__}: {self._scrub(target, str(exc))}")


def _snowflake(value: object) -> str | None:
    return str(value) if value else None


def _retry_after(exc: discord.HTTPException) -> float | None:
    """Seconds Discord asked us to wait, from the headers of the last 429 (the body is not kept)."""
    headers = getattr(exc.response, "headers", None) or {}
    for name in ("Retry-After", "X-RateLimit-Reset-After"):
        try:
            value = headers.get(name)
            if value:
                return float(value)
        except (TypeError, ValueError):
            continue
    return None
