"""The optional LLM overview of a digest: 2–3 sentences per language, grounded in its briefs.

The overview is held to the same grounding guard as a brief, with the included briefs as its
source: a sentence carrying a number that no included brief has is cut.
"""

from __future__ import annotations

import json
import logging
import re

from pydantic import BaseModel, ConfigDict, create_model

from bot.digest.render import digest_languages, window_hours
from bot.metrics import GROUNDING_REJECTIONS
from bot.models import Digest
from bot.summarise.grounding import drop_unsupported_sentences, unsupported_numbers
from bot.summarise.llm import LLMSummariser, neutralise_mentions

log = logging.getLogger("briefbot.digest")

OVERVIEW_MAX_SENTENCES = 3

# Brief text came from articles: it must not be able to close the <stories> delimiter.
_STORIES_TAG_RE = re.compile(r"<(\s*/?\s*stories\b)", re.I)


def _overview_model(languages: list[str]) -> type[BaseModel]:
    """{"overview": {"en": str, "zh": str}} with one key per configured language (strict schema)."""
    # Validation ignores extra keys (small models add them); the schema sent is closed regardless.
    config = ConfigDict(extra="ignore")
    texts = create_model("DigestOverviewText", __config__=config, **{lang: (str, ...) for lang in languages})
    return create_model("DigestOverview", __config__=config, overview=(texts, ...))


def _briefs_source_text(digest: Digest) -> str:
    """Everything the overview may draw numbers from: the included briefs, all languages."""
    parts: list[str] = []
    for section in digest.sections:
        for brief in section.briefs:
            parts += list(brief.title.values()) + list(brief.summary.values())
            for fig in brief.figures:
                parts.append(fig.text)
                parts += list(fig.label.values())
    return "\n".join(parts)


def _stories_for_prompt(digest: Digest) -> str:
    # No story numbers or source counts: numbers the model sees but the grounding source lacks
    # would only tempt it into sentences that get cut.
    blocks: list[str] = []
    for section in digest.sections:
        for brief in section.briefs:
            lines = [f"story — topic: {section.label.get('en') or section.topic}"]
            for lang, title in brief.title.items():
                lines.append(f"title ({lang}): {title}")
            for lang, summary in brief.summary.items():
                lines.append(f"summary ({lang}): {summary}")
            if brief.figures:
                lines.append("figures: " + "; ".join(f.text for f in brief.figures))
            blocks.append("\n".join(lines))
    return _STORIES_TAG_RE.sub(r"‹\1", "\n\n".join(blocks))


def _prompt_variables(digest: Digest, languages: list[str]) -> dict:
    """The values prompts/digest.md is rendered with."""
    topics = [s.label.get("en") or s.topic for s in digest.sections if s.briefs]
    return {
        "stories": _stories_for_prompt(digest),
        "languages": ", ".join(languages),
        "topics": ", ".join(topics),
        "window": f"{window_hours(digest)} h",
        "digest_name": digest.name,
        "max_sentences": OVERVIEW_MAX_SENTENCES,
        "reply_example": json.dumps({"overview": {lang: "..." for lang in languages}}, ensure_ascii=False),
    }


def _grounded(text: str, source: str, lang: str) -> str:
    """The overview text with sentences carrying numbers not found in the briefs removed."""
    text = neutralise_mentions(text or "")
    if not text:
        return ""
    bad = unsupported_numbers(text, source)
    if not bad:
        return text
    kept, removed = drop_unsupported_sentences(text, source, lang)
    GROUNDING_REJECTIONS.labels(what="digest-overview").inc()
    log.warning("digest overview (%s): removed %d sentence(s) with numbers not in the briefs (%s)",
                lang, len(removed), ", ".join(bad))
    return kept.strip()


async def add_overview(llm: LLMSummariser | None, digest: Digest) -> Digest:
    """The digest with a 2–3 sentence overview per language, grounded in the included briefs.

    No LLM, an empty digest, an LLM failure, or nothing left after grounding: the digest is
    returned without an overview (an LLM outage never blocks the digest).
    """
    if llm is None or digest.empty:
        return digest
    languages = digest_languages(digest)
    try:
        reply = await llm.complete_json("digest", _prompt_variables(digest, languages),
                                        _overview_model(languages), purpose="digest")
    except Exception as exc:  # the overview is optional; the digest goes out without it
        log.warning("digest %s: overview skipped, LLM call failed: %s", digest.name, exc)
        return digest
    if reply is None:
        return digest
    texts = reply.overview.model_dump() if hasattr(reply, "overview") else {}
    source = _briefs_source_text(digest)
    overview = {lang: kept for lang in languages if (kept := _grounded(texts.get(lang, ""), source, lang))}
    return digest.model_copy(update={"overview": overview or None})
