"""LLM briefs through any OpenAI-compatible server, with a grounding guard in code.

The model is asked for a strict JSON reply (structured outputs, or plain JSON instructions for
servers that do not honour `response_format`). Nothing it says is trusted: figures must be
copied verbatim from the article (their value and unit come from our own parser), and every
number in a title or summary must stand in the source. Whatever fails is retried once with
feedback, then cut out; if nothing useful is left the caller posts the extractive brief.

An LLM outage never blocks the bot: transient errors are retried with backoff, then `None`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

from pydantic import BaseModel, ValidationError

from bot import metrics
from bot.config import Env, Settings
from bot.analyse.numbers import find_numbers
from bot.models import MAX_FIGURES, Figure
from bot.store import Store
from bot.summarise import Article
from bot.summarise.article import budget_text, count_tokens
from bot.summarise.grounding import (
    check_brief_text,
    drop_unsupported_sentences,
    figure_in_source,
    unsupported_numbers,
)
from bot.summarise.calls import (
    MAX_RETRY_AFTER_SECONDS,
    RETRYABLE_STATUS,
    CallFailed,
    Completion,
    RequestRateLimiter,
    error_message,
    retry_after_seconds,
)
from bot.summarise.prompts import Prompt, PromptError, load_prompt
from bot.summarise.replies import (
    ReplyProblem,
    brief_reply_model,
    fence_article,
    neutralise_mentions,
    parse_reply,
    reply_example,
    strict_json_schema,
)

log = logging.getLogger("briefbot.llm")

BRIEF_PROMPT = "brief"
MAX_SUMMARY_SENTENCES = 3
LANGUAGE_NAMES = {"en": "English", "zh": "Simplified Chinese"}


# --------------------------------------------------------------------------- result

@dataclass
class LLMBrief:
    relevant: bool
    title: dict[str, str]
    summary: dict[str, str]
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_cache(self) -> dict:
        data = asdict(self)
        data["figures"] = [f.model_dump(mode="json") for f in self.figures]
        return data

    @classmethod
    def from_cache(cls, data: dict) -> "LLMBrief":
        return cls(relevant=bool(data["relevant"]), title=dict(data["title"]), summary=dict(data["summary"]),
                   figures=[Figure.model_validate(f) for f in data.get("figures", [])],
                   notes=list(data.get("notes", [])))


def content_hash(title: str, text: str) -> str:
    return hashlib.sha256(f"{title.strip()}\x1f{text.strip()}".encode("utf-8")).hexdigest()


def _cache_key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()


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
        # Learned per server: some reject response_format or a temperature (reasoning models).
        self._structured = True
        self._send_temperature = True
        self._budget_warned_day: str | None = None
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
        """A grounded bilingual brief, or None: the caller then posts the extractive brief."""
        try:
            prompt = load_prompt(BRIEF_PROMPT, self.settings)
        except PromptError as exc:
            log.error("LLM brief for %s skipped: %s", article.url, exc)
            return None
        key = _cache_key("brief", content_hash(article.title, article.text), self.model, prompt.version,
                         self.languages, self.settings.llm.max_input_tokens)
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
        key = _cache_key(purpose, prompt.name, prompt.version, self.model, rendered.system, rendered.user, schema)
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
            return None
        if got is None:
            return None
        reply, _content = got
        self.store.cache_put(key, {"kind": "json", "reply": reply.model_dump(mode="json")})
        return reply

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
            empty = [lang for lang in self.languages if not getattr(texts, lang).strip()]
            if empty:
                problems.append(f"{part} is empty for {', '.join(empty)}")
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
        report = check_brief_text(fields, source)
        unsupported = {name: list(nums) for name, nums in self._report_unsupported(report).items() if nums}
        for name, nums in unsupported.items():
            self._reject(article, "number", f"{name} has numbers not in the article: {', '.join(nums)}", notes)
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
        lines = [f"- {name}: {', '.join(nums)}" for name, nums in unsupported.items()]
        return ("Some numbers in your reply do not appear in the article:\n" + "\n".join(lines)
                + "\nRewrite the reply using only numbers that appear in the article (the same value may be "
                  "written in the other language's units, e.g. 8000万 = 80 million). Remove any claim you "
                  "cannot support. Reply with the complete JSON object only.")

    def _drop_unsupported(self, brief: LLMBrief, unsupported: dict[str, list[str]], source: str,
                          article: Article) -> LLMBrief | str:

        for name in unsupported:
            part, _, lang = name.partition(".")
            texts = brief.title if part == "title" else brief.summary
            kept, removed = drop_unsupported_sentences(texts.get(lang, ""), source, lang)
            for sentence in removed:
                self._reject(article, "sentence", f"{name}: removed sentence {sentence!r}", brief.notes)
            texts[lang] = kept.strip()
        empty = [f"{part}.{lang}" for part in ("title", "summary") for lang in self.languages
                 if not (brief.title if part == "title" else brief.summary).get(lang, "").strip()]
        if empty:
            self._reject(article, "brief", f"nothing grounded left in {', '.join(empty)}; extractive brief used",
                         brief.notes)
            return "grounding left nothing in " + ", ".join(empty)
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

    def _fallback_instructions(self, schema_model: type[BaseModel]) -> str:
        return ("\n\nReply format: one JSON object only (no prose, no code fence) that validates against "
                "this JSON Schema:\n" + json.dumps(strict_json_schema(schema_model), ensure_ascii=False))

    async def _complete(self, messages: list[dict], schema_model: type[BaseModel], purpose: str) -> Completion:
        """One completion, structured output first; a server that rejects it gets plain JSON instructions."""
        import openai  # loaded with the client in __init__
        structured = self._structured
        while True:
            kwargs: dict[str, Any] = {"model": self.model}
            if self._send_temperature:
                kwargs["temperature"] = self.settings.llm.temperature
            if structured:
                kwargs["messages"] = messages
                kwargs["response_format"] = {"type": "json_schema", "json_schema": {
                    "name": schema_model.__name__, "strict": True, "schema": strict_json_schema(schema_model)}}
            else:
                first, *rest = messages
                kwargs["messages"] = [{**first, "content": first["content"] + self._fallback_instructions(
                    schema_model)}] + rest
            try:
                completion = await self._create_with_retries(kwargs, purpose)
            except openai.BadRequestError as exc:
                message = error_message(exc)
                if self._send_temperature and "temperature" in message.lower():
                    log.info("LLM server rejects temperature for %s; sending none from now on", self.model)
                    self._send_temperature = False
                    continue
                if structured:
                    log.info("LLM server rejected the request with response_format (%s); trying plain JSON "
                             "instructions", message[:200])
                    structured = False
                    continue
                raise CallFailed("bad_request", f"server rejected the request: {message[:300]}") from None
            if self._structured and not structured:
                # Only learnt once plain JSON worked: a 400 for another reason must not switch modes.
                log.info("LLM server %s does not take response_format: plain JSON instructions from now on",
                         self.env.openai_base_url or "(default)")
                self._structured = False
            return completion

    async def _create_with_retries(self, kwargs: dict, purpose: str) -> Completion:
        import openai  # loaded with the client in __init__
        retries = self.settings.llm.max_retries
        attempt = 0
        while True:
            self._check_budget(purpose)
            await self._limiter.acquire()
            started = time.monotonic()
            wait: float | None = None
            try:
                response = await self.client.chat.completions.create(**kwargs)
            except openai.BadRequestError:
                metrics.LLM_CALLS.labels(purpose, "bad_request").inc()
                raise
            except openai.APIStatusError as exc:
                status = exc.status_code
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
        try:
            choice = response.choices[0]
            content = choice.message.content
            finish_reason = choice.finish_reason
        except (AttributeError, IndexError, TypeError):
            content, finish_reason = None, None
        usage = getattr(response, "usage", None)
        prompt_tokens = getattr(usage, "prompt_tokens", None)
        completion_tokens = getattr(usage, "completion_tokens", None)
        if prompt_tokens is None:  # some local servers omit usage: estimate, so the budget still works
            prompt_tokens = sum(count_tokens(m.get("content") or "") + 4 for m in kwargs["messages"])
        if completion_tokens is None:
            completion_tokens = count_tokens(content or "")
        metrics.LLM_CALLS.labels(purpose, "ok").inc()
        metrics.LLM_TOKENS.labels("input").inc(prompt_tokens)
        metrics.LLM_TOKENS.labels("output").inc(completion_tokens)
        metrics.LLM_LATENCY.observe(latency)
        self.store.record_llm_usage(self.model, purpose, int(prompt_tokens), int(completion_tokens),
                                    latency * 1000.0, "ok")
        return Completion(content, finish_reason)

    def _check_budget(self, purpose: str) -> None:
        budget = self.settings.llm.daily_token_budget
        if budget is None:
            return
        day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        used = self.store.llm_tokens_on(day)
        if used < budget:
            return
        metrics.LLM_CALLS.labels(purpose, "budget_exhausted").inc()
        if self._budget_warned_day != day:
            self._budget_warned_day = day
            log.warning("LLM daily token budget used up (%d of %d tokens on %s UTC): extractive briefs until "
                        "the next UTC day", used, budget, day)
        raise CallFailed("budget_exhausted", f"daily token budget of {budget} used up ({used} tokens on {day})")
