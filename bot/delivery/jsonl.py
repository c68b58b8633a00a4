"""The jsonl:PATH target: one JSON object per line (the Brief's documented JSON form)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from bot.config import Settings, Target
from bot.delivery.base import DeliveryError
from bot.models import Brief, Digest


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

    async def deliver_brief(self, target: Target, brief: Brief, *, delivery_key: str, attempt: int) -> str | None:
        self._append(target, brief.to_json_dict())
        return None

    async def deliver_digest(self, target: Target, digest: Digest, *, delivery_key: str, attempt: int) -> str | None:
        self._append(target, {"digest": digest.to_json_dict()})
        return None

    async def aclose(self) -> None:
        pass
