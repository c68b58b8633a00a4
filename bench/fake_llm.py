"""A 0-latency OpenAI-compatible server for the benchmarks, built on the test fake.

Every request is answered (no script needed) with a valid, grounded brief: the title and summary
carry no numbers, so the grounding guard keeps them and the figures come from the article.
`usage.prompt_tokens` is computed from the request itself (an independent estimate: one token
per CJK character, one per 4 other characters, 4 per message), so token counts reflect what
the client really sent rather than anything the client reports.
"""

from __future__ import annotations

import re
import threading

from bench import common  # noqa: F401  (puts tests/ on sys.path for the fakes)
from fakes.openai_server import FakeOpenAI, chat_json  # noqa: E402

_CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


def estimate_tokens(text: str) -> int:
    cjk = len(_CJK.findall(text))
    return cjk + (len(text) - cjk + 3) // 4


def request_tokens(body: dict) -> int:
    return sum(estimate_tokens(str(m.get("content") or "")) + 4 for m in body.get("messages", []))


GROUNDED_REPLY = {
    "relevant": True,
    "title": {"en": "Rare-earth and tariff update", "zh": "稀土与关税动态"},
    "summary": {"en": "Supply and trade measures for critical minerals changed; see the source for details.",
                "zh": "关键矿产的供应与贸易措施出现变化，详情见原文。"},
    "figures": [],
}


class CountingLLM:
    """FakeOpenAI answering every call instantly; counts calls and prompt tokens."""

    def __init__(self) -> None:
        self.fake = FakeOpenAI()
        self.fake.default = self._answer
        self._lock = threading.Lock()
        self.prompt_tokens: list[int] = []

    def _answer(self, req):
        tokens = request_tokens(req.json() or {})
        with self._lock:
            self.prompt_tokens.append(tokens)
        return chat_json(GROUNDED_REPLY, prompt_tokens=tokens, completion_tokens=90)

    @property
    def base_url(self) -> str:
        return self.fake.base_url

    @property
    def calls(self) -> int:
        with self._lock:
            return len(self.prompt_tokens)

    def reset(self) -> None:
        with self._lock:
            self.prompt_tokens.clear()

    def __enter__(self) -> "CountingLLM":
        self.fake.start()
        return self

    def __exit__(self, *exc) -> None:
        self.fake.stop()
