"""A loopback OpenAI-compatible `/v1/chat/completions` server with scripted replies.

Tests queue replies (`fake.queue(...)`) that are served in order; every request body is recorded
(`fake.bodies`) so a test can assert exactly what the client sent. The real `openai` client talks
to it through `base_url=fake.base_url`. `fake.held(reply)` is a reply sent only after
`fake.release()`: a client timeout fires while it is held, whatever the machine's speed.

    with FakeOpenAI() as fake:
        fake.queue(chat_json({...}), rate_limited(retry_after="0"), server_error())
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loopback import LoopbackServer, Reply, Request  # noqa: E402

CHAT_PATH = "/v1/chat/completions"

Scripted = Reply | Callable[[Request], Reply]

_counter = 0
_counter_lock = threading.Lock()


def _completion_id() -> str:
    global _counter
    with _counter_lock:
        _counter += 1
        return f"chatcmpl-fake{_counter:06d}"


def chat(content: str | None, *, prompt_tokens: int = 120, completion_tokens: int = 80,
         finish_reason: str = "stop", model: str = "fake-mini", usage: bool = True) -> Reply:
    """A successful chat.completion whose assistant message is `content`."""
    body: dict[str, Any] = {
        "id": _completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": None},
            "finish_reason": finish_reason,
            "logprobs": None,
        }],
    }
    if usage:
        body["usage"] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                         "total_tokens": prompt_tokens + completion_tokens}
    return Reply.json(body)


def chat_json(obj: Any, **kw) -> Reply:
    """A reply whose content is exactly the JSON document (what a strict-schema server returns)."""
    return chat(json.dumps(obj, ensure_ascii=False), **kw)


def prose_with_fenced_json(obj: Any, **kw) -> Reply:
    """What a server that ignores response_format tends to return: chatter around a fenced block."""
    content = ("Sure! Here is the brief you asked for:\n\n```json\n"
               + json.dumps(obj, ensure_ascii=False, indent=2) + "\n```\n\nLet me know if you need changes.")
    return chat(content, **kw)


def with_think(obj: Any, **kw) -> Reply:
    """A reasoning model's reply: a <think> block (with braces and numbers in it) before the JSON."""
    content = ("<think>The user wants JSON {like this}. The article mentions 99% of something? "
               "No, let me check again.</think>\n" + json.dumps(obj, ensure_ascii=False))
    return chat(content, **kw)


def _error(status: int, message: str, err_type: str, headers: dict[str, str] | None = None,
           param: str | None = None, code: str | None = None) -> Reply:
    return Reply.json({"error": {"message": message, "type": err_type, "param": param, "code": code}},
                      status=status, headers=headers or {})


def rate_limited(retry_after: str | None = "1", retry_after_ms: str | None = None) -> Reply:
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    if retry_after_ms is not None:
        headers["retry-after-ms"] = retry_after_ms
    return _error(429, "Rate limit reached for requests", "requests", headers, code="rate_limit_exceeded")


def server_error(status: int = 500) -> Reply:
    return _error(status, "The server had an error while processing your request.", "server_error")


def bad_request(message: str = "Invalid request", param: str | None = None) -> Reply:
    return _error(400, message, "invalid_request_error", param=param)


def unauthorized() -> Reply:
    return _error(401, "Incorrect API key provided.", "invalid_request_error", code="invalid_api_key")


def rejects_response_format(then: Scripted) -> Callable[[Request], Reply]:
    """A server (older vLLM/llama.cpp) that answers 400 to any response_format, else `then`."""

    def handler(req: Request) -> Reply:
        if "response_format" in (req.json() or {}):
            return bad_request("response_format json_schema is not supported by this model",
                               param="response_format")
        return then(req) if callable(then) else then

    return handler


class FakeOpenAI:
    def __init__(self) -> None:
        self.server = LoopbackServer()
        self.server.route(CHAT_PATH, self._handle)
        self._script: deque[Scripted] = deque()
        self._lock = threading.Lock()
        # Served when the script runs dry, so a test that under-queues fails loudly, not hangs.
        self.default: Scripted = _error(599, "fake server: no reply scripted", "test_error")
        self.bodies: list[dict] = []
        self.headers: list[dict[str, str]] = []
        self._released = threading.Event()

    # -------------------------------------------------------------- lifecycle
    def start(self) -> "FakeOpenAI":
        self.server.start()
        return self

    def stop(self) -> None:
        self.release()
        self.server.stop()

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return self.server.url("/v1")

    # -------------------------------------------------------------- scripting
    def queue(self, *replies: Scripted) -> None:
        with self._lock:
            self._script.extend(replies)

    def reset(self) -> None:
        """Forget script and recordings, so one server can serve many tests (start/stop is slow).
        Replies still held are released."""
        with self._lock:
            self._script.clear()
            self.bodies.clear()
            self.headers.clear()
            self._released.set()
            self._released = threading.Event()

    def held(self, reply: Reply) -> Reply:
        """`reply`, sent only once `release()` is called (or the fake is reset or stopped): a reply
        that is late for any client timeout, with no race against the clock."""
        reply.hold = self._released
        return reply

    def release(self) -> None:
        """Send the replies held so far (their clients may have given up on them by now)."""
        self._released.set()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._script)

    @property
    def calls(self) -> int:
        with self._lock:
            return len(self.bodies)

    def _handle(self, req: Request) -> Reply:
        try:
            body = req.json()
        except ValueError:
            return bad_request("request body is not JSON")
        with self._lock:
            self.bodies.append(body)
            self.headers.append(dict(req.headers))
            step = self._script.popleft() if self._script else self.default
        return step(req) if callable(step) else step

    # -------------------------------------------------------------- helpers for assertions
    @staticmethod
    def message_text(body: dict, role: str) -> str:
        return "\n".join(m.get("content") or "" for m in body.get("messages", []) if m.get("role") == role)


class SleepRecorder:
    """Stands in for asyncio.sleep in LLMSummariser: records the waits asked for, returns at once."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def metric(name: str, **labels) -> float:
    """A Prometheus sample from briefbot's registry (0 when it has not been recorded yet)."""
    from bot.metrics import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0
