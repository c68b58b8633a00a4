"""P3 LLM economy: 10 stories, each reported by 3 outlets (English, English, Chinese).

briefbot polls the three feeds with the LLM on (a loopback OpenAI-compatible fake that counts
calls and measures each request). Same-story detection runs before any call, so each story
should cost one call, and the article is cut to the token budget. Baseline: the naive design,
one call per item with the whole article, sent to the same fake and measured the same way.
"""

from __future__ import annotations

import asyncio
import logging
import random
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.common import Result, make_env, make_settings
from bench.corpus import FeedSpec, Item, render_feed
from bench.fake_llm import CountingLLM
from bench.servers import FeedServer, write_manifest

STORIES = [
    # metal (en), metal (zh), percentage, tonnes, authority (en), authority (zh)
    ("gallium", "镓", "23.4", "12,800", "the Commerce Ministry", "商务部"),
    ("germanium", "锗", "17.9", "3,450", "customs", "海关总署"),
    ("antimony", "锑", "41.2", "8,960", "the Commerce Ministry", "商务部"),
    ("dysprosium", "镝", "12.6", "1,175", "customs", "海关总署"),
    ("terbium", "铽", "9.3", "2,040", "the Commerce Ministry", "商务部"),
    ("graphite", "石墨", "28.7", "61,300", "customs", "海关总署"),
    ("NdPr oxide", "镨钕", "35.8", "14,720", "the Commerce Ministry", "商务部"),
    ("yttrium", "钇", "52.1", "5,380", "customs", "海关总署"),
    ("scandium", "钪", "6.4", "1,930", "the Commerce Ministry", "商务部"),
    ("samarium", "钐", "19.5", "4,610", "customs", "海关总署"),
]

BACKGROUND_EN = [
    "Magnet makers in Japan and Germany have spent the past year qualifying alternative suppliers, a process "
    "that typically takes many months because every new source must pass automotive quality audits.",
    "Traders said buyers were reluctant to sign long contracts while the licensing rules remained unclear, "
    "preferring spot purchases even at a premium.",
    "Processing capacity outside China remains small, and new refineries in Australia and the United States "
    "are still ramping up, according to industry consultants.",
    "Several automakers have redesigned motors to use fewer heavy rare earths, but the changes will take years "
    "to reach most production lines.",
    "Officials in Washington said they were reviewing the measure and consulting allies on a coordinated "
    "response, including stockpiling and joint investment in separation plants.",
    "Exporters must now submit end-user certificates and detailed descriptions of how the material will be "
    "used, and approvals are granted case by case.",
    "Market participants noted that inventories held by trading houses had already been drawn down during the "
    "previous round of restrictions earlier in the year.",
    "Analysts cautioned that official trade statistics lag actual shipments, so the full effect may only be "
    "visible in next month's customs release.",
    "European policymakers have pointed to the episode as evidence that the bloc's critical raw materials "
    "targets need faster permitting for domestic projects.",
    "Mining companies in Canada and Africa said interest from offtake partners had picked up noticeably since "
    "the controls were announced.",
]
BACKGROUND_ZH = [
    "日本和德国的磁材企业过去一年一直在认证替代供应商，由于每个新来源都必须通过汽车质量审核，这一过程通常需要数月时间。",
    "贸易商表示，在许可规则仍不明朗的情况下，买家不愿签订长期合同，更倾向于即使溢价也在现货市场采购。",
    "业内咨询机构称，中国以外的冶炼分离产能仍然有限，澳大利亚和美国的新建项目仍在爬坡阶段。",
    "多家车企已重新设计电机以减少重稀土用量，但这些改动需要数年才能覆盖大部分生产线。",
    "出口企业现在需要提交最终用户证明以及材料用途的详细说明，审批逐案进行。",
    "市场人士指出，贸易商持有的库存在今年早些时候的上一轮限制中已被消耗。",
    "分析人士提醒，官方贸易数据滞后于实际出货，完整影响可能要到下月海关数据公布时才能显现。",
    "加拿大和非洲的矿业公司表示，自管制措施宣布以来，包销合作方的兴趣明显上升。",
]


def _article(outlet: int, story: tuple, rng: random.Random) -> tuple[str, str]:
    metal, metal_zh, pct, tonnes, who, who_zh = story
    if outlet == 0:
        title = f"China tightens {metal} export licences; shipments fall {pct}%"
        lead = (f"Exports of {metal} from China fell {pct}% last month after {who} tightened licensing for the "
                f"critical mineral, and traders said about {tonnes} tonnes were waiting for approval at ports.")
        paras = rng.choices(BACKGROUND_EN, k=30)
    elif outlet == 1:
        title = f"{metal.capitalize()} exports slump as Beijing widens controls, {tonnes} tonnes stuck"
        lead = (f"Chinese {metal} shipments dropped {pct}% in the latest month, trade data showed, with "
                f"{tonnes} tonnes reported held at customs as exporters wait for licences from {who}.")
        paras = rng.choices(BACKGROUND_EN, k=26)
    else:
        title = f"{metal_zh}出口许可收紧，出货量下降{pct}%"
        lead = (f"{who_zh}收紧{metal_zh}出口许可后，上月{metal_zh}出口量下降{pct}%，"
                f"贸易商称约{tonnes}吨货物在港口等待审批。")
        paras = rng.choices(BACKGROUND_ZH, k=40)
    sep = "" if outlet == 2 else "\n\n"
    return title, lead + sep + sep.join(paras)


def build_feeds(now: datetime) -> tuple[list[FeedSpec], list[tuple[str, str]]]:
    rng = random.Random(3)
    outlets = [("wire-en-a", "en"), ("wire-en-b", "en"), ("caixun-zh", "zh")]
    feeds, articles = [], []
    for o, (name, lang) in enumerate(outlets):
        spec = FeedSpec(index=o, path=f"/p3/{name}.xml", kind="atom" if o == 1 else "rss", lang=lang,
                        encoding="utf-8", items=[])
        for s, story in enumerate(STORIES):
            title, text = _article(o, story, rng)
            articles.append((title, text))
            body = "".join(f"<p>{p}</p>" for p in text.split("\n\n"))
            spec.items.append(Item(guid=f"{name}-{s}", title=title, body=body,
                                   link=f"https://{name}.example/story/{s}", relevant=True,
                                   published=now - timedelta(minutes=30 + 7 * s + o)))
        feeds.append(spec)
    return feeds, articles


async def _poll(settings, env) -> dict:
    from bot.app.container import build_app, close_app, make_poller

    app = build_app(settings, env)
    try:
        reports = await make_poller(app).poll_all(force=True)
        briefs = app.store.count_briefs()
        modes = {}
        for b in app.store.latest_briefs(None, limit=100):
            modes[b.mode] = modes.get(b.mode, 0) + 1
            sources = len(b.sources)
            modes[f"{sources} sources"] = modes.get(f"{sources} sources", 0) + 1
    finally:
        await close_app(app)
        app.store.close()
    return {"briefs": briefs, "merged": sum(r.merged for r in reports),
            "new": sum(len(r.new_briefs) for r in reports), "modes": modes,
            "errors": [r.error for r in reports if r.outcome == "error"]}


async def _naive(base_url: str, articles: list[tuple[str, str]]) -> None:
    """One call per item with the whole article: what a straightforward LLM summariser does."""
    import openai

    client = openai.AsyncOpenAI(api_key="bench", base_url=base_url, max_retries=0)
    try:
        for title, text in articles:
            await client.chat.completions.create(model="fake-mini", messages=[
                {"role": "system", "content": "Summarise this news article in English and Simplified Chinese as "
                                              "JSON with title, summary and key figures."},
                {"role": "user", "content": f"{title}\n\n{text}"}])
    finally:
        await client.close()


def run(workdir: Path | None = None, log=print) -> list[Result]:
    logging.getLogger("briefbot").setLevel(logging.ERROR)
    work = Path(workdir or tempfile.mkdtemp(prefix="briefbot-bench-p3-"))
    now = datetime.now(timezone.utc).replace(microsecond=0)
    feeds, articles = build_feeds(now)
    write_manifest(work / "feeds", {f.path: (f.content_type, [(0.0, render_feed(f))]) for f in feeds})
    n_stories, n_items = len(STORIES), len(articles)
    with FeedServer(work / "feeds", hosts=3) as server, CountingLLM() as llm:
        settings = make_settings([{"name": f.path.rsplit("/", 1)[1][:-4], "url": server.url(f.path, f.index)}
                                  for f in feeds], source_dir=work)
        env = make_env(f"sqlite:///{work / 'p3.db'}", openai_base_url=llm.base_url, openai_api_key="bench-key",
                       model="fake-mini")
        log(f"P3: briefbot with LLM on {len(feeds)} feeds × {n_stories} stories …")
        got = asyncio.run(_poll(settings, env))
        bot_calls, bot_tokens = llm.calls, sum(llm.prompt_tokens)
        llm.reset()
        log("P3: naive one-call-per-item baseline …")
        asyncio.run(_naive(llm.base_url, articles))
        naive_calls, naive_tokens = llm.calls, sum(llm.prompt_tokens)
    calls_per_story = bot_calls / n_stories
    tokens_per_brief = bot_tokens / max(1, got["briefs"])
    naive_per_story = naive_calls / n_stories
    naive_tokens_per_item = naive_tokens / max(1, naive_calls)
    passed = calls_per_story <= 1.0 and tokens_per_brief <= 2000 and got["briefs"] == n_stories
    details = [
        f"{n_stories} stories × 3 outlets (EN, EN, ZH) = {n_items} items; articles "
        f"{min(len(t) for _, t in articles)}–{max(len(t) for _, t in articles)} characters",
        f"briefbot: {bot_calls} LLM calls, {bot_tokens} input tokens in total, {got['briefs']} briefs "
        f"({got['merged']} items joined an existing story; {got['modes']})",
        f"naive: {naive_calls} calls, {naive_tokens} input tokens ({naive_tokens_per_item:.0f} per call / brief)",
        "tokens: the fake server's own count of each request (CJK char = 1, other chars / 4, +4 per message)",
    ]
    if got["errors"]:
        details.append(f"errors: {got['errors']}")
    if got["briefs"] != n_stories:
        details.append(f"expected {n_stories} briefs (one per story), got {got['briefs']}")
    return [Result(
        key="P3", name="P3 LLM economy (duplicate stories across outlets/languages)",
        figure=f"{calls_per_story:.2f} calls/story, {tokens_per_brief:.0f} input tokens/brief",
        baseline=f"naive {naive_per_story:.2f} calls/story, {naive_tokens_per_item:.0f} tokens/brief",
        ratio=f"{naive_calls / max(1, bot_calls):.1f}× fewer calls, {naive_tokens / max(1, bot_tokens):.1f}× fewer tokens",
        target="≤ 1.0 calls/story and ≤ 2,000 tokens/brief", passed=passed, details=details,
        data={"bot_calls": bot_calls, "bot_tokens": bot_tokens, "naive_calls": naive_calls,
              "naive_tokens": naive_tokens, **got})]


if __name__ == "__main__":
    for res in run():
        print(res.key, res.figure, "|", res.baseline, "|", res.ratio, res.verdict)
        for d in res.details:
            print("   ", d)
