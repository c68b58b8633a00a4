"""The jsonl:PATH target: one JSON object per line (the Brief's documented JSON form)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from bot.alerts import Alert
from bot.config import Settings
from bot.delivery.adapter import DeliveryError, FollowUp
from bot.models import Brief, Digest, Notice, Target


# How far back a retried delivery looks for its own line; retries follow crashes closely.
TAIL_BYTES = 4 * 1024 * 1024


class JsonlDeliverer:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings

    def _path(self, target: Target) -> Path:
        return self.settings.resolve_path(target.address) if self.settings else Path(target.address)

    def _append(self, target: Target, obj: dict) -> None:
        path = self._path(target)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(obj, ensure_ascii=False) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            # A full disk or a permission problem may be fixed by the operator: retry later.
            raise DeliveryError(f"cannot append to {path}: {exc.strerror or exc}") from exc

    def _already_written(self, target: Target, marker: str) -> bool:
        """After a crash between append and outbox commit, the line may already be there."""
        path = self._path(target)
        try:
            with open(path, "rb") as fh:
                fh.seek(max(0, path.stat().st_size - TAIL_BYTES))
                tail = fh.read()
        except OSError:
            return False
        return marker.encode() in tail

    async def deliver_brief(self, target: Target, brief: Brief, *, delivery_key: str, attempt: int) -> str | None:
        # A brief goes to a target once, so its id identifies its line (the line keeps the documented form).
        if attempt > 1 and self._already_written(target, json.dumps({"id": brief.id})[1:-1]):
            return None
        self._append(target, brief.to_json_dict())
        return None

    async def deliver_digest(self, target: Target, digest: Digest, *, delivery_key: str, attempt: int) -> str | None:
        return self._write_keyed(target, "digest", digest.to_json_dict(), delivery_key, attempt)

    async def deliver_notice(self, target: Target, notice: Notice, *, delivery_key: str, attempt: int) -> str | None:
        return self._write_keyed(target, "notice", notice.model_dump(mode="json"), delivery_key, attempt)

    async def deliver_alert(self, target: Target, alert: Alert, *, delivery_key: str, attempt: int) -> str | None:
        return self._write_keyed(target, "alert", alert.model_dump(mode="json"), delivery_key, attempt)

    async def deliver_follow_up(self, target: Target, follow_up: FollowUp, *, delivery_key: str,
                                attempt: int) -> str | None:
        filled = {f.lang: {"title": f.title, "summary": f.summary} for f in follow_up.filled_texts()}
        return self._write_keyed(target, "follow_up", {
            "parent": follow_up.brief.id, "source": follow_up.source.model_dump(mode="json"), "lang": follow_up.lang,
            "figures": [f.model_dump(mode="json") for f in follow_up.figures], "filled": filled},
            delivery_key, attempt)

    def _write_keyed(self, target: Target, kind: str, payload: dict, delivery_key: str, attempt: int) -> str:
        """One `{kind: payload, "delivery_key": …}` line; a retry first looks for the key, so a line
        written before a crash is not written again."""
        if not (attempt > 1 and self._already_written(target, json.dumps({"delivery_key": delivery_key})[1:-1])):
            self._append(target, {kind: payload, "delivery_key": delivery_key})
        return delivery_key

    async def aclose(self) -> None:
        pass
