"""Slack Block Kit rendering of briefs and digests.

Everything that comes from a feed or a model is escaped (`&`, `<`, `>`) before it reaches a
mrkdwn field or the fallback `text`, so a headline like "<!channel> <https://evil|click>" is shown
as written and never pings anyone or disguises a link. Block Kit limits are met by trimming here,
never by an `invalid_blocks` error from the API.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Iterable
from zoneinfo import ZoneInfo

from bot.alerts import Alert, alert_detail, alert_headline, alert_label
from bot.config import Settings
from bot.delivery.adapter import FollowUp
from bot.digest import (
    digest_held_lines,
    digest_languages,
    feed_health_lines,
    notice_lines,
    nothing_new_line,
    overview_paragraphs,
    section_label,
)
from bot.models import Brief, Digest, Notice

# Block Kit limits (https://api.slack.com/reference/block-kit/blocks).
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_CONTEXT_ELEMENTS = 10
# chat.postMessage truncates `text` beyond 40k; notifications show far less, keep it short.
MAX_FALLBACK_TEXT = 3000

# Figures and sources shown on one brief; the rest are counted ("+3 more").
MAX_BRIEF_FIGURES = 20
MAX_BRIEF_SOURCES = 9

METADATA_EVENT_TYPE = "briefbot_delivery"
EXTRACTIVE_NOTE = "extractive — full translation needs an LLM / 摘录模式——完整翻译需要 LLM"

# --------------------------------------------------------------------------- text helpers

def escape(text: str) -> str:
    """Escape Slack's control characters so feed/model text can never form a mention or link."""
    return (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fit(text: str, limit: int) -> str:
    """Trim already-escaped text to `limit` characters without cutting an `&amp;`-style entity."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&", max(0, len(cut) - 5))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut.rstrip() + "…"


def _fit_plain(text: str, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _safe_url(url: str | None) -> str | None:
    """An http(s) URL made safe inside `<url|label>`: no `|`, `<`, `>` or spaces can break out."""
    if not url or not re.match(r"^https?://", url, re.I):
        return None
    return (url.strip().replace("|", "%7C").replace("<", "%3C").replace(">", "%3E")
            .replace(" ", "%20").replace("&", "&amp;"))


def link(url: str | None, label: str, limit: int = 300) -> str:
    """`<url|label>` with the label escaped; plain escaped label when the URL is not http(s)."""
    safe_label = fit(escape(" ".join((label or "").split())) or "link", limit)
    safe = _safe_url(url)
    return f"<{safe}|{safe_label}>" if safe else safe_label


def _zone(tz: str | None) -> ZoneInfo | timezone:
    try:
        return ZoneInfo(tz or "UTC")
    except Exception:
        return timezone.utc


def format_time(value: datetime | None, tz: str | None) -> str:
    """`2024-05-12 18:30 CST` in the configured timezone (naive datetimes are taken as UTC)."""
    if value is None:
        return "time unknown"
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(_zone(tz)).strftime("%Y-%m-%d %H:%M %Z")


def _lang_text(values: dict[str, str], lang: str) -> str:
    return (values.get(lang) or "").strip()


def _topic_labels(topics: Iterable[str], settings: Settings | None) -> str:
    labels = []
    for topic in topics:
        if settings is not None:
            en, zh = settings.topic_label(topic, "en"), settings.topic_label(topic, "zh")
            labels.append(en if en == zh else f"{en} / {zh}")
        else:
            labels.append(topic)
    return ", ".join(labels)


def _resolve_tz(settings: Settings | None, tz: str | None) -> str:
    return tz or (settings.timezone if settings is not None else "UTC")


def _mrkdwn(text: str) -> dict:
    return {"type": "mrkdwn", "text": text}


def section_block(text: str) -> dict:
    return {"type": "section", "text": _mrkdwn(fit(text, MAX_SECTION_TEXT))}


def context_block(elements: list[str]) -> dict:
    return {"type": "context", "elements": [_mrkdwn(fit(e, MAX_SECTION_TEXT)) for e in elements[:MAX_CONTEXT_ELEMENTS]]}


def _figure_label(fig_label: dict[str, str]) -> str:
    en, zh = (fig_label.get("en") or "").strip(), (fig_label.get("zh") or "").strip()
    if en and zh and en != zh:
        return f"{en} / {zh}"
    return en or zh or "Figure / 数据"


# --------------------------------------------------------------------------- rendering

def render_brief(brief: Brief, settings: Settings | None = None, tz: str | None = None) -> tuple[str, list[dict]]:
    """A brief as (fallback text, Block Kit blocks), within Slack's limits."""
    tz = _resolve_tz(settings, tz)
    title_en, title_zh = _lang_text(brief.title, "en"), _lang_text(brief.title, "zh")
    summary_en, summary_zh = _lang_text(brief.summary, "en"), _lang_text(brief.summary, "zh")
    headline = title_en or title_zh or "Untitled brief"

    blocks: list[dict] = [
        # plain_text is never parsed for mentions or links, so the raw title is safe here.
        {"type": "header", "text": {"type": "plain_text", "text": _fit_plain(headline, MAX_HEADER_TEXT), "emoji": False}},
    ]
    if summary_en:
        blocks.append(section_block(escape(summary_en)))
    if title_zh or summary_zh:
        zh_parts = []
        if title_zh and title_zh != headline:
            zh_parts.append(f"*{escape(title_zh)}*")
        if summary_zh and summary_zh != summary_en:
            zh_parts.append(escape(summary_zh))
        if zh_parts:
            blocks.append(section_block("\n".join(zh_parts)))

    figures = brief.figures[:MAX_BRIEF_FIGURES]
    for start in range(0, len(figures), MAX_FIELDS):
        fields = [_mrkdwn(fit(f"*{escape(_figure_label(f.label))}*\n{escape(f.text)}", MAX_FIELD_TEXT))
                  for f in figures[start:start + MAX_FIELDS]]
        blocks.append({"type": "section", "fields": fields})
    if len(brief.figures) > len(figures):
        blocks.append(context_block([f"+{len(brief.figures) - len(figures)} more figures / 其余数据未显示"]))

    sources = brief.sources[:MAX_BRIEF_SOURCES]
    if sources:
        elements = [f"{link(s.url, s.title)} · {escape(s.feed)} · {format_time(s.published, tz)}" for s in sources]
        if len(brief.sources) > len(sources):
            elements.append(f"+{len(brief.sources) - len(sources)} more sources / 更多来源")
        blocks.append(context_block(elements))

    footer = [f"Topics / 主题: {escape(_topic_labels(brief.topics, settings))}"]
    footer.append(EXTRACTIVE_NOTE if brief.mode == "extractive" else "LLM summary, numbers checked against the source")
    footer.extend(escape(note) for note in brief.note.values())
    blocks.append(context_block(footer))

    fallback_parts = [headline]
    if title_zh and title_zh != headline:
        fallback_parts.append(title_zh)
    if summary_en:
        fallback_parts.append(summary_en)
    fallback = fit(escape(" — ".join(fallback_parts)), MAX_FALLBACK_TEXT)
    return fallback, blocks[:MAX_BLOCKS]


def _compact_line(brief: Brief, tz: str) -> str:
    title_en, title_zh = _lang_text(brief.title, "en"), _lang_text(brief.title, "zh")
    first = title_en or title_zh or "Untitled brief"
    lines = [f"*{link(brief.primary_url, first)}*"]
    if title_zh and title_zh != first:
        lines.append(escape(title_zh))
    figures = " · ".join(escape(f.text) for f in brief.figures[:3])
    if figures:
        lines.append(figures)
    return "\n".join(lines)


def render_brief_compact(brief: Brief, settings: Settings | None = None, tz: str | None = None) -> list[dict]:
    """Two blocks for a list answer (`/brief <topic>`, search): bilingual titles + key figures, then source/time."""
    tz = _resolve_tz(settings, tz)
    feeds = ", ".join(dict.fromkeys(s.feed for s in brief.sources)) or "unknown source"
    meta = [f"{escape(feeds)} · {format_time(brief.published or brief.created, tz)}",
            escape(_topic_labels(brief.topics, settings)), "extractive" if brief.mode == "extractive" else "LLM"]
    return [section_block(_compact_line(brief, tz)), context_block([" · ".join(meta)])]


def _digest_item(brief: Brief) -> str:
    title_en, title_zh = _lang_text(brief.title, "en"), _lang_text(brief.title, "zh")
    first = title_en or title_zh or "Untitled brief"
    line = f"• {link(brief.primary_url, first)}"
    if brief.figures:
        line += f" — *{escape(brief.figures[0].text)}*"
    if len(brief.sources) > 1:
        line += f" ({len(brief.sources)} sources)"
    if title_zh and title_zh != first:
        line += f"\n    {escape(title_zh)}"
    return line


def render_digest(digest: Digest, settings: Settings | None = None, tz: str | None = None,
                  max_blocks: int = MAX_BLOCKS) -> list[tuple[str, list[dict]]]:
    """A digest as one or more (fallback text, blocks) messages, in order, split only between items."""
    tz = tz or digest.timezone or _resolve_tz(settings, None)
    title_en, title_zh = _lang_text(digest.title, "en"), _lang_text(digest.title, "zh")
    headline = title_en or title_zh or digest.name
    window = f"{format_time(digest.window_start, tz)} → {format_time(digest.window_end, tz)}"

    intro: list[dict] = [{"type": "header", "text": {"type": "plain_text", "text": _fit_plain(headline, MAX_HEADER_TEXT)}}]
    intro_context = [escape(window)]
    if title_zh and title_zh != headline:
        intro_context.insert(0, escape(title_zh))
    intro.append(context_block(intro_context))
    languages = digest_languages(digest)
    counts = " · ".join(f"{escape(' / '.join(section_label(s, lang) for lang in languages))}: {s.count}"
                        for s in digest.sections)
    if counts:
        intro.append(section_block(counts))
    health = feed_health_lines(digest)
    if health:
        intro.append(section_block(":warning: " + escape("\n".join(health))))
    intro.extend(section_block(escape(paragraph)) for paragraph in overview_paragraphs(digest))

    # Items are the unit of splitting: a section heading travels with its first item.
    items: list[list[dict]] = []
    if digest.empty:
        items.append([section_block(escape(" / ".join(nothing_new_line(digest, lang) for lang in languages)))])
    for section in digest.sections:
        if not section.briefs:
            continue
        heading = section_block(f"*{escape(' / '.join(section_label(section, lang) for lang in languages))}* "
                                f"({section.count})")
        for i, brief in enumerate(section.briefs):
            block = section_block(_digest_item(brief))
            items.append([heading, block] if i == 0 else [block])

    held = [escape(line) for lang in languages for line in digest_held_lines(digest, lang)]
    if held:
        items.append([context_block(held)])
    fallback_base = escape(f"{headline} ({window})")
    messages: list[list[dict]] = [list(intro)]
    for item in items:
        if len(messages[-1]) + len(item) > max_blocks:
            messages.append([])
        messages[-1].extend(item)
    total = len(messages)
    out = []
    for i, blocks in enumerate(messages, 1):
        suffix = f" — part {i}/{total}" if total > 1 else ""
        out.append((fit(fallback_base + suffix, MAX_FALLBACK_TEXT), blocks))
    return out


def render_notice(notice: Notice, settings: Settings | None = None) -> tuple[str, list[dict]]:
    """The flood guard's summary as (fallback text, blocks): count and topics, then the top headlines."""
    languages = list(settings.languages) if settings else ["en", "zh"]
    label = settings.topic_label if settings else (lambda topic, lang: topic)
    lines = notice_lines(notice, languages, lambda t, lang: escape(label(t, lang)), lambda text: f"*{text}*")
    headlines = [f"• {link(h.url, h.title)}" for h in notice.headlines]
    if notice.count > len(notice.headlines):
        headlines.append(f"… +{notice.count - len(notice.headlines)}")
    blocks = [section_block("\n".join(lines)), section_block("\n".join(headlines) or "—")]
    plain = notice_lines(notice, languages[:1], label)[0]
    return fit(escape(plain), MAX_FALLBACK_TEXT), blocks


def render_alert(alert: Alert, settings: Settings | None = None) -> tuple[str, list[dict]]:
    """An incident or its recovery as (fallback text, blocks): the headline per language, then the detail."""
    languages = list(settings.languages) if settings else ["en", "zh"]
    icon = ":rotating_light:" if alert.phase == "open" else ":white_check_mark:"
    lines = [f"{icon} *{escape(alert_label(alert, lang))}*: {escape(alert_headline(alert, lang))}"
             for lang in languages]
    blocks = [section_block("\n".join(lines))]
    detail = alert_detail(alert)
    if detail:
        blocks.append(context_block([escape(detail)]))
    plain = f"{alert_label(alert, languages[0])}: {alert_headline(alert, languages[0])}"
    return fit(escape(plain), MAX_FALLBACK_TEXT), blocks


def render_follow_up(follow_up: FollowUp) -> tuple[str, list[dict]]:
    """A later source of a posted story, as (fallback text, blocks) for a reply in its thread: who
    reported it, the linked headline, the figures it adds, and the text it gave the story in a
    language that had none."""
    source = follow_up.source
    lines = [f"*{escape(follow_up.headline())}*: {link(source.url, source.title)}"]
    plain = f"{follow_up.headline()}: {_fit_plain(source.title, 300)}"
    if follow_up.figures:
        lines.append(escape(follow_up.figures_text()))
        plain += f" — {follow_up.figures_text()}"
    blocks = [section_block("\n".join(lines))]
    for filled in follow_up.filled_texts():
        blocks.append(section_block(f"*{escape(filled.heading)}: {escape(filled.title)}*\n{escape(filled.summary)}"))
        plain += f" — {filled.heading}: {filled.title}"
    return fit(escape(plain), MAX_FALLBACK_TEXT), blocks
