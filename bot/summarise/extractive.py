"""The offline brief: verbatim lead sentences plus key figures, clearly marked as extractive.

Everything in it is copied from the source, so every number stands in the source by
construction. The language the article is not in gets the topic labels and the figures
with bilingual labels, and says plainly that a full translation needs an LLM.
"""

from __future__ import annotations

import re

from bot.config import Settings
from bot.analyse.numbers import extract_figures
from bot.models import MAX_FIGURES, Figure
from bot.summarise import Article
from bot.summarise.injection import advises_readers, may_advise
from bot.analyse.text import detect_language, split_sentences

MAX_LEAD_SENTENCES = 3
MAX_SUMMARY_CHARS = {"en": 480, "zh": 200}

NOTICE = {
    "en": "Extractive brief — full English translation needs an LLM (set OPENAI_API_KEY).",
    "zh": "摘录模式——完整中文翻译需要配置大模型（设置 OPENAI_API_KEY）。",
}
# With an LLM configured, in a language where nothing the model wrote held up against the source:
# the stand-in's closing line, and the note under a summary copied from the article instead.
HELD_BACK = {
    "en": "English summary held back: the model's did not hold up against the source.",
    "zh": "中文摘要未采用：模型生成的内容与原文核对未通过。",
}
COPIED_NOTE = {
    "en": "Summary copied from the article: the model's did not hold up against the source.",
    "zh": "摘要摘自原文：模型生成的摘要与原文核对未通过。",
}
UNTRANSLATED = {
    "en": "{labels}: Chinese-language report (untranslated)",
    "zh": "{labels}：英文报道（未翻译）",
}
KEY_FIGURES = {"en": "Key figures: ", "zh": "关键数字："}
SEPARATOR = {"en": "; ", "zh": "；"}
MAX_TITLE_CHARS = {"en": 160, "zh": 60}

# Tags a site puts before its headlines ("原创 …", "【独家】…"): labels of the page, not the news.
_TAG_WORDS = "原创|独家|转载|首发|快讯|重磅|突发|热点|深度|推荐|置顶|视频|图文"
_TITLE_TAG_RE = re.compile(rf"^(?:\s*(?:[【\[〔［(（]\s*(?:{_TAG_WORDS})\s*[】\]〕］)）]|(?:{_TAG_WORDS})(?:\s+|\s*[:：|｜丨·]\s*)))+")


def headline(title: str) -> str:
    """The title without the source site's tags at its start; unchanged when it is nothing but tags."""
    return _TITLE_TAG_RE.sub("", title).strip() or title.strip()


def _is_heading(sentence: str, lang: str) -> bool:
    """Section headings ("Rare Earth", "一、谈判进展") read badly as summary sentences."""
    if sentence.endswith((".", "!", "?", "。", "！", "？", "…", "\"", "”")):
        return False
    return len(sentence.split()) < 6 if lang == "en" else len(sentence) < 16


def lead_sentences(text: str, lang: str, keyword_hits=None, figure_texts: list[str] | None = None) -> list[str]:
    """Up to three sentences: the lead, then the sentences that carry topic words or figures (none
    that advises readers to trade).

    Kept in article order so the summary reads naturally.
    """
    # A brief quotes the news, never advice to its readers ("Investors should buy now").
    check_advice = may_advise(text)
    sentences = [s for s in split_sentences(text, lang)
                 if not _is_heading(s, lang) and not (check_advice and advises_readers(s))]
    if not sentences:
        return []
    budget = MAX_SUMMARY_CHARS.get(lang, 480)
    figure_texts = figure_texts or []

    def weight(i: int, s: str) -> float:
        w = 3.0 if i == 0 else 1.0 / (1 + i * 0.2)
        if keyword_hits:
            w += min(keyword_hits(s), 3)
        w += 1.5 * sum(1 for f in figure_texts if f in s)
        return w

    ranked = sorted(range(len(sentences)), key=lambda i: -weight(i, sentences[i]))
    chosen: list[int] = []
    used = 0
    for i in ranked:
        if len(chosen) == MAX_LEAD_SENTENCES:
            break
        length = len(sentences[i])
        if chosen and used + length > budget:
            continue
        chosen.append(i)
        used += length
    picked = [sentences[i] for i in sorted(chosen)]
    if len(picked) == 1 and len(picked[0]) > budget:
        # A single run-on "sentence" (no punctuation in the feed text): cut at a word boundary.
        cut = picked[0][:budget].rsplit(" ", 1)[0] if lang == "en" else picked[0][:budget]
        picked = [cut.rstrip(",;:，；：") + "…"]
    return picked


def _first_sentence(text: str, lang: str) -> str:
    """The first sentence of `text` written in `lang` (a heading only when nothing else is), cut to a title's length."""
    sentences = [s.strip() for s in split_sentences(text, lang) if detect_language(s) == lang]
    first = next((s for s in sentences if not _is_heading(s, lang)), sentences[0] if sentences else "")
    budget = MAX_TITLE_CHARS.get(lang, 160)
    if len(first) <= budget:
        return first
    cut = first[:budget].rsplit(" ", 1)[0] if lang == "en" else first[:budget]
    return cut.rstrip(",;:，；：") + "…"


def _titles(article: Article, languages: list[str]) -> dict[str, str]:
    """The headline in each language it can be copied in: the page's title in its own language, and
    for the article's language the first sentence of the text when the title is in the other one
    (Chinese portals carrying English digests title them in Chinese)."""
    title = headline(article.title)
    title_lang = detect_language(title) if title else article.lang
    titles = {title_lang: title} if title_lang in languages else {}
    if article.lang in languages and title_lang != article.lang:
        titles[article.lang] = _first_sentence(article.text, article.lang) or title
    return titles


def _figure_line(figures: list[Figure], lang: str) -> str:
    parts = []
    for f in figures:
        label = f.label.get(lang) or ""
        parts.append(f"{f.text} ({label})" if lang == "en" and label else
                     f"{f.text}（{label}）" if label else f.text)
    return KEY_FIGURES[lang] + SEPARATOR[lang].join(parts) if parts else ""


def extractive_content(article: Article, settings: Settings, keyword_hits=None, max_figures: int = MAX_FIGURES,
                       numbers=None, figures: list[Figure] | None = None, notice: dict[str, str] = NOTICE
                       ) -> tuple[dict[str, str], dict[str, str], list[Figure]]:
    """(title, summary, figures) per configured language, all copied or labelled, never invented.

    `numbers`, when given, is `find_numbers(article.text)` already computed by the caller; `figures`,
    `extract_figures(article.text, article.lang, max_figures)`. `notice` closes the summary of a
    language the article is not written in."""
    if figures is None:
        figures = extract_figures(article.text, article.lang, max_figures=max_figures, numbers=numbers)
    if any(f.unit for f in figures):
        # A bare number ("Group 1", "3") says little without its unit once real figures exist.
        figures = [f for f in figures if f.unit]
    lead = lead_sentences(article.text, article.lang, keyword_hits, [f.text for f in figures])
    joiner = "" if article.lang == "zh" else " "
    copied = _titles(article, list(settings.languages))
    title: dict[str, str] = {}
    summary: dict[str, str] = {}
    for lang in settings.languages:
        if lang == article.lang:
            title[lang] = copied.get(lang) or article.title
            summary[lang] = joiner.join(lead) or title[lang]
        else:
            labels = ("、" if lang == "zh" else ", ").join(settings.topic_label(t, lang) for t in article.topics)
            title[lang] = copied.get(lang) or UNTRANSLATED[lang].format(labels=labels)
            figure_line = _figure_line(figures, lang)
            summary[lang] = (figure_line + ("。" if lang == "zh" else ". ") if figure_line else "") + notice[lang]
    return title, summary, figures
