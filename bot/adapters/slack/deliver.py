"""Slack delivery: rendered briefs and digests posted through `chat.postMessage`, exactly once.

A follow-up is a reply in the story's thread (`thread_ts`), looked for among the thread's replies
before a retry posts it, and the story's message updated in place (`chat.update`)."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack.render import (METADATA_EVENT_TYPE, render_alert, render_brief, render_digest,
                                      render_follow_up, render_notice)
from bot.alerts import Alert
from bot.config import Settings
from bot.delivery.adapter import DeliveryError, FollowUp
from bot.models import Brief, Digest, Notice, Target

log = logging.getLogger("briefbot.slack")

# Slack errors no retry can fix: the outbox marks the row failed with the fix in the message.
_AUTH_ERRORS = {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive",
                "no_permission", "org_login_required", "ekm_access_denied", "team_access_not_granted"}
_RENDER_ERRORS = {"invalid_blocks", "invalid_blocks_format", "msg_too_long", "too_many_attachments",
                  "invalid_metadata_format", "invalid_metadata_schema", "metadata_too_large",
                  "invalid_arguments", "no_text"}
_PERMANENT_ERRORS = _AUTH_ERRORS | _RENDER_ERRORS | {
    "channel_not_found", "not_in_channel", "is_archived", "missing_scope", "restricted_action",
    "restricted_action_read_only_channel", "restricted_action_thread_only_channel",
    "restricted_action_non_threadable_channel", "cannot_reply_to_message", "team_not_found",
    "thread_not_found",
}
# chat.update of a story's message that was deleted or can no longer be edited: the reply still tells.
_ORIGINAL_GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})


# --------------------------------------------------------------------------- delivery

class _BoundedRateLimitRetryHandler(AsyncRateLimitErrorRetryHandler):
    """Waits out short 429s in place; a long Retry-After goes back to the outbox (which honours it)
    rather than blocking the delivery loop."""

    def __init__(self, max_retry_count: int, max_wait: float):
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    async def _can_retry_async(self, *, state, request, response=None, error=None) -> bool:
        if not await super()._can_retry_async(state=state, request=request, response=response, error=error):
            return False
        return _retry_after(response.headers if response else None) <= self.max_wait


def _error_data(exc: SlackApiError) -> dict:
    """The body of Slack's error reply ({"ok": false, "error": …}); empty when it sent none (a proxy's page)."""
    data = getattr(exc.response, "data", None)
    return data if isinstance(data, dict) else {}


def _retry_after(headers: Any) -> float:
    if not headers:
        return 0.0
    for key in headers.keys():
        if key.lower() == "retry-after":
            value = headers[key]
            value = value[0] if isinstance(value, (list, tuple)) else value
            try:
                return float(value)
            except (TypeError, ValueError):
                return 0.0
    return 0.0


# A 5xx or a dropped connection may come *after* Slack stored a message; retrying chat.postMessage
# in place could post it twice. Those failures go back to the outbox, whose next attempt looks the
# message up by its metadata key first. Reads and a 429 (never processed) are safe to retry here.
_NOT_RETRIED_IN_PLACE = ("chat.postMessage",)


def _is_idempotent(request: Any) -> bool:
    url = getattr(request, "url", "") or ""
    return not any(url.rstrip("/").endswith("/" + method) for method in _NOT_RETRIED_IN_PLACE)


class _IdempotentServerErrorRetryHandler(AsyncServerErrorRetryHandler):
    async def _can_retry_async(self, *, state, request, response=None, error=None) -> bool:
        return _is_idempotent(request) and await super()._can_retry_async(
            state=state, request=request, response=response, error=error)


class _IdempotentConnectionErrorRetryHandler(AsyncConnectionErrorRetryHandler):
    async def _can_retry_async(self, *, state, request, response=None, error=None) -> bool:
        return _is_idempotent(request) and await super()._can_retry_async(
            state=state, request=request, response=response, error=error)


def build_retry_handlers(rate_limit_retries: int = 2, server_error_retries: int = 2,
                         max_retry_wait: float = 30.0, backoff: float = 0.5) -> list[AsyncRetryHandler]:
    interval = BackoffRetryIntervalCalculator(backoff_factor=backoff)
    return [
        _IdempotentConnectionErrorRetryHandler(max_retry_count=1, interval_calculator=interval),
        _BoundedRateLimitRetryHandler(max_retry_count=rate_limit_retries, max_wait=max_retry_wait),
        _IdempotentServerErrorRetryHandler(max_retry_count=server_error_retries, interval_calculator=interval),
    ]


def normalise_base_url(base_url: str | None) -> str | None:
    """AsyncWebClient joins method names onto the base, so it must end with '/'."""
    if not base_url:
        return None
    return base_url if base_url.endswith("/") else base_url + "/"


def make_web_client(token: str | None, base_url: str | None = None, **retry_options: Any) -> AsyncWebClient:
    kwargs: dict[str, Any] = {"token": token, "retry_handlers": build_retry_handlers(**retry_options)}
    if normalise_base_url(base_url):
        kwargs["base_url"] = normalise_base_url(base_url)
    return AsyncWebClient(**kwargs)


def _fix_hint(error: str, channel: str, needed: str | None) -> str:
    if error == "not_in_channel":
        return f"the bot is not a member of {channel}: invite it with `/invite @briefbot` in that channel"
    if error == "channel_not_found":
        return (f"channel {channel} does not exist or the bot cannot see it: check the channel ID in "
                "feeds.yaml (channel details → copy the ID, it starts with C or G) and that the app is "
                "installed in that workspace; for a private channel, invite the bot")
    if error == "is_archived":
        return f"channel {channel} is archived: unarchive it or point the route at another channel"
    if error == "missing_scope":
        scope = f" {needed}" if needed else ""
        return (f"the bot token lacks the scope{scope}: add it under OAuth & Permissions (see "
                "slack-manifest.yaml) and reinstall the app, then update SLACK_BOT_TOKEN")
    if error in _AUTH_ERRORS:
        return ("SLACK_BOT_TOKEN was rejected (invalid, revoked or the app was uninstalled): reinstall the "
                "app and set SLACK_BOT_TOKEN to its current xoxb- token")
    if error in _RENDER_ERRORS:
        return "Slack rejected the message format: this is a briefbot bug, please report it with this log line"
    if error == "thread_not_found":
        return f"the story's message in {channel} was deleted, so there is no thread to reply in"
    if error.startswith("restricted_action"):
        return f"posting to {channel} is restricted by a workspace admin setting: allow the app to post there"
    return "see docs/slack.md#troubleshooting"


def _metadata(key: str) -> dict:
    """The message metadata that lets a retry find what an earlier attempt posted."""
    return {"event_type": METADATA_EVENT_TYPE, "event_payload": {"key": key}}


class SlackDeliverer:
    """Posts briefs and digests to `slack:CHANNEL` targets with the bot token."""

    def __init__(self, token: str | None, base_url: str | None = None, timezone: str = "UTC",
                 settings: Settings | None = None, *, rate_limit_retries: int = 2, server_error_retries: int = 2,
                 max_retry_wait: float = 30.0, retry_backoff: float = 0.5,
                 history_lookback: timedelta = timedelta(days=3), history_limit: int = 200):
        self.token = token
        self.settings = settings
        self.timezone = settings.timezone if settings is not None and timezone == "UTC" else timezone
        self.history_lookback = history_lookback
        self.history_limit = history_limit
        self.client = make_web_client(token, base_url, rate_limit_retries=rate_limit_retries,
                                      server_error_retries=server_error_retries, max_retry_wait=max_retry_wait,
                                      backoff=retry_backoff) if token else None
        # The workspace's address (auth.test's `url`), which every permalink starts with, and the thread
        # of each reply posted whose link is not asked yet (a reply's permalink names its thread).
        self._team_url: str | None = None
        self._reply_threads: dict[str, str] = {}

    # ------------------------------------------------------------- public API
    async def deliver_brief(self, target: Target, brief: Brief, *, delivery_key: str, attempt: int) -> str | None:
        text, blocks = render_brief(brief, self.settings, self.timezone)
        ts_list = await self._post_messages(target, [(text, blocks)], delivery_key, attempt)
        return ts_list[0]

    async def deliver_digest(self, target: Target, digest: Digest, *, delivery_key: str, attempt: int) -> str | None:
        messages = render_digest(digest, self.settings, digest.timezone or self.timezone)
        ts_list = await self._post_messages(target, messages, delivery_key, attempt)
        return ",".join(ts_list)

    async def deliver_notice(self, target: Target, notice: Notice, *, delivery_key: str, attempt: int) -> str | None:
        ts_list = await self._post_messages(target, [render_notice(notice, self.settings)], delivery_key, attempt)
        return ts_list[0]

    async def deliver_alert(self, target: Target, alert: Alert, *, delivery_key: str, attempt: int) -> str | None:
        ts_list = await self._post_messages(target, [render_alert(alert, self.settings)], delivery_key, attempt)
        return ts_list[0]

    async def deliver_follow_up(self, target: Target, follow_up: FollowUp, *, delivery_key: str,
                                attempt: int) -> str | None:
        """A reply in the story's thread, then the story's message updated to list every source."""
        if not follow_up.parent_ref:
            raise DeliveryError(f"{target}: the story's message has no ts to reply to", permanent=True)
        [ts] = await self._post_messages(target, [render_follow_up(follow_up)], delivery_key, attempt,
                                         thread_ts=follow_up.parent_ref)
        await self._update_original(target, self._channel(target), follow_up)
        self._reply_threads[ts] = follow_up.parent_ref
        return ts

    async def _update_original(self, target: Target, channel: str, follow_up: FollowUp) -> None:
        """The story's message shows the story as it stands (chat.update is safe to repeat)."""
        text, blocks = render_brief(follow_up.brief, self.settings, self.timezone)
        updated = await self._call(target, "chat.update", self.client.chat_update, tolerated=_ORIGINAL_GONE,
                                   channel=channel, ts=follow_up.parent_ref, text=text, blocks=blocks,
                                   metadata=_metadata(follow_up.parent_key))
        if updated is None:
            log.warning("slack %s: the story's message %s cannot be updated (deleted, or past Slack's edit "
                        "window); its thread reply names the new source", target, follow_up.parent_ref)

    async def message_link(self, target: Target, external_id: str) -> str | None:
        """The message's permalink, https://WORKSPACE.slack.com/archives/CHANNEL/pTS (the ts without its
        dot; a reply adds its thread); the workspace address is asked of auth.test once, not of
        chat.getPermalink per message."""
        ts = external_id.split(",")[0]
        thread_ts = self._reply_threads.pop(ts, None)
        if self.client is None or target.kind != "slack" or not target.address or not ts:
            return None
        if self._team_url is None:
            reply = await self._call(target, "auth.test", self.client.auth_test)
            url = str(reply.get("url") or "")
            if not url.startswith("https://"):
                return None
            self._team_url = url.rstrip("/")
        link = f"{self._team_url}/archives/{target.address}/p{ts.replace('.', '')}"
        return f"{link}?thread_ts={thread_ts}&cid={target.address}" if thread_ts else link

    async def aclose(self) -> None:
        # The client opens one aiohttp session per call, so nothing stays open between deliveries.
        return None

    # ------------------------------------------------------------- internals
    @staticmethod
    def part_key(delivery_key: str, index: int, total: int) -> str:
        """Metadata key of one message of a delivery (digests may take several messages)."""
        return delivery_key if total == 1 else f"{delivery_key}#{index + 1}/{total}"

    def _channel(self, target: Target) -> str:
        if target.kind != "slack" or not target.address:
            raise DeliveryError(f"{target.redacted}: not a Slack target (use slack:CHANNEL_ID)", permanent=True)
        return target.address

    def _require_client(self, target: Target) -> None:
        if self.client is None:
            raise DeliveryError(f"cannot post to {target}: SLACK_BOT_TOKEN is not set; set it to the app's xoxb- "
                                "bot token (see docs/slack.md) or remove the Slack target from feeds.yaml",
                                permanent=True)

    async def _post_messages(self, target: Target, messages: list[tuple[str, list[dict]]], delivery_key: str,
                             attempt: int, thread_ts: str | None = None) -> list[str]:
        """Post `messages` in order (as replies in the thread of `thread_ts`, if given), each once."""
        channel = self._channel(target)
        self._require_client(target)
        keys = [self.part_key(delivery_key, i, len(messages)) for i in range(len(messages))]
        # attempt > 1: an earlier try may have posted (some parts) before a crash or a lost reply.
        already = await self._find_posted(target, channel, set(keys), thread_ts=thread_ts) if attempt > 1 else {}
        in_thread = {"thread_ts": thread_ts} if thread_ts else {}
        ts_list = []
        for key, (text, blocks) in zip(keys, messages):
            if key in already:
                log.info("slack %s: message %s already posted (ts %s), not posting again", target, key, already[key])
                ts_list.append(already[key])
                continue
            reply = await self._call(target, "chat.postMessage", self.client.chat_postMessage,
                                     channel=channel, text=text, blocks=blocks, unfurl_links=False,
                                     unfurl_media=False, link_names=False, metadata=_metadata(key), **in_thread)
            ts_list.append(str(reply.get("ts") or ""))
        return ts_list

    async def _find_posted(self, target: Target, channel: str, keys: set[str],
                           thread_ts: str | None = None) -> dict[str, str]:
        """ts of recent bot messages in `channel` (or the replies in the thread of `thread_ts`) whose
        metadata carries one of `keys`."""
        method = "conversations.replies" if thread_ts else "conversations.history"
        try:
            if thread_ts:
                reply = await self.client.conversations_replies(channel=channel, ts=thread_ts,
                                                                include_all_metadata=True, limit=self.history_limit)
            else:
                oldest = f"{time.time() - self.history_lookback.total_seconds():.6f}"
                reply = await self.client.conversations_history(channel=channel, include_all_metadata=True,
                                                                oldest=oldest, limit=self.history_limit)
        except SlackApiError as exc:
            data = _error_data(exc)
            if data.get("error") == "missing_scope":
                # An app installed without channels:history/groups:history can still post: deliver
                # (at least once) rather than fail the brief; say how to get exactly-once back.
                log.warning("%s: cannot check for an earlier copy before retrying (missing scope %s); posting "
                            "anyway - add it (see slack-manifest.yaml) and reinstall to avoid duplicates",
                            target, data.get("needed") or "channels:history/groups:history")
                return {}
            raise self._api_error(target, channel, method, exc) from None
        except Exception as exc:
            raise DeliveryError(f"{target}: {method} failed ({type(exc).__name__}: "
                                f"{self._scrub(str(exc))}); will retry") from None
        found: dict[str, str] = {}
        for message in reply.get("messages") or []:
            metadata = message.get("metadata") or {}
            if metadata.get("event_type") != METADATA_EVENT_TYPE:
                continue
            payload = metadata.get("event_payload") or {}
            if isinstance(payload, str):
                try:
                    payload = json.loads(payload)
                except ValueError:
                    continue
            key = payload.get("key")
            if key in keys and key not in found:
                found[key] = str(message.get("ts"))
        return found

    async def _call(self, target: Target, method: str, func, tolerated: frozenset[str] = frozenset(), **kwargs: Any):
        """`func`'s reply; None when Slack answers with one of the `tolerated` error codes."""
        try:
            return await func(**kwargs)
        except SlackApiError as exc:
            if _error_data(exc).get("error") in tolerated:
                return None
            raise self._api_error(target, target.address, method, exc) from None
        except DeliveryError:
            raise
        except Exception as exc:  # network errors, timeouts, non-JSON replies from a proxy
            detail = self._scrub(str(exc) or type(exc).__name__)
            raise DeliveryError(f"{target}: {method} failed ({type(exc).__name__}: {detail}); will retry") from None

    def _api_error(self, target: Target, channel: str, method: str, exc: SlackApiError) -> DeliveryError:
        response = exc.response
        status = getattr(response, "status_code", None)
        data = _error_data(exc)
        error = str(data.get("error") or "")
        if status == 429 or error == "ratelimited":
            wait = _retry_after(getattr(response, "headers", None)) or None
            return DeliveryError(f"{target}: Slack rate limit on {method} (HTTP 429"
                                 f"{f', Retry-After {wait:g}s' if wait else ''}); will retry",
                                 permanent=False, retry_after=wait)
        if error in _PERMANENT_ERRORS:
            # Includes the duplicate check (conversations.history): it needs the same membership and scopes.
            hint = _fix_hint(error, channel, data.get("needed"))
            return DeliveryError(f"{target}: {method} failed with {error}: {hint}", permanent=True)
        what = error or f"HTTP {status}"
        return DeliveryError(f"{target}: {method} failed ({what}); will retry", permanent=False)

    def _scrub(self, text: str) -> str:
        if self.token and self.token in text:
            text = text.replace(self.token, "***")
        return text
