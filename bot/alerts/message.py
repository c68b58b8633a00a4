"""An alert as every adapter receives it: one incident opened ("open") or resolved ("resolved")."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from bot.ingest.urls import hide_urls
from bot.store import Incident
from bot.store.incidents import OPENED


class Alert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str  # the outbox ref: "i12:open", "i12:resolved"
    phase: Literal["open", "resolved"]
    kind: str  # feed-failing | feed-disabled | target | llm-failing | llm-budget
    subject: str  # the feed's name, the target as it may be shown, or "LLM"
    detail: str | None = None  # the last error (open) or what ended it (resolved), URLs hidden
    since: datetime  # when the failure was first seen
    at: datetime  # when it was alerted or resolved


def alert_for(incident: Incident, phase: str, ref_id: str) -> Alert:
    opened = phase == OPENED
    at = (incident.alerted_at if opened else incident.resolved_at) or incident.last_seen_at
    detail = incident.detail if opened else incident.resolution
    return Alert(id=ref_id, phase="open" if opened else "resolved", kind=incident.kind, subject=incident.subject,
                 detail=hide_urls(detail) if detail else None, since=incident.started_at, at=at)
