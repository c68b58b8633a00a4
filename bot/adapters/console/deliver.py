"""The console target: readable briefs on stdout, coloured when it is a terminal.

What is written passes `clean_text` last: feed text reaches a terminal, where a control sequence
would be obeyed (clear the screen, retitle the window), so only our own colour codes survive.
"""

from __future__ import annotations

import sys

from bot.alerts import Alert, render_alert_text
from bot.config import Settings
from bot.delivery.adapter import FollowUp
from bot.digest import notice_lines, render_digest_text
from bot.ingest.clean import clean_text
from bot.models import Brief, Digest, Notice, Target

_COLOURS = {"title": "\033[1;36m", "dim": "\033[2m", "figure": "\033[33m", "mark": "\033[35m", "reset": "\033[0m"}


def render_brief_text(brief: Brief, settings: Settings | None = None, color: bool = False) -> str:
    def c(kind: str, text: str) -> str:
        return f"{_COLOURS[kind]}{text}{_COLOURS['reset']}" if color else text

    topics = ", ".join(settings.topic_label(t, "en") + "/" + settings.topic_label(t, "zh") for t in brief.topics) \
        if settings else ", ".join(brief.topics)
    mode = "LLM brief" if brief.mode == "llm" else "EXTRACTIVE brief (no LLM configured)"
    lines = [c("dim", "─" * 72), c("mark", f"[{topics}] · {mode} · {brief.id}")]
    for lang in brief.title:
        lines.append(c("title", f"{lang.upper()}  {brief.title[lang]}"))
        lines.append(f"    {brief.summary.get(lang, '')}")
    lines.extend(c("mark", f"Note: {note}") for note in brief.note.values())
    if brief.figures:
        lines.append("Key figures / 关键数字:")
        for f in brief.figures:
            label = " / ".join(v for v in (f.label.get("en"), f.label.get("zh")) if v)
            lines.append("  • " + c("figure", f.text) + (f"  — {label}" if label else ""))
    lines.append("Sources / 来源:")
    for s in brief.sources:
        when = s.published.strftime("%Y-%m-%d %H:%M UTC") if s.published else "time unknown"
        lines.append(c("dim", f"  - {s.feed}: {s.title} ({when})"))
        lines.append(c("dim", f"    {s.url}"))
    return clean_text("\n".join(lines), keep_colour=color)


def render_notice_text(notice: Notice, settings: Settings | None = None) -> str:
    languages = list(settings.languages) if settings else ["en", "zh"]
    label = settings.topic_label if settings else (lambda topic, lang: topic)
    lines = ["─" * 72, *notice_lines(notice, languages, label, lambda text: f"*{text}*")]
    lines += [f"  - {h.title}\n    {h.url}" for h in notice.headlines]
    if notice.count > len(notice.headlines):
        lines.append(f"  … and {notice.count - len(notice.headlines)} more (briefbot feeds: held)")
    return "\n".join(lines)


def render_follow_up_text(follow_up: FollowUp) -> str:
    """One line naming the story it follows: `↳ b_… (story title): Also reported by …: headline`, then
    the figures it adds and the text it gave the story in a language that had none."""
    brief, source = follow_up.brief, follow_up.source
    title = next((t for t in brief.title.values() if t), brief.id)
    line = f"↳ {brief.id} ({title}): {follow_up.headline()}: {source.title} <{source.url}>"
    if follow_up.figures:
        line += f" — {follow_up.figures_text()}"
    for filled in follow_up.filled_texts():
        line += f" — {filled.heading}: {filled.title}: {filled.summary}"
    return " ".join(line.split())


class ConsoleDeliverer:
    def __init__(self, stream=None, settings: Settings | None = None):
        self.stream = stream or sys.stdout
        self.settings = settings

    @property
    def _color(self) -> bool:
        return hasattr(self.stream, "isatty") and self.stream.isatty()

    async def deliver_brief(self, target: Target, brief: Brief, *, delivery_key: str, attempt: int) -> str | None:
        self.stream.write(render_brief_text(brief, self.settings, self._color) + "\n")
        self.stream.flush()
        return None

    async def deliver_digest(self, target: Target, digest: Digest, *, delivery_key: str, attempt: int) -> str | None:
        text = render_digest_text(digest, color=self._color)
        self.stream.write(clean_text(text, keep_colour=self._color) + "\n")
        self.stream.flush()
        return None

    async def deliver_notice(self, target: Target, notice: Notice, *, delivery_key: str, attempt: int) -> str | None:
        self.stream.write(clean_text(render_notice_text(notice, self.settings)) + "\n")
        self.stream.flush()
        return None

    async def deliver_alert(self, target: Target, alert: Alert, *, delivery_key: str, attempt: int) -> str | None:
        languages = list(self.settings.languages) if self.settings else ["en", "zh"]
        self.stream.write(clean_text(render_alert_text(alert, languages)) + "\n")
        self.stream.flush()
        return None

    async def deliver_follow_up(self, target: Target, follow_up: FollowUp, *, delivery_key: str,
                                attempt: int) -> str | None:
        self.stream.write(clean_text(render_follow_up_text(follow_up)) + "\n")
        self.stream.flush()
        return None

    async def aclose(self) -> None:
        pass
