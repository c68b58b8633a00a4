"""Discord rendering of briefs and digests as embeds, within Discord's documented limits."""

from __future__ import annotations

import zlib
from typing import Iterable, Sequence

import discord

from bot.alerts import Alert, alert_detail, alert_headline, alert_label
from bot.config import Settings
from bot.delivery.adapter import FollowUp
from bot.digest import (
    digest_held_lines,
    digest_languages,
    feed_health_lines,
    notice_lines,
    nothing_new_line,
    section_headline,
    story_line,
    window_line,
)
from bot.models import Brief, Digest, Notice

# Discord's documented limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits).
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FIELDS_LIMIT = 25
FOOTER_LIMIT = 2048
AUTHOR_LIMIT = 256
EMBED_TOTAL_LIMIT = 6000  # per message, summed over all its embeds
EMBEDS_PER_MESSAGE = 10
CONTENT_LIMIT = 2000
NONCE_LENGTH = 25  # Discord rejects longer nonces

# Readable on both light and dark themes; a topic always maps to the same one (crc32, not hash()).
TOPIC_PALETTE = (0x1F8B4C, 0xC27C0E, 0x206694, 0xAD1457, 0x71368A, 0x11806A, 0xA84300, 0x546E7A)

_LANG_NAMES = {"en": "English", "zh": "中文"}

NO_MENTIONS = discord.AllowedMentions.none()


# --------------------------------------------------------------------------- text helpers

def trim(text: str | None, limit: int) -> str:
    """Cut `text` to `limit` characters, preferring a line or word boundary, marking the cut with '…'."""
    text = (text or "").strip()
    if len(text) <= limit:
        return text
    if limit <= 1:
        return text[:limit]
    cut = text[: limit - 1]
    # Back up to a boundary only when it loses little; CJK text has no spaces to back up to.
    boundary = max(cut.rfind("\n"), cut.rfind(" "))
    if boundary >= limit * 0.8:
        cut = cut[:boundary]
    return cut.rstrip() + "…"


def _first(values: dict[str, str], order: Sequence[str]) -> str:
    for lang in order:
        if values.get(lang):
            return values[lang]
    return next((v for v in values.values() if v), "")


def _languages(settings: Settings | None) -> list[str]:
    return list(settings.languages) if settings else ["en", "zh"]


def topic_label(topic: str, settings: Settings | None, languages: Sequence[str] | None = None) -> str:
    """'Rare earths / 稀土' — every configured language, without repeats."""
    if settings is None or topic not in settings.topics:
        return topic
    labels: list[str] = []
    for lang in languages or _languages(settings):
        label = settings.topic_label(topic, lang)
        if label and label not in labels:
            labels.append(label)
    return " / ".join(labels) or topic


def topic_colour(topic: str | None) -> discord.Colour:
    if not topic:
        return discord.Colour(TOPIC_PALETTE[-1])
    return discord.Colour(TOPIC_PALETTE[zlib.crc32(topic.encode("utf-8")) % len(TOPIC_PALETTE)])


def _figure_label(label: dict[str, str], languages: Sequence[str], index: int) -> str:
    parts: list[str] = []
    for lang in languages:
        if label.get(lang) and label[lang] not in parts:
            parts.append(label[lang])
    return " / ".join(parts) or f"Figure {index} / 数字 {index}"


def _mode_note(brief: Brief) -> str:
    if brief.mode == "extractive":
        return "Extractive: sentences quoted from the source, no AI · 摘录：原文句子，非 AI 生成"
    return "AI summary; every figure checked against the source · AI 摘要，数字均已核对原文"


def _feeds_of(brief: Brief) -> list[str]:
    feeds: list[str] = []
    for s in brief.sources:
        if s.feed not in feeds:
            feeds.append(s.feed)
    return feeds


def _link(text: str, url: str) -> str:
    # Square brackets inside link text would end the Markdown link early.
    safe = text.replace("[", "(").replace("]", ")")
    return f"[{safe}]({url})"


# --------------------------------------------------------------------------- embed limits

def embed_size(embed: discord.Embed) -> int:
    """Characters Discord counts towards the 6,000 total (title, description, fields, footer, author)."""
    return len(embed)


def fit_embed(embed: discord.Embed, total_limit: int = EMBED_TOTAL_LIMIT) -> discord.Embed:
    """Enforce every per-part limit, then the total: shrink the description, then drop trailing fields."""
    if embed.title:
        embed.title = trim(embed.title, TITLE_LIMIT)
    if embed.description:
        embed.description = trim(embed.description, DESCRIPTION_LIMIT)
    if embed.author.name:
        embed.set_author(name=trim(embed.author.name, AUTHOR_LIMIT), url=embed.author.url)
    if embed.footer.text:
        embed.set_footer(text=trim(embed.footer.text, FOOTER_LIMIT))
    fields = [(trim(f.name, FIELD_NAME_LIMIT) or "—", trim(f.value, FIELD_VALUE_LIMIT) or "—", bool(f.inline))
              for f in embed.fields[:FIELDS_LIMIT]]
    embed.clear_fields()
    for name, value, inline in fields:
        embed.add_field(name=name, value=value, inline=inline)

    excess = embed_size(embed) - total_limit
    if excess > 0 and embed.description:
        # Keep at least a readable opening of the summary before sacrificing figures.
        keep = max(200, len(embed.description) - excess)
        embed.description = trim(embed.description, keep)
    while embed_size(embed) > total_limit and embed.fields:
        embed.remove_field(len(embed.fields) - 1)
    excess = embed_size(embed) - total_limit
    if excess > 0 and embed.description:
        embed.description = trim(embed.description, max(1, len(embed.description) - excess))
    excess = embed_size(embed) - total_limit
    if excess > 0 and embed.footer.text:
        embed.set_footer(text=trim(embed.footer.text, max(1, len(embed.footer.text) - excess)))
    return embed


def pack_embeds(embeds: Iterable[discord.Embed]) -> list[list[discord.Embed]]:
    """Group embeds into messages in order: ≤10 per message and ≤6,000 characters per message."""
    messages: list[list[discord.Embed]] = []
    current: list[discord.Embed] = []
    size = 0
    for embed in embeds:
        fit_embed(embed)
        n = embed_size(embed)
        if current and (len(current) >= EMBEDS_PER_MESSAGE or size + n > EMBED_TOTAL_LIMIT):
            messages.append(current)
            current, size = [], 0
        current.append(embed)
        size += n
    if current:
        messages.append(current)
    return messages


# --------------------------------------------------------------------------- brief rendering

def render_brief_embed(brief: Brief, settings: Settings | None = None) -> discord.Embed:
    """The full embed posted to channels: bilingual summary, figures as fields, sources, mode."""
    languages = _languages(settings)
    primary = "en" if "en" in languages else languages[0]
    title = _first(brief.title, [primary, *languages])
    embed = discord.Embed(
        title=trim(title, TITLE_LIMIT) or brief.id,
        url=brief.primary_url,
        colour=topic_colour(brief.topics[0] if brief.topics else None),
        timestamp=brief.published or brief.created,
    )
    embed.set_author(name=_mode_note(brief))

    blocks: list[str] = []
    for lang in languages:
        summary = (brief.summary.get(lang) or "").strip()
        other_title = (brief.title.get(lang) or "").strip()
        if lang != primary and other_title and other_title != title:
            blocks.append(f"**{trim(other_title, 300)}**\n{summary}" if summary else f"**{other_title}**")
        elif summary:
            blocks.append(summary)

    blocks.extend(f"*{note}*" for note in brief.note.values())

    several_sources = len(brief.sources) > 1
    fields: list[tuple[str, str, bool]] = [
        (trim(_figure_label(fig.label, languages, i), FIELD_NAME_LIMIT), trim(fig.text, FIELD_VALUE_LIMIT) or "—", True)
        for i, fig in enumerate(brief.figures[:FIELDS_LIMIT - several_sources], start=1)]
    if several_sources:
        fields.append((f"Sources / 来源 ({len(brief.sources)})", _sources_field(brief), False))
    topics = ", ".join(topic_label(t, settings, languages) for t in brief.topics)
    footer = trim(" · ".join(part for part in (", ".join(_feeds_of(brief)), topics) if part), FOOTER_LIMIT)

    # The 6,000 total: the summaries matter most, then figures, then the list of other sources.
    fixed = len(embed.title or "") + len(embed.author.name or "") + len(footer)
    separators = 2 * max(0, len(blocks) - 1)
    wanted = min(DESCRIPTION_LIMIT, sum(len(b) for b in blocks) + separators)
    reserved = min(wanted, 1500)
    while fields and (fixed + reserved + sum(len(n) + len(v) for n, v, _ in fields) > EMBED_TOTAL_LIMIT):
        # Drop the sources list first (it is last), then figures from the least important end.
        fields.pop()
    budget = min(DESCRIPTION_LIMIT, EMBED_TOTAL_LIMIT - fixed - sum(len(n) + len(v) for n, v, _ in fields))
    embed.description = "\n\n".join(_fair_share(blocks, budget - separators)) or None
    for name, value, inline in fields:
        embed.add_field(name=name, value=value, inline=inline)
    if footer:
        embed.set_footer(text=footer)
    return fit_embed(embed)


def _fair_share(blocks: list[str], budget: int) -> list[str]:
    """Trim blocks to `budget` in total so that every language keeps a share; short ones give their rest away."""
    limits = [0] * len(blocks)
    remaining = max(0, budget)
    order = sorted(range(len(blocks)), key=lambda i: len(blocks[i]))
    for n, i in enumerate(order):
        share = remaining // (len(blocks) - n)
        limits[i] = min(len(blocks[i]), share)
        remaining -= limits[i]
    return [trim(b, limit) for b, limit in zip(blocks, limits) if limit > 0]


def _sources_field(brief: Brief) -> str:
    lines: list[str] = []
    used = 0
    for s in brief.sources:
        line = f"{_link(trim(s.title or s.feed, 120), s.url)} ({s.feed})"
        # Never cut a link in half: stop at the last whole line that fits.
        if used + len(line) + 1 > FIELD_VALUE_LIMIT - 12:
            lines.append(f"… +{len(brief.sources) - len(lines)}")
            break
        lines.append(line)
        used += len(line) + 1
    return "\n".join(lines)


# Ten compact embeds must fit in one message's 6,000 characters.
COMPACT_LIMIT = EMBED_TOTAL_LIMIT // EMBEDS_PER_MESSAGE - 10


def render_brief_compact(brief: Brief, settings: Settings | None = None,
                         limit: int = COMPACT_LIMIT) -> discord.Embed:
    """A short embed for `/brief <topic>` and search lists: titles, summary openings, top figures."""
    languages = _languages(settings)
    primary = "en" if "en" in languages else languages[0]
    title = trim(_first(brief.title, [primary, *languages]), min(TITLE_LIMIT, 150)) or brief.id
    embed = discord.Embed(title=title, url=brief.primary_url,
                          colour=topic_colour(brief.topics[0] if brief.topics else None),
                          timestamp=brief.published or brief.created)
    figures = ", ".join(f.text for f in brief.figures[:3])
    mode = "extractive · 摘录" if brief.mode == "extractive" else "AI · 人工智能摘要"
    footer = trim(f"{', '.join(_feeds_of(brief))} · {mode}", 120)
    embed.set_footer(text=footer)
    budget = limit - len(title) - len(footer)
    lines: list[str] = []
    for lang in languages:
        other_title = brief.title.get(lang, "").strip()
        summary = brief.summary.get(lang, "").strip()
        if lang != primary and other_title and other_title != title:
            lines.append(f"**{trim(other_title, 80)}**")
        if summary:
            lines.append(summary)
    figure_line = trim(f"**Key figures / 关键数字:** {figures}", 200) if figures else ""
    text = "\n".join(_fair_share(lines, budget - len(figure_line) - len(lines)))
    if figure_line:
        text = f"{text}\n{figure_line}" if text else figure_line
    embed.description = trim(text, max(1, budget)) or None
    return fit_embed(embed, total_limit=limit)


# --------------------------------------------------------------------------- digest rendering

# A section embed's description stays well under 4,096 so that a few fit in one 6,000-character message.
DIGEST_SECTION_CHARS = 2500


def _digest_item(number: int, brief: Brief, languages: Sequence[str]) -> str:
    """One story: one line per language (shared wording with the other renderers) and one link."""
    lines: list[str] = []
    for i, lang in enumerate(languages):
        text = trim(story_line(brief, lang, with_link=False), 300)
        lines.append(f"**{number}.** {text}" if i == 0 else f"\u3000{text}")
    if brief.primary_url:
        lines[0] += f" · [source / 原文]({brief.primary_url})"
    # Capped so an item always fits in one embed: items are never split across embeds or messages.
    return "\n".join(lines)


def render_digest(digest: Digest, settings: Settings | None = None) -> list[list[discord.Embed]]:
    """Messages in order (each a list of embeds). Splits between items, never inside one."""
    languages = digest_languages(digest)
    titles = list(dict.fromkeys(digest.title[lang] for lang in languages if digest.title.get(lang)))
    header = discord.Embed(title=trim(" / ".join(titles) or digest.name, TITLE_LIMIT),
                           timestamp=digest.window_end, colour=discord.Colour(TOPIC_PALETTE[-1]))
    head: list[str] = [f"⚠️ {line}" for line in feed_health_lines(digest)]
    if head:
        head.append("")
    if digest.overview:
        head += [digest.overview[lang].strip() for lang in languages if digest.overview.get(lang)]
        head.append("")
    if digest.empty:
        head += [nothing_new_line(digest, lang) for lang in languages]
    else:
        head += ["**" + " / ".join(section_headline(s, lang) for lang in languages) + "**"
                 for s in digest.sections]
    head += [line for lang in languages for line in digest_held_lines(digest, lang)]
    header.description = trim("\n".join(head).strip(), DESCRIPTION_LIMIT) or None
    header.set_footer(text=trim(f"{window_line(digest)} · {digest.name}", FOOTER_LIMIT))
    embeds = [header]

    for section in digest.sections:
        if not section.briefs:
            continue
        heading = " / ".join(section_headline(section, lang) for lang in languages)
        colour = topic_colour(section.topic)
        chunks: list[list[str]] = [[]]
        for number, brief in enumerate(section.briefs, start=1):
            item = _digest_item(number, brief, languages)
            current = chunks[-1]
            if current and len("\n\n".join(current)) + 2 + len(item) > DIGEST_SECTION_CHARS:
                chunks.append([])
            chunks[-1].append(item)
        for part, items in enumerate(chunks, start=1):
            suffix = "" if part == 1 else f" ({part})"
            embeds.append(discord.Embed(title=trim(heading, TITLE_LIMIT - len(suffix)) + suffix,
                                        description="\n\n".join(items), colour=colour))
    return pack_embeds(embeds)


def render_notice_embed(notice: Notice, settings: Settings | None = None) -> discord.Embed:
    """The flood guard's summary: the count and topics per language, then the top headlines as links."""
    languages = _languages(settings)
    label = settings.topic_label if settings else (lambda topic, lang: topic)
    lines = notice_lines(notice, languages, label, lambda text: f"**{text}**")
    headlines = [f"• {_link(trim(h.title, 200), h.url)}" for h in notice.headlines]
    if notice.count > len(notice.headlines):
        headlines.append(f"… +{notice.count - len(notice.headlines)}")
    embed = discord.Embed(title=trim(lines[0], TITLE_LIMIT), colour=topic_colour(notice.topics[0] if notice.topics
                                                                                 else None),
                          description=trim("\n".join(lines[1:] + headlines), DESCRIPTION_LIMIT) or None,
                          timestamp=notice.created)
    embed.set_footer(text=trim(notice.feed, FOOTER_LIMIT))
    return fit_embed(embed)


# Red while an incident is open, green once it is resolved.
ALERT_COLOURS = {"open": 0xE74C3C, "resolved": 0x2ECC71}


def render_alert_embed(alert: Alert, settings: Settings | None = None) -> discord.Embed:
    """An incident or its recovery: the headline per language, then the detail."""
    languages = _languages(settings)
    lines = [alert_headline(alert, lang) for lang in languages]
    detail = alert_detail(alert)
    title = " / ".join(dict.fromkeys(alert_label(alert, lang) for lang in languages))
    embed = discord.Embed(title=trim(title, TITLE_LIMIT),
                          colour=discord.Colour(ALERT_COLOURS[alert.phase]),
                          description=trim("\n".join(lines + ([detail] if detail else [])), DESCRIPTION_LIMIT),
                          timestamp=alert.at)
    embed.set_footer(text=trim(f"briefbot · {alert.kind}", FOOTER_LIMIT))
    return fit_embed(embed)


def render_follow_up_embed(follow_up: FollowUp, settings: Settings | None = None,
                           quote_parent: bool = False) -> discord.Embed:
    """A later source of a posted story: who reported it, the linked headline, the figures it adds and
    the text it gave the story in a language that had none. `quote_parent`: it goes out as a message
    of its own (no reply), so it quotes the story's title."""
    brief, source = follow_up.brief, follow_up.source
    lines = [f"> {trim(_first(brief.title, _languages(settings)), 300)}"] if quote_parent else []
    lines.append(_link(trim(source.title or source.feed, 300), source.url))
    if follow_up.figures:
        lines.append(follow_up.figures_text())
    for filled in follow_up.filled_texts():
        lines += [f"**{filled.heading}: {trim(filled.title, 300)}**", filled.summary]
    embed = discord.Embed(title=trim(follow_up.headline(), TITLE_LIMIT),
                          colour=topic_colour(brief.topics[0] if brief.topics else None),
                          description=trim("\n".join(lines), DESCRIPTION_LIMIT), timestamp=source.published)
    embed.set_footer(text=trim(f"{source.feed} · {brief.id}", FOOTER_LIMIT))
    return fit_embed(embed)
