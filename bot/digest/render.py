"""The platform-neutral text of a digest, and its plain-text form.

Every renderer (console, `briefbot digest`, each chat adapter) builds its output from these pieces
and adds only its own markup, so the wording, the languages shown and the "nothing new" line are
the same everywhere.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from bot.digest.clock import aware_utc, hours_text, zone
from bot.models import Brief, Digest, DigestSection, FeedTrouble, Notice


def digest_languages(digest: Digest) -> list[str]:
    """The languages to show, in configured order: the digest was titled in each of them."""
    return list(digest.title) or ["en"]


def digest_titles(digest: Digest) -> list[str]:
    """The digest's titles in language order, duplicates dropped; its name if it has none."""
    languages = digest_languages(digest)
    titles = [digest.title[lang].strip() for lang in languages if (digest.title.get(lang) or "").strip()]
    return list(dict.fromkeys(titles)) or [digest.name]


def window_hours(digest: Digest) -> str:
    return hours_text(aware_utc(digest.window_end) - aware_utc(digest.window_start))


def window_line(digest: Digest) -> str:
    """"2024-03-10 08:00 → 2024-03-11 08:00 (Asia/Shanghai)", in the digest's timezone."""
    tz = zone(digest.timezone)
    start = aware_utc(digest.window_start).astimezone(tz)
    end = aware_utc(digest.window_end).astimezone(tz)
    return f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} ({digest.timezone})"


def nothing_new_line(digest: Digest, lang: str) -> str:
    """What an empty digest says: on-call must still see that the bot is alive (and, when feeds
    fail, the health line says so instead of "running normally")."""
    hours = window_hours(digest)
    if lang == "zh":
        return f"过去{hours}小时无新动态。" if digest.failing_feeds else f"过去{hours}小时无新动态 — briefbot 运行正常。"
    return f"Nothing new in the last {hours} h." if digest.failing_feeds else \
        f"Nothing new in the last {hours} h — briefbot is running."


# Failing feeds a health line names; the rest are counted.
HEALTH_FEEDS_NAMED = 5


def _trouble(trouble: FeedTrouble, lang: str) -> str:
    if lang == "zh":
        return f"{trouble.feed}（已停用）" if trouble.disabled else f"{trouble.feed}（连续失败 {trouble.failures} 次）"
    if trouble.disabled:
        return f"{trouble.feed} (switched off)"
    return f"{trouble.feed} ({trouble.failures} failed fetch{'es' * (trouble.failures != 1)} in a row)"


def feed_health_line(digest: Digest, lang: str) -> str:
    """"Feed health: 2 of 5 feeds failing — a (switched off), b (3 failed fetches in a row)", or ""
    when every feed is healthy."""
    troubles = digest.failing_feeds
    if not troubles:
        return ""
    total = max(digest.feeds_total, len(troubles))
    sep = "、" if lang == "zh" else ", "
    named = sep.join(_trouble(t, lang) for t in troubles[:HEALTH_FEEDS_NAMED])
    more = len(troubles) - HEALTH_FEEDS_NAMED
    if lang == "zh":
        return f"订阅源状态：{total} 个中 {len(troubles)} 个异常 — {named}" + (f" 等（另 {more} 个）" if more > 0 else "")
    return f"Feed health: {len(troubles)} of {total} feeds failing — {named}" + (f" (+{more} more)" if more > 0 else "")


def feed_health_lines(digest: Digest) -> list[str]:
    """The health line in each shown language (none when every feed is healthy)."""
    return [line for lang in digest_languages(digest) if (line := feed_health_line(digest, lang))]


def overview_paragraphs(digest: Digest) -> list[str]:
    """The LLM overview, one paragraph per language in display order (empty without an overview)."""
    overview = digest.overview or {}
    return [text for lang in digest_languages(digest) if (text := (overview.get(lang) or "").strip())]


def section_label(section: DigestSection, lang: str) -> str:
    return section.label.get(lang) or section.topic


def section_headline(section: DigestSection, lang: str) -> str:
    """"Rare earths: 3 stories" / "稀土：3 条": the count covers the whole window, not just those listed."""
    label = section_label(section, lang)
    if lang == "zh":
        return f"{label}：{section.count} 条" if section.count else f"{label}：无新动态"
    if not section.count:
        return f"{label}: nothing new"
    return f"{label}: {section.count} stor{'y' if section.count == 1 else 'ies'}"


def section_headlines(section: DigestSection, languages: list[str]) -> str:
    """The section's headline in every shown language on one line, "Rare earths: 3 stories / 稀土：3 条"."""
    return " / ".join(section_headline(section, lang) for lang in languages)


class StoryParts(NamedTuple):
    """One story in one language, split so a renderer can mark up each part (link the title, bold
    the figure). Empty strings mean the part is absent."""

    title: str
    figure: str  # the key figure's verbatim source text, with its label: "12% (quota cut)"
    sources: str  # "3 sources" when more than one outlet covered it
    url: str


def story_parts(brief: Brief, lang: str) -> StoryParts:
    """Everything comes from the brief itself, so a digest never shows a number of its own."""
    title = brief.title.get(lang) or next(iter(brief.title.values()), brief.id)
    figure = ""
    if brief.figures:
        fig = brief.figures[0]
        label = fig.label.get(lang)
        figure = (f"{fig.text}（{label}）" if label and lang == "zh" else
                  f"{fig.text} ({label})" if label else fig.text)
    outlets = len(brief.sources)
    sources = "" if outlets <= 1 else f"{outlets} 个来源" if lang == "zh" else f"{outlets} sources"
    return StoryParts(title=title, figure=figure, sources=sources, url=brief.primary_url or "")


def story_line(brief: Brief, lang: str, *, with_link: bool = True) -> str:
    """One line of a story in one language: title — key figure (label) · N sources · link."""
    parts = story_parts(brief, lang)
    line = " — ".join(p for p in (parts.title, parts.figure) if p)
    if parts.sources:
        line += f" · {parts.sources}"
    if with_link and parts.url:
        line += f" {parts.url}"
    return line


def held_back_line(count: int, feed: str, topic_labels: list[str], lang: str,
                   emph: Callable[[str], str] = lambda text: text) -> str:
    """"42 more items from feed X matched *Tariffs* — held back, not briefed": the flood guard's words,
    in the notice and in the digest alike. `emph` marks up the topics in the renderer's syntax."""
    if lang == "zh":
        topics = emph("、".join(topic_labels)) if topic_labels else ""
        return f"订阅源 {feed} 另有 {count} 条{'匹配' + topics + '的' if topics else ''}条目被暂缓，未生成简报"
    topics = emph(", ".join(topic_labels)) if topic_labels else ""
    return (f"{count} more item{'s' * (count != 1)} from feed {feed}{' matched ' + topics if topics else ''}"
            " — held back, not briefed")


def notice_lines(notice: Notice, languages: list[str], label: Callable[[str, str], str],
                 emph: Callable[[str], str] = lambda text: text) -> list[str]:
    """The notice's summary, one line per language; `label(topic, lang)` names a topic."""
    return [held_back_line(notice.count, notice.feed, [label(t, lang) for t in notice.topics], lang, emph)
            for lang in languages]


def digest_held_lines(digest: Digest, lang: str) -> list[str]:
    """One "held back" line per feed whose items the flood guard held in the digest's window."""
    labels = {s.topic: section_label(s, lang) for s in digest.sections}
    return [held_back_line(h.count, h.feed, [labels.get(t, t) for t in h.topics], lang) for h in digest.held]


_BOLD, _DIM, _CYAN, _RESET = "\x1b[1m", "\x1b[2m", "\x1b[36m", "\x1b[0m"


def render_digest_text(digest: Digest, color: bool = False) -> str:
    """The console form: title per language, window, overview, per-topic headlines and stories."""

    def style(text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    langs = digest_languages(digest)
    lines: list[str] = []
    for i, lang in enumerate(langs):
        title = digest.title.get(lang, "")
        lines.append(style(f"══ {title} ══", _BOLD) if i == 0 else f"   {title}")
    lines.append(style(window_line(digest), _DIM))
    if digest.overview:
        lines.append("")
        lines.extend(overview_paragraphs(digest))
    held = [line for lang in langs for line in digest_held_lines(digest, lang)]
    health = feed_health_lines(digest)
    if health:
        lines.append("")
        lines.extend(style(line, _BOLD) for line in health)
    if digest.empty:
        lines.append("")
        lines.extend(nothing_new_line(digest, lang) for lang in langs)
        lines.extend(held)
        return "\n".join(lines)
    for section in digest.sections:
        lines.append("")
        lines.append(style(section_headlines(section, langs), _CYAN))
        for n, brief in enumerate(section.briefs, 1):
            indent = " " * (len(str(n)) + 4)
            for j, lang in enumerate(langs):
                lines.append((f"  {n}. " if j == 0 else indent) + story_line(brief, lang, with_link=False))
            if brief.primary_url:
                lines.append(indent + style(brief.primary_url, _DIM))
    if held:
        lines.append("")
        lines.extend(held)
    return "\n".join(lines)
