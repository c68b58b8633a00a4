"""LLM briefs through any OpenAI-compatible server, with a grounding guard in code.

The model is asked for a strict JSON reply in the shape its server takes (dialect.py: strict
`json_schema`, `json_object` with the schema, or plain JSON by instruction, learnt per server and
model from the server's refusals). Nothing it says is trusted: figures must be
copied verbatim from the article (their value and unit come from our own parser), and every
number in a title or summary must stand in the source. Whatever fails is retried once with
feedback, then cut out; if nothing useful is left the caller posts the extractive brief.

An LLM outage never blocks the bot: transient errors are retried with backoff, then `None`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from typing import Any, Awaitable, Callable

from pydantic import BaseModel, ValidationError

from bot import metrics
from bot.config import Env, Settings
from bot.analyse.numbers import find_numbers
from bot.models import MAX_FIGURES, Figure
from bot.store import Store
from bot.store.llm import ESTIMATED
from bot.summarise import Article
from bot.summarise.article import budget_text
from bot.summarise.grounding import (
    CHECKS_VERSION,
    check_brief,
    drop_failing_sentences,
    figure_in_source,
    figure_is_span,
    problem_kind,
    repair_feedback,
    unsupported_numbers,
)
from bot.summarise.calls import (
    MAX_RETRY_AFTER_SECONDS,
    RETRYABLE_STATUS,
    CallFailed,
    Completion,
    DailyBudget,
    Refused,
    RequestRateLimiter,
    error_message,
    read_completion,
    retry_after_seconds,
)
from bot.summarise.dialect import Dialect, build_request, next_dialect, refused_part, server_key
from bot.summarise.prompts import Prompt, PromptError, load_prompt
from bot.summarise.llm_brief import LLMBrief, cache_key, content_hash
from bot.summarise.replies import (
    ReplyProblem,
    brief_reply_model,
    fence_article,
    has_words,
    neutralise_mentions,
    parse_reply,
    reply_example,
    strict_json_schema,
)

log = logging.getLogger("briefbot.llm")

BRIEF_PROMPT = "brief"
MAX_SUMMARY_SENTENCES = 3
LANGUAGE_NAMES = {"en": "English", "zh": "Simplified Chinese"}


# --------------------------------------------------------------------------- summariser

class LLMSummariser:
    def __init__(self, settings: Settings, env: Env, store: Store, *,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 backoff_base: float = 1.0, max_backoff: float = 30.0,
                 max_retry_after: float = MAX_RETRY_AFTER_SECONDS):
        self.settings, self.env, self.store = settings, env, store
        self.model = env.model
        self.languages = list(settings.languages)
        self._sleep = sleep
        self._backoff_base, self._max_backoff, self._max_retry_after = backoff_base, max_backoff, max_retry_after
        self._limiter = RequestRateLimiter(settings.llm.requests_per_minute, sleep)
        # The request shape this (server, model) takes, as learnt before (here or by an earlier run).
        self._server = server_key(env.openai_base_url)
        self._dialect = Dialect.from_json(store.llm_dialect_get(self._server, self.model))
        self._dialect_settled = False  # until a request in this shape succeeds, requests go one at a time
        self._dialect_lock = asyncio.Lock()
        self._budget = DailyBudget(settings.llm.daily_token_budget, store)
        import openai  # ~14 MiB resident: loaded only by a bot that has an LLM configured

        self.client = openai.AsyncOpenAI(
            api_key=env.openai_api_key or "not-needed",  # local servers (Ollama, vLLM) need no key
            base_url=env.openai_base_url,
            timeout=settings.llm.timeout.total_seconds(),
            max_retries=0,  # retries are ours: Retry-After, budget and the rate limit must see each try
        )

    async def aclose(self) -> None:
        await self.client.close()

    # ------------------------------------------------------------------ public API
    async def summarise(self, article: Article) -> LLMBrief | None:
        """A grounded bilingual brief, or None: the caller then posts the extractive brief. A language
        listed in the brief's `missing` has no text: the caller supplies it."""
        try:
            prompt = load_prompt(BRIEF_PROMPT, self.settings)
        except PromptError as exc:
            log.error("LLM brief for %s skipped: %s", article.url, exc)
            return None
        key = cache_key("brief", content_hash(article.title, article.text), self.model, prompt.version,
                         self.languages, self.settings.llm.max_input_tokens, CHECKS_VERSION)
        cached = self.store.cache_get(key)
        if cached is not None:
            metrics.LLM_CALLS.labels("brief", "cache_hit").inc()
            if cached.get("kind") == "brief":
                log.debug("LLM brief for %s from cache", article.url)
                return LLMBrief.from_cache(cached["brief"])
            log.info("LLM brief for %s: cached rejection (%s), using the extractive brief",
                     article.url, cached.get("reason", "unusable"))
            return None
        try:
            brief = await self._summarise_uncached(article, prompt)
        except CallFailed as exc:
            # Transient (outage, budget): not cached, so the content is tried again later.
            log.warning("LLM brief for %s not made (%s): %s", article.url, exc.outcome, exc)
            self._note_failure(exc)
            return None
        except PromptError as exc:
            log.error("LLM brief for %s skipped: %s", article.url, exc)
            return None
        if isinstance(brief, LLMBrief):
            self.store.cache_put(key, {"kind": "brief", "brief": brief.to_cache()})
            return brief
        # A definitive rejection (unusable reply, grounding left nothing) is cached too:
        # the same content must not cost tokens again.
        self.store.cache_put(key, {"kind": "rejected", "reason": brief})
        return None

    async def complete_json(self, prompt_name: str, variables: dict, schema_model: type[BaseModel],
                            purpose: str) -> BaseModel | None:
        """Render `prompts/<prompt_name>.md`, ask for JSON matching `schema_model`, validate it.

        Same client, retries, rate limit, budget, usage accounting and reply cleaning as briefs;
        the caller does its own grounding. Returns None when no valid reply could be had.
        """
        try:
            prompt = load_prompt(prompt_name, self.settings)
            rendered = prompt.render(**variables)
        except PromptError as exc:
            log.error("LLM %s skipped: %s", purpose, exc)
            return None
        schema = strict_json_schema(schema_model)
        key = cache_key(purpose, prompt.name, prompt.version, self.model, rendered.system, rendered.user, schema)
        cached = self.store.cache_get(key)
        if cached is not None and cached.get("kind") == "json":
            try:
                metrics.LLM_CALLS.labels(purpose, "cache_hit").inc()
                return schema_model.model_validate(cached["reply"])
            except ValidationError:
                pass  # the caller's model changed since: ask again
        messages = [{"role": "system", "content": rendered.system}, {"role": "user", "content": rendered.user}]
        try:
            got = await self._ask_json(messages, schema_model, purpose, context=f"{purpose} ({prompt.name})")
        except CallFailed as exc:
            log.warning("LLM %s not made (%s): %s", purpose, exc.outcome, exc)
            self._note_failure(exc)
            return None
        if got is None:
            return None
        reply, _content = got
        self.store.cache_put(key, {"kind": "json", "reply": reply.model_dump(mode="json")})
        return reply

    def _note_failure(self, exc: CallFailed) -> None:
        """An outage, for the alert check (a spent budget is read from the usage ledger instead)."""
        if exc.outcome != "budget_exhausted":
            self.store.note_llm_failure(f"{exc.outcome}: {exc}")

    # ------------------------------------------------------------------ brief flow
    def _prompt_variables(self, article: Article) -> dict[str, str]:
        topics = article.topics or list(self.settings.topics)
        labels = ", ".join(
            " / ".join(dict.fromkeys(self.settings.topic_label(t, lang) for lang in self.languages))
            for t in topics)
        text = budget_text(article.text, self.settings.llm.max_input_tokens)
        return {
            "title": fence_article(article.title.strip()),
            "article_text": fence_article(text.strip()),
            "article_lang": f"{article.lang} ({LANGUAGE_NAMES.get(article.lang, article.lang)})",
            "topic_labels": labels,
            "languages": ", ".join(f"{lang} ({LANGUAGE_NAMES.get(lang, lang)})" for lang in self.languages),
            "reply_example": reply_example(self.languages),
            "max_figures": str(MAX_FIGURES),
            "max_sentences": str(MAX_SUMMARY_SENTENCES),
        }

    def _check_brief_shape(self, reply: BaseModel) -> list[str]:
        if not reply.relevant:
            return []
        problems = []
        for part in ("title", "summary"):
            texts = getattr(reply, part)
            empty = [lang for lang in self.languages if not has_words(getattr(texts, lang))]
            if empty:
                problems.append(f"{part} is empty (no words) for {', '.join(empty)}")
        return problems

    async def _summarise_uncached(self, article: Article, prompt: Prompt) -> LLMBrief | str:
        """The brief, or a short reason string for a definitive rejection; raises CallFailed."""
        rendered = prompt.render(**self._prompt_variables(article))
        messages = [{"role": "system", "content": rendered.system}, {"role": "user", "content": rendered.user}]
        schema_model = brief_reply_model(tuple(self.languages))
        context = article.url
        got = await self._ask_json(messages, schema_model, "brief", check=self._check_brief_shape, context=context)
        if got is None:
            return "unusable reply"
        reply, content = got
        if not reply.relevant:
            log.info("LLM says %s is not about %s: dropped as a false keyword match",
                     article.url, ", ".join(article.topics) or "the topics")
            empty = {lang: "" for lang in self.languages}
            return LLMBrief(relevant=False, title=dict(empty), summary=dict(empty), notes=["model: not relevant"])

        source = f"{article.title}\n\n{article.text}"
        brief, unsupported = self._ground(reply, article, source)
        if not unsupported:
            return brief

        feedback = self._grounding_feedback(unsupported)
        retry_messages = messages + [{"role": "assistant", "content": content},
                                     {"role": "user", "content": feedback}]
        try:
            got = await self._ask_json(retry_messages, schema_model, "brief", check=self._check_brief_shape,
                                       context=context)
        except CallFailed as exc:
            log.warning("LLM grounding retry for %s failed (%s); trimming the first reply", article.url, exc.outcome)
            got = None
        if got is not None:
            retry_reply, _ = got
            if retry_reply.relevant:
                retry_brief, retry_unsupported = self._ground(retry_reply, article, source)
                retry_brief.notes = brief.notes + retry_brief.notes
                brief, unsupported = retry_brief, retry_unsupported
                if not unsupported:
                    brief.notes.append("grounding: fixed after one retry")
                    return brief
        return self._drop_unsupported(brief, unsupported, source, article)

    def _ground(self, reply: BaseModel, article: Article, source: str) -> tuple[LLMBrief, dict[str, list[str]]]:
        """Keep only figures copied from the source; list unsupported numbers per title/summary field."""

        notes: list[str] = []
        figures: list[Figure] = []
        seen: set[str] = set()
        for item in reply.figures:
            text = item.text.strip()
            if not text:
                continue
            if not figure_in_source(text, source):
                self._reject(article, "figure", f"figure {text!r} is not in the article", notes)
                continue
            if not figure_is_span(text):
                self._reject(article, "figure", f"figure {text!r} is a sentence, not a short figure", notes)
                continue
            label = {lang: neutralise_mentions(getattr(item.label, lang, "") or "") for lang in self.languages}
            invented = sorted({n for lang_label in label.values() for n in unsupported_numbers(lang_label, source)})
            if invented:
                self._reject(article, "figure_label",
                             f"figure {text!r} label has numbers not in the article: {', '.join(invented)}", notes)
                continue
            figure = self._figure_from_text(text, article.lang, label)
            if figure is None:
                self._reject(article, "figure", f"figure {text!r} holds no number our parser reads", notes)
                continue
            norm = re.sub(r"\s+", "", text)
            if norm in seen:
                continue
            seen.add(norm)
            figures.append(figure)
            if len(figures) == MAX_FIGURES:
                break

        title = {lang: neutralise_mentions(getattr(reply.title, lang)) for lang in self.languages}
        summary = {lang: neutralise_mentions(getattr(reply.summary, lang)) for lang in self.languages}
        fields = {f"title.{lang}": title[lang] for lang in self.languages}
        fields.update({f"summary.{lang}": summary[lang] for lang in self.languages})
        report = check_brief(fields, source)
        unsupported = {name: list(nums) for name, nums in self._report_unsupported(report).items() if nums}
        for name, problems in unsupported.items():
            for problem in problems:
                self._reject(article, problem_kind(problem), f"{name}: {problem}", notes)
        return LLMBrief(relevant=True, title=title, summary=summary, figures=figures, notes=notes), unsupported

    @staticmethod
    def _report_unsupported(report: Any) -> dict[str, list[str]]:
        if report.ok:
            return {}
        return dict(report.unsupported)

    @staticmethod
    def _figure_from_text(text: str, lang: str, label: dict[str, str]) -> Figure | None:
        """Value and unit from our own parser, never from the model."""

        numbers = find_numbers(text)
        if not numbers:
            return None
        first = numbers[0]
        value = getattr(first, "value", None)
        unit = getattr(first, "unit", "") or ""
        return Figure(text=text, value=value, unit=unit, label=label)

    @staticmethod
    def _grounding_feedback(unsupported: dict[str, list[str]]) -> str:
        return repair_feedback(unsupported)

    def _drop_unsupported(self, brief: LLMBrief, unsupported: dict[str, list[str]], source: str,
                          article: Article) -> LLMBrief | str:

        for name in unsupported:
            part, _, lang = name.partition(".")
            texts = brief.title if part == "title" else brief.summary
            kept, removed = drop_failing_sentences(texts.get(lang, ""), source, lang)
            for sentence in removed:
                self._reject(article, "sentence", f"{name}: removed sentence {sentence!r}", brief.notes)
            texts[lang] = kept.strip()
        empty = [f"{part}.{lang}" for part in ("title", "summary") for lang in self.languages
                 if not (brief.title if part == "title" else brief.summary).get(lang, "").strip()]
        lost = [lang for lang in self.languages if f"title.{lang}" in empty or f"summary.{lang}" in empty]
        if len(lost) == len(self.languages):
            self._reject(article, "brief", f"nothing grounded left in {', '.join(empty)}; extractive brief used",
                         brief.notes)
            return "grounding left nothing in " + ", ".join(empty)
        if lost:
            # The languages that held up are worth posting: the caller fills the lost ones from the article.
            self._reject(article, "brief", f"nothing grounded left in {', '.join(empty)}; the article's own "
                                           f"text stands in for {', '.join(lost)}", brief.notes)
            for lang in lost:
                brief.title[lang] = brief.summary[lang] = ""
            brief.missing = lost
        return brief

    def _reject(self, article: Article, what: str, message: str, notes: list[str]) -> None:
        metrics.GROUNDING_REJECTIONS.labels(what).inc()
        log.warning("grounding rejected for %s: %s", article.url, message)
        notes.append(f"grounding: {message}")

    # ------------------------------------------------------------------ JSON round trip
    async def _ask_json(self, messages: list[dict], schema_model: type[BaseModel], purpose: str,
                        check: Callable[[BaseModel], list[str]] | None = None,
                        context: str = "") -> tuple[BaseModel, str] | None:
        """One reply parsed and validated, with one repair retry; None if still unusable."""
        for attempt in range(2):
            completion = await self._complete(messages, schema_model, purpose)
            try:
                try:
                    reply = parse_reply(completion.content, schema_model)
                except ReplyProblem:
                    if completion.finish_reason == "length":
                        raise ReplyProblem("the reply was cut off (too long); keep it shorter") from None
                    raise
                problems = check(reply) if check else []
                if problems:
                    raise ReplyProblem("; ".join(problems))
                return reply, completion.content or ""
            except ReplyProblem as exc:
                metrics.LLM_CALLS.labels(purpose, "invalid_reply").inc()
                if attempt == 1:
                    log.warning("LLM %s for %s unusable after a repair retry: %s", purpose, context, exc)
                    return None
                log.info("LLM %s for %s: reply unusable (%s), asking once more", purpose, context, exc)
                messages = messages + [
                    {"role": "assistant", "content": (completion.content or "").strip()[:6000] or "(empty reply)"},
                    {"role": "user", "content": (
                        f"Your previous reply could not be used: {exc}. Reply again with only one JSON object "
                        f"exactly in the required shape (keys: {', '.join(schema_model.model_fields)}), "
                        "with no prose, no code fence and no reasoning.")},
                ]
        return None

    async def _complete(self, messages: list[dict], schema_model: type[BaseModel], purpose: str) -> Completion:
        """One completion in the learnt request shape; a refused shape gives way to the next one at once."""
        if self._dialect_settled:
            return await self._complete_in_dialect(messages, schema_model, purpose)
        async with self._dialect_lock:  # concurrent briefs must not each spend a refusal learning it
            return await self._complete_in_dialect(messages, schema_model, purpose)

    async def _complete_in_dialect(self, messages: list[dict], schema_model: type[BaseModel],
                                   purpose: str) -> Completion:
        import openai  # loaded with the client in __init__
        dialect, tentative = self._dialect, False
        schema = strict_json_schema(schema_model)
        while True:
            kwargs = build_request(dialect, self.model, messages, schema_model.__name__, schema,
                                   self.settings.llm.temperature)
            try:
                completion = await self._create_with_retries(kwargs, purpose)
            except Refused as exc:
                following = next_dialect(dialect, exc.part, exc.message)
                if following is None:
                    raise CallFailed("refused", f"server refused the request: {exc.message[:300]}") from None
                self._adopt(following, f"refused {exc.part} (HTTP {exc.status}: {exc.message[:160]})")
                dialect = following
                continue
            except openai.BadRequestError as exc:
                if dialect.mode == "plain" or tentative:
                    raise CallFailed("bad_request", f"server rejected the request: {error_message(exc)[:300]}") \
                        from None
                # A 400 that names nothing may still be about response_format: one try without it,
                # adopted only if it works.
                dialect, tentative = Dialect(mode="plain", token_param=dialect.token_param,
                                             temperature=dialect.temperature), True
                continue
            if tentative:
                self._adopt(dialect, "a request with response_format got HTTP 400, one without it worked")
            self._dialect_settled = True
            return completion

    def _adopt(self, dialect: Dialect, reason: str) -> None:
        """Use `dialect` from now on, here and (through the store) after a restart: one log line."""
        before, self._dialect = self._dialect, dialect
        if dialect != before:
            log.info("LLM server %s, model %s: %s; requests now %s (were %s)", self._server, self.model, reason,
                     dialect.describe(), before.describe())
            self.store.llm_dialect_put(self._server, self.model, dialect.to_json())

    async def _create_with_retries(self, kwargs: dict, purpose: str) -> Completion:
        import openai  # loaded with the client in __init__
        retries = self.settings.llm.max_retries
        attempt = 0
        while True:
            self._budget.check(purpose)
            await self._limiter.acquire()
            started = time.monotonic()
            wait: float | None = None
            try:
                response = await self.client.chat.completions.create(**kwargs)
            except openai.APIStatusError as exc:
                status = exc.status_code
                part = refused_part(status, error_message(exc), kwargs)
                if part is not None:  # the server's verdict on the request's shape: no retry can change it
                    metrics.LLM_CALLS.labels(purpose, "refused").inc()
                    raise Refused(part, status, error_message(exc)) from None
                if isinstance(exc, openai.BadRequestError):
                    metrics.LLM_CALLS.labels(purpose, "bad_request").inc()
                    raise
                outcome = "rate_limited" if status == 429 else f"http_{status}"
                metrics.LLM_CALLS.labels(purpose, outcome).inc()
                if status not in RETRYABLE_STATUS and status < 500:
                    raise CallFailed(outcome, f"LLM server answered HTTP {status}: {error_message(exc)[:300]}") \
                        from None
                wait = retry_after_seconds(exc.response)
                reason = f"HTTP {status}"
            except openai.APITimeoutError:
                metrics.LLM_CALLS.labels(purpose, "timeout").inc()
                outcome, reason = "timeout", f"no reply within {self.settings.llm.timeout.total_seconds():g}s"
            except openai.APIConnectionError as exc:
                metrics.LLM_CALLS.labels(purpose, "connection_error").inc()
                outcome, reason = "connection_error", f"connection failed: {exc}"
            else:
                latency = time.monotonic() - started
                return self._account(response, kwargs, purpose, latency)
            if attempt >= retries:
                raise CallFailed(outcome, f"{reason}; gave up after {attempt + 1} attempt(s)")
            if wait is None:
                wait = min(self._max_backoff, self._backoff_base * (2 ** attempt)) * (1 + random.random() * 0.25)
            elif wait > self._max_retry_after:
                raise CallFailed(outcome, f"{reason} with Retry-After {wait:g}s; not waiting that long")
            log.info("LLM %s: %s, retrying in %.2fs (%d/%d)", purpose, reason, wait, attempt + 1, retries)
            await self._sleep(wait)
            attempt += 1

    def _account(self, response: Any, kwargs: dict, purpose: str, latency: float) -> Completion:
        completion = read_completion(response, kwargs["messages"])
        metrics.LLM_CALLS.labels(purpose, "ok").inc()
        metrics.LLM_TOKENS.labels("input").inc(completion.prompt_tokens)
        metrics.LLM_TOKENS.labels("output").inc(completion.completion_tokens)
        metrics.LLM_LATENCY.observe(latency)
        self.store.record_llm_usage(self.model, purpose, completion.prompt_tokens, completion.completion_tokens,
                                    latency * 1000.0, ESTIMATED if completion.estimated else "ok")
        return completion
