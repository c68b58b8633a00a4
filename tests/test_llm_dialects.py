"""Every OpenAI-compatible server gets LLM briefs: the request shape is learnt from the server's refusals.

The servers are loopback fakes that accept and refuse requests as llama-cpp-python's server, Ollama's
/v1 and vLLM do (tests/fakes/llm_dialects.py says where in their code each rule comes from). The
client is the real openai client, the store a real SQLite file; every bundled sample article is
briefed, then the summariser is built again on the same database, as after a restart.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from fakes.llm_dialects import MODELS, DialectServer
from fakes.openai_server import FakeOpenAI, SleepRecorder, chat_json, server_error
from loopback import Reply

from bot.app.cli_commands import stats_command
from bot.config import Env, LLMConfig, Settings, TopicConfig
from bot.ingest.parse import parse_feed
from bot.store import Store
from bot.summarise import Article
from bot.summarise.dialect import MAX_REPLY_TOKENS
from bot.summarise.llm import LLMBrief, LLMSummariser

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "bot" / "samples" / "feeds"
PROMPTS_DIR = ROOT / "prompts"


def settings() -> Settings:
    return Settings(
        languages=["en", "zh"],
        topics={"rare-earth": TopicConfig(label={"en": "Rare earths", "zh": "稀土"}, keywords=["rare earth", "稀土"]),
                "tariff": TopicConfig(label={"en": "Tariffs", "zh": "关税"}, keywords=["tariff", "关税"])},
        llm=LLMConfig(timeout=timedelta(seconds=10), max_retries=2, requests_per_minute=10_000,
                      prompts_dir=str(PROMPTS_DIR)),
    )


def sample_articles() -> list[Article]:
    articles = []
    for path in sorted(SAMPLES.iterdir()):
        feed = parse_feed(path.read_bytes(), None, f"http://samples.example/{path.name}")
        for entry in feed.entries:
            lang = "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in entry.title) else "en"
            articles.append(Article(feed=path.stem, url=entry.link or entry.guid, title=entry.title,
                                    text=entry.text, lang=lang))
    return articles


def updated(article: Article) -> Article:
    """The same article edited since: new content, so the reply cache does not answer it."""
    more = " 消息更新。" if article.lang == "zh" else " The story was updated."
    return Article(feed=article.feed, url=article.url, title=article.title, text=article.text + more,
                   lang=article.lang)


def env_for(base_url: str, model: str, db_url: str) -> Env:
    return Env.from_environ({"OPENAI_BASE_URL": base_url, "BRIEFBOT_MODEL": model, "DATABASE_URL": db_url})


def summariser(base_url: str, model: str, store: Store, db_url: str) -> LLMSummariser:
    return LLMSummariser(settings(), env_for(base_url, model, db_url), store, sleep=SleepRecorder(),
                         backoff_base=0.01)


async def brief_all(llm: LLMSummariser, articles: list[Article]) -> list[LLMBrief | None]:
    try:
        return [await llm.summarise(a) for a in articles]
    finally:
        await llm.aclose()


def shape(body: dict) -> tuple[str, str | None]:
    fmt = body.get("response_format", {}).get("type", "plain")
    cap = next((p for p in ("max_tokens", "max_completion_tokens") if p in body), None)
    return fmt, cap


# What each server ends up being sent, and how many refusals it takes to learn it.
EXPECTED = {
    "llama-cpp-python": (("json_object", "max_tokens"), 1),  # HTTP 500 naming response_format
    "ollama": (("json_schema", "max_tokens"), 0),  # takes json_schema as its format
    "vllm": (("json_schema", None), 1),  # the output cap does not fit its 2,048-token context
}


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/briefbot.db"


@pytest.mark.parametrize("dialect", sorted(EXPECTED))
async def test_every_sample_gets_an_llm_brief_after_at_most_one_refusal(dialect, db_url, caplog):
    articles = sample_articles()
    assert len(articles) >= 12
    (sent_as, refusals), model = EXPECTED[dialect], MODELS[dialect]
    store = Store(db_url)
    store.create()
    try:
        with DialectServer(dialect) as server, caplog.at_level(logging.INFO, logger="briefbot.llm"):
            briefs = await brief_all(summariser(server.base_url, model, store, db_url), articles)
            assert [a.url for a, b in zip(articles, briefs) if not isinstance(b, LLMBrief)] == []
            assert all(b.relevant and all(b.title.values()) and all(b.summary.values()) for b in briefs)
            assert len(server.refusals) == refusals
            learnt_at = len(server.bodies)
            assert shape(server.bodies[-1]) == sent_as
            changes = [r.getMessage() for r in caplog.records if "requests now" in r.getMessage()]
            assert len(changes) == refusals  # one line when the shape changes, none otherwise

            # A restart: a new summariser on the same database asks in the learnt shape at once.
            again = await brief_all(summariser(server.base_url, model, store, db_url), [updated(a) for a in articles])
            assert all(isinstance(b, LLMBrief) for b in again)
            assert len(server.refusals) == refusals
            assert {shape(b) for b in server.bodies[learnt_at:]} == {sent_as}
            assert len(server.bodies) - learnt_at >= len(articles)
    finally:
        store.close()


async def test_llama_cpp_refusal_is_not_retried_as_an_outage(db_url, caplog):
    store = Store(db_url)
    store.create()
    try:
        with DialectServer("llama-cpp-python") as server, caplog.at_level(logging.INFO, logger="briefbot.llm"):
            llm = summariser(server.base_url, MODELS["llama-cpp-python"], store, db_url)
            sleeps = llm._sleep
            brief = (await brief_all(llm, sample_articles()[:1]))[0]
        assert isinstance(brief, LLMBrief)
        assert sleeps.calls == []  # no backoff: the 500 named response_format, so it was a refusal
        status, body = server.refusals[0]
        assert status == 500 and "'json_object'" in body["error"]["message"]
        second = server.bodies[1]
        assert second["response_format"]["type"] == "json_object"
        assert second["response_format"]["schema"]["additionalProperties"] is False
        assert second[shape(second)[1]] == MAX_REPLY_TOKENS
        line = next(r.getMessage() for r in caplog.records if "requests now" in r.getMessage())
        assert server.base_url.rstrip("/") in line and "json_object" in line and "HTTP 500" in line
    finally:
        store.close()


async def test_concurrent_briefs_spend_one_refusal(db_url):
    store = Store(db_url)
    store.create()
    try:
        with DialectServer("llama-cpp-python") as server:
            llm = summariser(server.base_url, MODELS["llama-cpp-python"], store, db_url)
            try:
                briefs = await asyncio.gather(*(llm.summarise(a) for a in sample_articles()))
            finally:
                await llm.aclose()
        assert all(isinstance(b, LLMBrief) for b in briefs)
        assert len(server.refusals) == 1
    finally:
        store.close()


def reasoning_model(req) -> Reply:
    """OpenAI's answer to max_tokens on a reasoning model, else a good reply."""
    body = req.json()
    if "max_tokens" in body:
        return Reply.json({"error": {"message": "Unsupported parameter: 'max_tokens' is not supported with this "
                                                "model. Use 'max_completion_tokens' instead.",
                                     "type": "invalid_request_error", "param": "max_tokens",
                                     "code": "unsupported_parameter"}}, status=400)
    from fakes.llm_dialects import write_brief
    return chat_json(write_brief(body))


async def test_max_tokens_refused_means_max_completion_tokens_remembered(db_url):
    store = Store(db_url)
    store.create()
    article = sample_articles()[0]
    try:
        with FakeOpenAI() as fake:
            fake.default = reasoning_model
            assert await brief_all(summariser(fake.base_url, "o-mini", store, db_url), [article]) != [None]
            assert [shape(b)[1] for b in fake.bodies] == ["max_tokens", "max_completion_tokens"]
            await brief_all(summariser(fake.base_url, "o-mini", store, db_url), [updated(article)])
            assert shape(fake.bodies[-1])[1] == "max_completion_tokens" and len(fake.bodies) == 3
            # Another model on the same server learns for itself.
            await brief_all(summariser(fake.base_url, "o-large", store, db_url), [article])
            assert shape(fake.bodies[3])[1] == "max_tokens"
    finally:
        store.close()


async def test_outage_is_still_retried_and_learns_nothing(db_url):
    store = Store(db_url)
    store.create()
    article = sample_articles()[0]
    try:
        with FakeOpenAI() as fake:
            fake.queue(server_error(500), server_error(503), server_error(500))
            llm = summariser(fake.base_url, "fake-mini", store, db_url)
            sleeps = llm._sleep
            assert await brief_all(llm, [article]) == [None]
            assert len(sleeps.calls) == 2 and fake.calls == 3
            assert {shape(b) for b in fake.bodies} == {("json_schema", "max_tokens")}
            assert store.llm_dialects() == []
    finally:
        store.close()


async def test_usage_missing_is_estimated_and_shown_in_stats(db_url, capsys):
    store = Store(db_url)
    store.create()
    try:
        with DialectServer("llama-cpp-python") as server:
            await brief_all(summariser(server.base_url, "qwen", store, db_url), sample_articles()[:1])
        with FakeOpenAI() as fake:
            from fakes.llm_dialects import write_brief
            fake.default = lambda req: chat_json(write_brief(req.json()), usage=False)
            await brief_all(summariser(fake.base_url, "fake-mini", store, db_url), sample_articles()[1:2])
        day = store.llm_usage_by_day()[0]
        assert day["calls"] == 2 and day["estimated_calls"] == 1
        assert stats_command(SimpleNamespace(json=False), settings(), env_for(fake.base_url, "x", db_url)) == 0
        out = capsys.readouterr().out
        assert "ESTIMATED" in out
        learnt = next(line for line in out.splitlines() if line.startswith(server.base_url.rstrip("/")))
        assert "qwen" in learnt and "json_object, max_tokens" in learnt
    finally:
        store.close()
