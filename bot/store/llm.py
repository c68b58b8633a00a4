"""The LLM reply cache and the token usage ledger behind the daily budget."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from bot.models import utcnow
from bot.store import schema as t
from bot.store.engine import StoreEngine

_u = t.llm_usage.c


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
        with self.engine.connect() as c:
            rows = c.execute(select(_u.day, func.count().label("calls"),
                                    func.sum(_u.prompt_tokens).label("prompt_tokens"),
                                    func.sum(_u.completion_tokens).label("completion_tokens"))
                             .group_by(_u.day).order_by(_u.day.desc()).limit(days)).all()
        # PostgreSQL sums BIGINT as NUMERIC (Decimal); callers do float arithmetic on these.
        return [{k: int(v) if k.endswith("tokens") and v is not None else v for k, v in r._mapping.items()}
                for r in rows]
