"""The LLM reply cache, the token usage ledger behind the daily budget, and the request shape each
(server, model) was found to take (kept in the cache table under its own key prefix)."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import case, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from bot.models import utcnow
from bot.store import schema as t
from bot.store.engine import StoreEngine

_u = t.llm_usage.c
_c = t.llm_cache.c
# Reply keys are sha256 hex digests, so this prefix can never collide with a cached reply.
_DIALECT_PREFIX = "dialect:"
# The usage outcome of a call whose token counts are our estimate (the server sent no `usage`).
ESTIMATED = "estimated"


class LlmStore(StoreEngine):
    def cache_get(self, key: str) -> dict | None:
        with self.engine.connect() as c:
            row = c.execute(select(t.llm_cache.c.reply).where(t.llm_cache.c.key == key)).first()
        return row.reply if row else None

    def cache_put(self, key: str, reply: dict) -> None:
        """Cache a reply; a key cached already keeps its first reply."""
        try:
            with self.engine.begin() as c:
                c.execute(insert(t.llm_cache).values(key=key, reply=reply, created=utcnow()))
        except IntegrityError:
            pass

    def record_llm_usage(self, model: str, purpose: str, prompt_tokens: int, completion_tokens: int,
                         latency_ms: float | None, outcome: str, now: datetime | None = None) -> None:
        now = now or utcnow()
        with self.engine.begin() as c:
            c.execute(insert(t.llm_usage).values(day=now.strftime("%Y-%m-%d"), model=model, purpose=purpose,
                                                 prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                                                 latency_ms=latency_ms, outcome=outcome, created=now))

    def llm_tokens_on(self, day: str) -> int:
        with self.engine.connect() as c:
            return int(c.execute(select(func.coalesce(func.sum(_u.prompt_tokens + _u.completion_tokens), 0))
                                 .where(_u.day == day)).scalar_one())

    def llm_usage_by_day(self, days: int = 14) -> list[dict]:
        estimated = func.sum(case((_u.outcome == ESTIMATED, 1), else_=0))
        with self.engine.connect() as c:
            rows = c.execute(select(_u.day, func.count().label("calls"),
                                    func.sum(_u.prompt_tokens).label("prompt_tokens"),
                                    func.sum(_u.completion_tokens).label("completion_tokens"),
                                    func.coalesce(estimated, 0).label("estimated_calls"))
                             .group_by(_u.day).order_by(_u.day.desc()).limit(days)).all()
        # PostgreSQL sums BIGINT as NUMERIC (Decimal); callers do float arithmetic on these.
        return [{k: int(v) if (k.endswith("tokens") or k == "estimated_calls") and v is not None else v
                 for k, v in r._mapping.items()} for r in rows]

    # ------------------------------------------------------------------ request shape per server
    @staticmethod
    def _dialect_key(server: str, model: str) -> str:
        digest = hashlib.sha256(f"{server}\x1f{model}".encode("utf-8")).hexdigest()
        return _DIALECT_PREFIX + digest[:64 - len(_DIALECT_PREFIX)]

    def llm_dialect_get(self, server: str, model: str) -> dict | None:
        found = self.cache_get(self._dialect_key(server, model))
        return found.get("dialect") if found else None

    def llm_dialect_put(self, server: str, model: str, dialect: dict, now: datetime | None = None) -> None:
        """Replace what is known of (server, model); the last writer wins (they learn the same thing)."""
        key = self._dialect_key(server, model)
        now = now or utcnow()
        row = {"kind": "dialect", "server": server, "model": model, "dialect": dialect, "learnt": now.isoformat()}
        with self.engine.begin() as c:
            c.execute(delete(t.llm_cache).where(_c.key == key))
            c.execute(insert(t.llm_cache).values(key=key, reply=row, created=now))

    def llm_dialects(self) -> list[dict]:
        """Every (server, model) with a learnt request shape: server, model, dialect, learnt."""
        with self.engine.connect() as c:
            rows = c.execute(select(_c.reply).where(_c.key.like(_DIALECT_PREFIX + "%"))).scalars().all()
        return sorted((r for r in rows if isinstance(r, dict)), key=lambda r: (r["server"], r["model"]))
