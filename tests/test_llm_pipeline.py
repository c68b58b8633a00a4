"""LLM briefs through the real pipeline: one call per story, grounded output, fallbacks."""

from __future__ import annotations

import json

from fakes.openai_server import FakeOpenAI, chat_json, server_error
from feedgen import Entry, atom, make_env, make_settings, rss
from loopback import Reply
from magnet_story import MAGNETS_EN, MAGNETS_REPLY

from bot.app.container import make_dispatcher, make_poller
from bot.app.container import build_app, close_app

EN_B = Entry("Beijing grants magnet export permits to a dozen EU companies",
             "The Commerce Ministry in Beijing granted rare earth magnet export licences to 12 European firms. "
             "NdPr oxide gained 4.5% to 615,000 yuan per tonne.", guid="b-1", link="https://b.example/permits")
ZH_C = Entry("商务部批准12家欧洲企业稀土磁体出口许可", "商务部表示已批准12家欧洲企业的稀土磁体出口许可申请。氧化镨钕价格上涨4.5%，"
             "报61.5万元/吨。", guid="c-1", link="https://c.example/xuke.html")

# The model's brief, with the price as a second figure.
GOOD_REPLY = {**MAGNETS_REPLY, "figures": MAGNETS_REPLY["figures"] + [
    {"text": "615,000 yuan per tonne", "label": {"en": "NdPr oxide price", "zh": "氧化镨钕价格"}}]}


def serve(http_server, entries: dict[str, bytes]) -> list[dict]:
    feeds = []
    for name, body in entries.items():
        http_server.route(f"/{name}.xml", Reply(200, body, content_type="application/xml"))
        feeds.append({"name": name, "url": http_server.url(f"/{name}.xml")})
    return feeds


async def run_cycle(settings, db_url, fake) -> tuple[list, list[dict]]:
    app = build_app(settings, make_env(db_url, openai_base_url=fake.base_url, openai_api_key="test-key",
                                       model="fake-mini"))
    try:
        reports = await make_poller(app).poll_all(force=True)
        while await make_dispatcher(app).dispatch_once():
            pass
    finally:
        await close_app(app)
    out = settings.resolve_path("out/briefs.jsonl")
    return reports, [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()] if out.exists() else []


async def test_three_outlets_one_brief_one_llm_call(http_server, tmp_path, db_url):
    feeds = serve(http_server, {"a": rss([MAGNETS_EN]), "b": atom([EN_B]), "c": rss([ZH_C], encoding="gbk")})
    settings = make_settings(tmp_path, feeds, llm={"max_retries": 0})
    with FakeOpenAI() as fake:
        fake.queue(chat_json(GOOD_REPLY))
        reports, briefs = await run_cycle(settings, db_url, fake)
        assert fake.calls == 1
    assert len(briefs) == 1
    brief = briefs[0]
    assert brief["mode"] == "llm" and brief["title"]["zh"] == GOOD_REPLY["title"]["zh"]
    assert [f["value"] for f in brief["figures"][:2]] == [4.5, 615000.0]  # values from our parser
    assert sum(r.merged for r in reports) == 2


async def test_invented_number_never_posted(http_server, tmp_path, db_url):
    feeds = serve(http_server, {"a": rss([MAGNETS_EN])})
    settings = make_settings(tmp_path, feeds, llm={"max_retries": 0})
    bad = json.loads(json.dumps(GOOD_REPLY))
    bad["summary"]["en"] += " Exports are expected to grow 37% next year."
    with FakeOpenAI() as fake:
        fake.queue(chat_json(bad), chat_json(bad))  # the retry with feedback repeats the invention
        _, briefs = await run_cycle(settings, db_url, fake)
    assert len(briefs) == 1
    assert "37%" not in json.dumps(briefs[0], ensure_ascii=False)


async def test_llm_outage_falls_back_to_extractive(http_server, tmp_path, db_url):
    feeds = serve(http_server, {"a": rss([MAGNETS_EN])})
    settings = make_settings(tmp_path, feeds, llm={"max_retries": 0})
    with FakeOpenAI() as fake:
        fake.queue(server_error(), server_error())
        _, briefs = await run_cycle(settings, db_url, fake)
    assert len(briefs) == 1 and briefs[0]["mode"] == "extractive"


async def test_model_says_not_relevant(http_server, tmp_path, db_url):
    feeds = serve(http_server, {"a": rss([MAGNETS_EN])})
    settings = make_settings(tmp_path, feeds, llm={"max_retries": 0})
    with FakeOpenAI() as fake:
        fake.queue(chat_json({**GOOD_REPLY, "relevant": False}))
        reports, briefs = await run_cycle(settings, db_url, fake)
    assert briefs == [] and reports[0].irrelevant == 1
