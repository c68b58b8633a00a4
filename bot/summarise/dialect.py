"""What request shape an OpenAI-compatible server takes, learnt from its refusals.

Servers that all call themselves OpenAI-compatible differ in exactly the parts a brief needs:
structured output (`json_schema` strict; llama-cpp-python only knows `json_object`, with an optional
`schema`), the output cap (`max_tokens`, or `max_completion_tokens` on reasoning models) and
`temperature`. They also differ in how they say no: 400, 422, or a 500 whose body is a validation
error. A refusal is therefore read from the body, whatever the status: an error that names the part
we sent (`response_format`, `json_schema`, `schema`, `strict`; the token parameter; `temperature`)
is the server's verdict on the request's shape, to be answered at once with the next shape down,
never retried with backoff. Anything else (timeouts, 429, a bare 500) is an outage and keeps the
retry policy in calls.py.

What worked is kept per (server, model) in the store, so a restart does not ask again.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, replace

# Best first: a strict schema is enforced by the server; json_object with a schema is enforced by
# llama-cpp-python (and read as plain JSON mode by Ollama and vLLM); plain JSON relies on the
# instructions alone and on the repair retry.
MODES = ("json_schema", "json_object", "plain")
# `None`: no cap at all, for a server that refuses both names or a cap that does not fit its context.
TOKEN_PARAMS = ("max_tokens", "max_completion_tokens", None)
# A bilingual brief is 600–1,000 tokens; the cap stops a runaway generation (a grammar-constrained
# small model can loop on whitespace until the timeout) and still leaves room for a short reasoning
# preamble. It fits a 4k context next to the article budget.
MAX_REPLY_TOKENS = 2048

_FORMAT_WORDS = re.compile(r"response_format|json_schema|schema|strict", re.I)
_TOKEN_WORDS = re.compile(r"max_completion_tokens|max_tokens|output tokens", re.I)
# vLLM: "'max_tokens' or 'max_completion_tokens' is too large: …" / "… requested 2048 output tokens.
# However, the model's context length is only …": the cap itself does not fit, whatever its name.
_CAP_TOO_LARGE = re.compile(r"too large|context length|maximum context|greater than", re.I)
# Statuses that mean "not now" rather than "not like this", whatever the body says.
_OUTAGE_STATUS = {408, 409, 429}


@dataclass(frozen=True)
class Dialect:
    mode: str = "json_schema"
    token_param: str | None = "max_tokens"
    temperature: bool = True

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict | None) -> "Dialect":
        if not data:
            return cls()
        mode = data.get("mode") if data.get("mode") in MODES else "json_schema"
        token = data.get("token_param") if data.get("token_param") in TOKEN_PARAMS else "max_tokens"
        return cls(mode=mode, token_param=token, temperature=bool(data.get("temperature", True)))

    def describe(self) -> str:
        cap = self.token_param or "no output cap"
        return f"{self.mode}, {cap}" + ("" if self.temperature else ", no temperature")


def refused_part(status: int, message: str, sent: dict) -> str | None:
    """The part of the request `sent` that an error refuses ("format", "tokens", "temperature"), or
    None when the error is not about the request's shape."""
    if status in _OUTAGE_STATUS or status < 400:
        return None
    if "response_format" in sent and _FORMAT_WORDS.search(message):
        return "format"
    if any(p in sent for p in TOKEN_PARAMS if p) and _TOKEN_WORDS.search(message):
        return "tokens"
    if "temperature" in sent and status < 500 and "temperature" in message.lower():
        return "temperature"
    return None


def next_dialect(dialect: Dialect, part: str, message: str) -> Dialect | None:
    """The shape to try after `part` was refused, or None when nothing is left to give up."""
    if part == "format":
        i = MODES.index(dialect.mode)
        return replace(dialect, mode=MODES[i + 1]) if i + 1 < len(MODES) else None
    if part == "tokens":
        if dialect.token_param is None:
            return None
        if _CAP_TOO_LARGE.search(message) or dialect.token_param == "max_completion_tokens":
            return replace(dialect, token_param=None)
        return replace(dialect, token_param="max_completion_tokens")
    if part == "temperature" and dialect.temperature:
        return replace(dialect, temperature=False)
    return None


def json_instructions(schema: dict) -> str:
    return ("\n\nReply format: one JSON object only (no prose, no code fence) that validates against "
            "this JSON Schema:\n" + json.dumps(schema, ensure_ascii=False))


def build_request(dialect: Dialect, model: str, messages: list[dict], name: str, schema: dict,
                  temperature: float) -> dict:
    """Chat-completion keyword arguments in `dialect`'s shape."""
    kwargs: dict = {"model": model}
    if dialect.temperature:
        kwargs["temperature"] = temperature
    if dialect.token_param:
        kwargs[dialect.token_param] = MAX_REPLY_TOKENS
    if dialect.mode == "json_schema":
        kwargs["messages"] = messages
        kwargs["response_format"] = {"type": "json_schema",
                                     "json_schema": {"name": name, "strict": True, "schema": schema}}
        return kwargs
    # Servers that take json_object without a schema (Ollama, vLLM) only promise JSON: the schema
    # goes into the instructions as well.
    first, *rest = messages
    kwargs["messages"] = [{**first, "content": first["content"] + json_instructions(schema)}] + rest
    if dialect.mode == "json_object":
        kwargs["response_format"] = {"type": "json_object", "schema": schema}
    return kwargs


def server_key(base_url: str | None) -> str:
    """The server as remembered: the base URL without a trailing slash (the client's default if unset)."""
    return (base_url or "https://api.openai.com/v1").rstrip("/")
