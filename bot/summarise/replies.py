"""What goes to the model and what comes back: the reply's JSON schema, parsing a reply (reasoning
blocks, code fences, prose around the JSON), fencing the article in the prompt, and neutralising
mentions in whatever the model wrote."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model



class ReplyProblem(Exception):
    """The model's reply cannot be used; the message is fed back to it in the repair retry."""


_THINK_BLOCK_RE = re.compile(r"<(think|thinking|reasoning)>.*?</\1>", re.S | re.I)
_THINK_CLOSE_RE = re.compile(r"^.*?</(?:think|thinking|reasoning)>", re.S | re.I)
_THINK_OPEN_RE = re.compile(r"<(?:think|thinking|reasoning)>.*\Z", re.S | re.I)
_FENCE_RE = re.compile(r"```[ \t]*(?:json|JSON|json5)?[ \t]*\r?\n?(.*?)```", re.S)


def strip_reasoning(text: str) -> str:
    """Remove <think>…</think> blocks, including a dangling close (template opened it) or open (cut off)."""
    text = _THINK_BLOCK_RE.sub("", text)
    text = _THINK_CLOSE_RE.sub("", text)
    return _THINK_OPEN_RE.sub("", text).strip()


def extract_json_object(text: str | None) -> Any:
    """The first JSON object in a reply: reasoning and code fences stripped, chatter around it ignored."""
    if not text or not text.strip():
        raise ReplyProblem("the reply was empty")
    text = strip_reasoning(text)
    candidates = [m.group(1) for m in _FENCE_RE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    for candidate in candidates:
        start = candidate.find("{")
        while start >= 0:
            try:
                obj, _end = decoder.raw_decode(candidate, start)
            except json.JSONDecodeError:
                start = candidate.find("{", start + 1)
                continue
            if isinstance(obj, dict):
                return obj
            start = candidate.find("{", start + 1)
    raise ReplyProblem("the reply contained no valid JSON object")


def _describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:6]:
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def parse_reply(content: str | None, schema_model: type[BaseModel]) -> BaseModel:
    obj = extract_json_object(content)
    try:
        return schema_model.model_validate(obj)
    except ValidationError as exc:
        raise ReplyProblem("the JSON did not match the required shape: " + _describe_validation_error(exc)) from None


# --------------------------------------------------------------------------- schemas

def strict_json_schema(schema_model: type[BaseModel]) -> dict:
    """JSON Schema for structured outputs in strict mode: every object closed, every property required."""
    schema = schema_model.model_json_schema()

    def fix(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                fix(item)
            return
        if not isinstance(node, dict):
            return
        node.pop("default", None)
        node.pop("title", None)
        if node.get("type") == "object" or "properties" in node:
            props = node.get("properties", {})
            node["additionalProperties"] = False
            node["required"] = list(props)
            for sub in props.values():
                fix(sub)
        for key in ("items", "anyOf", "oneOf", "allOf", "prefixItems"):
            if key in node:
                fix(node[key])
        for sub in node.get("$defs", {}).values():
            fix(sub)

    fix(schema)
    return schema


@lru_cache(maxsize=8)
def brief_reply_model(languages: tuple[str, ...]) -> type[BaseModel]:
    """The reply contract for the configured languages (one key per language).

    Validation ignores extra keys (small models add them); the schema sent is closed regardless.
    """
    config = ConfigDict(extra="ignore")
    texts = create_model("BriefTexts", __config__=config, **{lang: (str, ...) for lang in languages})
    figure = create_model("BriefFigure", __config__=config, text=(str, ...), label=(texts, ...))
    return create_model("BriefReply", __config__=config, relevant=(bool, ...), title=(texts, ...),
                        summary=(texts, ...), figures=(list[figure], ...))


_WORD_RE = re.compile(r"[^\W_]")


def has_words(text: str) -> bool:
    """Does `text` hold a letter, a digit or a Han character? The reply example's "..." — which small
    models copy as their title and summary — does not."""
    return _WORD_RE.search(text) is not None


def reply_example(languages: list[str]) -> str:
    texts = {lang: "..." for lang in languages}
    example = {"relevant": True, "title": texts, "summary": texts,
               "figures": [{"text": "<copied verbatim from the article>", "label": texts}]}
    return json.dumps(example, ensure_ascii=False)


# --------------------------------------------------------------------------- helpers

_ARTICLE_TAG_RE = re.compile(r"<(\s*/?\s*article\b)", re.I)


def fence_article(text: str) -> str:
    """Neutralise article tags inside the text so it cannot close the <article> delimiter early."""
    return _ARTICLE_TAG_RE.sub(r"‹\1", text)


_MENTION_RE = re.compile(r"@(everyone|here|channel)\b|<!(?:everyone|here|channel)(?:\|[^>]*)?>|<@[!&]?\w+>", re.I)


def neutralise_mentions(text: str) -> str:
    """A brief must never ping a channel, whatever an article talked the model into."""
    return _MENTION_RE.sub(lambda m: m.group(1) or "", text).strip()


