"""A new story's brief: extractive (copied from the item), or summarised by the LLM when one is
configured, with the extractive one as the fallback when the model gives nothing usable."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from bot.analyse.text import defang_links
from bot.analyse.topics import TopicMatcher
from bot.config import Settings
from bot.ingest.fetch import Fetcher
from bot.models import Brief, Figure, Source, SourceText, new_brief_id
from bot.summarise import Article
from bot.summarise.article import enrich_article
from bot.summarise.extractive import COPIED_NOTE, HELD_BACK, extractive_content
from bot.summarise.grounding import figure_in_source
from bot.summarise.injection import PLANTED_NOTE, without_planted
from bot.summarise.llm_brief import LLMBrief

if TYPE_CHECKING:  # the OpenAI client is loaded only by a bot that has an LLM configured
    from bot.summarise.llm import LLMSummariser

__all__ = ["Briefer", "fill_labels"]

log = logging.getLogger("briefbot.pipeline")


class Briefer:
    def __init__(self, settings: Settings, matcher: TopicMatcher, llm: LLMSummariser | None, fetcher: Fetcher):
        self.settings = settings
        self.matcher = matcher
        self.llm = llm
        self.fetcher = fetcher

    async def new_brief(self, article: Article, item_key: str, source: Source, figures: list[Figure],
                        before_llm: Callable[[], Awaitable[None]]) -> Brief | None:
        """The brief of a new story; None when the LLM judges the item off-topic. `before_llm` runs
        before the LLM is asked (the caller writes its decisions so far: the call yields to other feeds)."""
        settings = self.settings
        mode = "extractive"
        article, planted, (title, summary, figures) = self._extractive(article, figures)
        missing = [lang for lang in settings.languages if lang != article.lang]
        if self.llm is not None:
            await before_llm()
            enriched = await enrich_article(article, self.fetcher, settings.llm.fetch_article_below_chars)
            enriched, planted_in_page = without_planted(enriched)
            planted += [s for s in planted_in_page if s not in planted]
            llm_brief = await self.llm.summarise(enriched)
            if llm_brief is not None and not llm_brief.relevant:
                return None
            if llm_brief is not None:
                mode, missing = "llm", llm_brief.missing
                title, summary = self._model_text(article, llm_brief, figures)
                figures = llm_brief.figures or figures
        # Feed and model text may carry URLs; only the sources may be links in a posted brief.
        title, summary = ({k: defang_links(v) for k, v in d.items()} for d in (title, summary))
        brief = Brief(id=new_brief_id(article.feed, item_key), topics=article.topics, title=title,
                      summary=summary, figures=self.labelled(figures), sources=[source], mode=mode,
                      note=self._planted_note(article, planted),
                      untranslated=[lang for lang in missing if lang != article.lang])
        if mode == "llm" and article.lang in missing:
            brief.add_note(article.lang, COPIED_NOTE[article.lang])
        return brief

    def _model_text(self, article: Article, llm_brief: LLMBrief, figures: list[Figure]
                    ) -> tuple[dict[str, str], dict[str, str]]:
        """The model's title and summary; in a language where none of it held up, the article's own
        (or, in another language, its stand-in saying the model's was held back)."""
        title, summary = dict(llm_brief.title), dict(llm_brief.summary)
        if llm_brief.missing:
            own_title, own_summary, _ = extractive_content(article, self.settings, self.matcher.keyword_hits,
                                                           figures=figures, notice=HELD_BACK)
            for lang in llm_brief.missing:
                title[lang], summary[lang] = own_title[lang], own_summary[lang]
        return title, summary

    def source_text(self, article: Article, figures: list[Figure]) -> SourceText | None:
        """The item's title and summary in its own language as its extractive brief would have them:
        they fill that language in a story that has only a stand-in there. None when the item's
        language is not a brief language."""
        if article.lang not in self.settings.languages:
            return None
        article, planted, (title, summary, _figures) = self._extractive(article, figures)
        lang = article.lang
        return SourceText(lang, defang_links(title[lang]), defang_links(summary[lang]),
                          self._planted_note(article, planted).get(lang, ""))

    def _extractive(self, article: Article, figures: list[Figure]
                    ) -> tuple[Article, list[str], tuple[dict[str, str], dict[str, str], list[Figure]]]:
        """The article without text addressed to an AI, the sentences cut, and its extractive
        (title, summary, figures). That text never reaches a brief, nor its figures."""
        article, planted = without_planted(article)
        if planted:
            figures = [f for f in figures if figure_in_source(f.text, article.text)]
        return article, planted, extractive_content(article, self.settings, self.matcher.keyword_hits,
                                                    figures=figures)

    def _planted_note(self, article: Article, planted: list[str]) -> dict[str, str]:
        if not planted:
            return {}
        log.warning("article %s (%s) contained %d sentence(s) aimed at automated readers, left out of its brief: %r",
                    article.url, article.feed, len(planted), planted[0][:160], extra={"feed": article.feed})
        return {lang: PLANTED_NOTE.get(lang, PLANTED_NOTE["en"]) for lang in self.settings.languages}

    def labelled(self, figures: list[Figure]) -> list[Figure]:
        return [fill_labels(figure, self.settings.languages) for figure in figures]


def fill_labels(figure: Figure, languages: list[str]) -> Figure:
    """Every figure carries a label in every brief language (kind-based when unknown), without live links."""
    label = {k: defang_links(v) for k, v in figure.label.items()}
    fallback = {"en": figure.unit and f"figure ({figure.unit})" or "figure",
                "zh": figure.unit and f"数字（{figure.unit}）" or "数字"}
    for lang in languages:
        if not label.get(lang):
            label[lang] = fallback.get(lang, "figure")
    # Most figures already have every label: keep the object rather than copy it (a cold poll
    # labels thousands of figures).
    return figure if label == figure.label else figure.model_copy(update={"label": label})
