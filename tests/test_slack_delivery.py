"""Slack delivery against a loopback fake of the Slack Web API (real HTTP, real wire format)."""

from __future__ import annotations

import re
import socket
from datetime import datetime, timedelta, timezone

import pytest

from bot.config import Settings
from bot.models import Target
from bot.delivery.adapter import DeliveryError
from bot.adapters.slack.deliver import SlackDeliverer
from bot.adapters.slack.render import escape, fit as _fit, render_brief, render_digest
from bot.models import Brief, Digest, DigestSection, Figure, Source
from chat_fixtures import slack  # noqa: F401  (pytest fixture)
from fakes.slack_api import BOT_TOKEN, OK, Channel, FakeSlack, Scripted, mrkdwn_texts

CHANNEL = "C0BRIEFS1"
TARGET = Target("slack", CHANNEL)
PUBLISHED = datetime(2024, 5, 12, 10, 30, tzinfo=timezone.utc)  # 18:30 in Asia/Shanghai


def make_settings() -> Settings:
    return Settings.model_validate({
        "timezone": "Asia/Shanghai",
        "topics": {
            "rare_earths": {"label": {"en": "Rare earths", "zh": "稀土"}, "keywords": ["rare earth", "稀土"]},
            "tariffs": {"label": {"en": "Tariffs", "zh": "关税"}, "keywords": ["tariff", "关税"]},
        },
    })


def en_brief(**overrides) -> Brief:
    data = dict(
        id="b_en0000000000001",
        topics=["rare_earths", "tariffs"],
        title={"en": "Beijing trims second-batch rare earth mining quota by 8%",
               "zh": "北京将第二批稀土开采配额削减8%"},
        summary={"en": "The industry ministry set the second batch of 2024 rare earth mining quotas at 135,000 "
                       "tonnes, 8% below the first batch. Traders expect neodymium prices to firm.",
                 "zh": "工信部将2024年第二批稀土开采配额定为13.5万吨，比第一批低8%。"},
        figures=[Figure(text="135,000 tonnes", value=135000, unit="t", label={"en": "Mining quota", "zh": "开采配额"}),
                 Figure(text="8%", value=8, unit="%", label={"en": "Cut vs first batch", "zh": "较第一批降幅"})],
        sources=[Source(url="https://metals.example.com/news/quota-2024?id=7&src=rss", feed="metals-wire",
                        title="Rare earth quota cut & what it means", published=PUBLISHED)],
        mode="extractive",
    )
    data.update(overrides)
    return Brief(**data)


def zh_brief() -> Brief:
    # An extractive brief from a Chinese source: the English side is the topic label plus figures.
    return Brief(
        id="b_zh0000000000002",
        topics=["tariffs"],
        title={"en": "Tariffs (Chinese source)", "zh": "商务部：对进口镓产品加征25%关税"},
        summary={"en": "Tariffs: key figures 25%, 3.2亿元 — full translation needs an LLM.",
                 "zh": "商务部宣布自6月1日起对部分进口镓产品加征25%关税，涉及金额约3.2亿元。"},
        figures=[Figure(text="25%", value=25, unit="%", label={"en": "Tariff rate", "zh": "关税税率"}),
                 Figure(text="3.2亿元", value=3.2e8, unit="CNY", label={"en": "Trade value", "zh": "涉及金额"})],
        sources=[Source(url="https://news.example.cn/2024/0512/gallium.html", feed="cn-trade",
                        title="商务部关于镓产品关税的公告", published=PUBLISHED)],
        mode="extractive",
    )




def deliverer(fake: FakeSlack, **kwargs) -> SlackDeliverer:
    kwargs.setdefault("retry_backoff", 0.01)
    return SlackDeliverer(BOT_TOKEN, fake.api_url, settings=make_settings(), **kwargs)


# --------------------------------------------------------------------------- rendering

def test_escape_neutralises_slack_control_characters():
    assert escape("<!channel> & <@U123>") == "&lt;!channel&gt; &amp; &lt;@U123&gt;"
    # Trimming never leaves half an entity behind.
    trimmed = _fit("a" * 8 + "&amp;b", 11)
    assert trimmed == "a" * 8 + "…"


def test_render_english_brief_structure():
    text, blocks = render_brief(en_brief(), make_settings())
    assert [b["type"] for b in blocks] == ["header", "section", "section", "section", "context", "context"]
    header = blocks[0]["text"]
    assert header == {"type": "plain_text", "text": "Beijing trims second-batch rare earth mining quota by 8%",
                      "emoji": False}
    assert blocks[1]["text"]["text"].startswith("The industry ministry set the second batch")
    assert blocks[2]["text"]["text"] == ("*北京将第二批稀土开采配额削减8%*\n"
                                         "工信部将2024年第二批稀土开采配额定为13.5万吨，比第一批低8%。")
    fields = blocks[3]["fields"]
    assert fields[0] == {"type": "mrkdwn", "text": "*Mining quota / 开采配额*\n135,000 tonnes"}
    assert fields[1]["text"] == "*Cut vs first batch / 较第一批降幅*\n8%"
    source = blocks[4]["elements"][0]["text"]
    # Link with escaped title (and & in the URL escaped), feed, time in the configured zone.
    assert source == ("<https://metals.example.com/news/quota-2024?id=7&amp;src=rss|Rare earth quota cut &amp; "
                      "what it means> · metals-wire · 2024-05-12 18:30 CST")
    footer = [e["text"] for e in blocks[5]["elements"]]
    assert footer[0] == "Topics / 主题: Rare earths / 稀土, Tariffs / 关税"
    assert footer[1].startswith("extractive — full translation needs an LLM")
    assert text.startswith("Beijing trims second-batch rare earth mining quota by 8% — 北京将第二批稀土")


def test_render_uses_explicit_timezone_and_marks_llm_mode():
    _, blocks = render_brief(en_brief(mode="llm"), make_settings(), tz="Europe/London")
    assert "2024-05-12 11:30 BST" in blocks[4]["elements"][0]["text"]
    assert "extractive" not in blocks[5]["elements"][1]["text"]


def test_render_chinese_source_brief():
    text, blocks = render_brief(zh_brief(), make_settings())
    assert blocks[0]["text"]["text"] == "Tariffs (Chinese source)"
    assert "full translation needs an LLM" in blocks[1]["text"]["text"]
    assert blocks[2]["text"]["text"].startswith("*商务部：对进口镓产品加征25%关税*\n商务部宣布自6月1日起")
    assert [f["text"] for f in blocks[3]["fields"]] == ["*Tariff rate / 关税税率*\n25%",
                                                      "*Trade value / 涉及金额*\n3.2亿元"]
    assert "<https://news.example.cn/2024/0512/gallium.html|商务部关于镓产品关税的公告>" in blocks[4]["elements"][0]["text"]
    assert blocks[5]["elements"][0]["text"] == "Topics / 主题: Tariffs / 关税"
    assert text


def test_render_chinese_only_brief_falls_back_to_chinese_header():
    brief = zh_brief().model_copy(update={"title": {"zh": "稀土价格指数上涨3.5%"}, "summary": {"zh": "稀土价格指数本周上涨3.5%。"}})
    text, blocks = render_brief(brief, make_settings())
    assert blocks[0]["text"]["text"] == "稀土价格指数上涨3.5%"
    # The Chinese title is not repeated under a header that already shows it.
    assert blocks[1]["text"]["text"] == "稀土价格指数本周上涨3.5%。"
    assert text == "稀土价格指数上涨3.5%"


async def test_limits_are_met_by_trimming_and_slack_accepts_the_message(slack):
    huge = "Rare earth magnet exports rose sharply & prices <firmed>. " * 300  # ~17k chars
    brief = en_brief(
        title={"en": "Gallium and germanium export controls widen " * 10, "zh": "镓锗出口管制扩大" * 100},
        summary={"en": huge, "zh": "稀土永磁出口大幅增长。" * 800},
        figures=[Figure(text=f"{i * 10} tonnes", label={"en": f"Item {i}", "zh": f"项目{i}"}) for i in range(30)],
        sources=[Source(url=f"https://wire{i}.example.com/a", feed=f"wire-{i}", title=f"Report {i}",
                        published=PUBLISHED) for i in range(25)],
    )
    text, blocks = render_brief(brief, make_settings())
    assert len(blocks) <= 50
    assert len(blocks[0]["text"]["text"]) == 150 and blocks[0]["text"]["text"].endswith("…")
    assert len(blocks[1]["text"]["text"]) == 3000 and blocks[1]["text"]["text"].endswith("…")
    assert len(blocks[2]["text"]["text"]) == 3000
    field_sections = [b for b in blocks if "fields" in b]
    assert [len(b["fields"]) for b in field_sections] == [10, 10]
    context_texts = [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]
    assert "+10 more figures / 其余数据未显示" in context_texts
    assert "+16 more sources / 更多来源" in context_texts
    assert len(text) <= 3000

    ts = await deliverer(slack).deliver_brief(TARGET, brief, delivery_key="k-limits", attempt=1)
    assert ts and len(slack.posted(CHANNEL)) == 1  # the fake enforces Slack's limits (invalid_blocks otherwise)


async def test_mention_injection_in_feed_text_is_posted_escaped(slack):
    evil = "<!channel> Gallium ban <@U123ABC> <https://evil.example|click here> <!here> <!everyone>"
    brief = en_brief(
        title={"en": evil, "zh": "<!channel> 镓出口禁令"},
        summary={"en": "Read <https://evil.example|the official notice> now <!subteam^S1>", "zh": "<@U999> 摘要"},
        figures=[Figure(text="<!here> 50%", label={"en": "<@U1>", "zh": "比例"})],
        sources=[Source(url="https://metals.example.com/a>|<!channel>", feed="wire<!here>", title="<!everyone> report",
                        published=PUBLISHED)],
    )
    await deliverer(slack).deliver_brief(TARGET, brief, delivery_key="k-evil", attempt=1)
    call = slack.calls_to("chat.postMessage")[0].params
    texts = mrkdwn_texts(call["blocks"]) + [call["text"]]
    for text in texts:
        # The only <...> sequences left are our own source link, whose URL cannot break out.
        for token in re.findall(r"<[^>]*>", text):
            assert token.startswith("<https://metals.example.com/a%3E%7C%3C!channel%3E|"), token
        assert "<!" not in text and "<@" not in text and "<https://evil" not in text
    assert "&lt;!channel&gt; Gallium ban &lt;@U123ABC&gt; &lt;https://evil.example|click here&gt;" in call["text"]
    # The header is plain_text, which Slack never parses for mentions or links.
    assert call["blocks"][0]["text"]["type"] == "plain_text"
    assert call["link_names"] is False


# --------------------------------------------------------------------------- retries and errors

async def test_429_is_retried_and_the_message_posted_once(slack):
    slack.script("chat.postMessage", Scripted(status=429, error="ratelimited", retry_after=0))
    ts = await deliverer(slack).deliver_brief(TARGET, en_brief(), delivery_key="k-429", attempt=1)
    assert len(slack.calls_to("chat.postMessage")) == 2
    posted = slack.posted(CHANNEL)
    assert len(posted) == 1 and posted[0]["ts"] == ts


async def test_long_retry_after_is_handed_back_to_the_outbox(slack):
    slack.script("chat.postMessage", Scripted(status=429, error="ratelimited", retry_after=120))
    with pytest.raises(DeliveryError) as info:
        await deliverer(slack).deliver_brief(TARGET, en_brief(), delivery_key="k-429b", attempt=1)
    assert info.value.permanent is False and info.value.retry_after == 120
    assert "rate limit" in str(info.value) and "slack:C0BRIEFS1" in str(info.value)
    assert len(slack.calls_to("chat.postMessage")) == 1 and slack.posted() == []


async def test_server_error_on_post_goes_back_to_outbox_without_double_post(slack):
    # A 500 may come after Slack stored the message: no in-place retry of chat.postMessage...
    slack.script("chat.postMessage", Scripted(status=500, error="internal_error", land_anyway=True))
    d = deliverer(slack)
    with pytest.raises(DeliveryError) as info:
        await d.deliver_brief(TARGET, en_brief(), delivery_key="k-500", attempt=1)
    assert info.value.permanent is False
    assert len(slack.calls_to("chat.postMessage")) == 1
    # ...the outbox's next attempt finds it by its metadata key instead of posting again.
    ts = await d.deliver_brief(TARGET, en_brief(), delivery_key="k-500", attempt=2)
    assert len(slack.posted(CHANNEL)) == 1 and slack.posted(CHANNEL)[0]["ts"] == ts
    assert slack.calls_to("conversations.history")[0].params["include_all_metadata"] in ("1", "true", "True")


async def test_server_errors_on_reads_are_retried_in_place(slack):
    slack.script("conversations.history", Scripted(status=503, body="<html>busy</html>", content_type="text/html"))
    ts = await deliverer(slack).deliver_brief(TARGET, en_brief(), delivery_key="k-503", attempt=2)
    assert len(slack.calls_to("conversations.history")) == 2
    assert [m["ts"] for m in slack.posted(CHANNEL)] == [ts]


async def test_crash_retry_returns_existing_ts_without_second_post(slack):
    d = deliverer(slack)
    first = await d.deliver_brief(TARGET, en_brief(), delivery_key="outbox-41", attempt=1)
    # Crash before the outbox recorded success: the row is tried again.
    again = await d.deliver_brief(TARGET, en_brief(), delivery_key="outbox-41", attempt=2)
    assert again == first
    assert len(slack.posted(CHANNEL)) == 1
    assert slack.posted(CHANNEL)[0]["metadata"] == {"event_type": "briefbot_delivery",
                                                    "event_payload": {"key": "outbox-41"}}
    # A retry of a different row that never landed still posts.
    other = await d.deliver_brief(TARGET, en_brief(), delivery_key="outbox-42", attempt=3)
    assert other != first and len(slack.posted(CHANNEL)) == 2
    # First attempts do not pay for the lookup.
    assert len(slack.calls_to("conversations.history")) == 2


@pytest.mark.parametrize("setup, error, hint", [
    (lambda f: None, "channel_not_found", "check the channel ID"),
    (lambda f: f.channels.__setitem__("C0QUIET01", Channel(member=False)), "not_in_channel",
     "invite it with `/invite @briefbot`"),
    (lambda f: f.channels.__setitem__("C0OLD0001", Channel(archived=True)), "is_archived", "unarchive"),
    (lambda f: f.script("chat.postMessage", Scripted(error="token_revoked")), "token_revoked", "reinstall"),
    (lambda f: f.script("chat.postMessage", Scripted(error="missing_scope")), "missing_scope", "scope"),
])
async def test_permanent_errors_name_target_reason_and_fix(slack, setup, error, hint):
    setup(slack)
    channel = {"not_in_channel": "C0QUIET01", "is_archived": "C0OLD0001",
               "channel_not_found": "C0GONE001"}.get(error, CHANNEL)
    with pytest.raises(DeliveryError) as info:
        await deliverer(slack).deliver_brief(Target("slack", channel), en_brief(), delivery_key="k", attempt=1)
    message = str(info.value)
    assert info.value.permanent is True
    assert f"slack:{channel}" in message and error in message and hint in message
    assert BOT_TOKEN not in message
    assert slack.posted() == []


async def test_invalid_token_is_permanent_and_never_leaks_the_token(slack):
    bad = "xoxb-9999-wrong-token-value"
    d = SlackDeliverer(bad, slack.api_url)
    with pytest.raises(DeliveryError) as info:
        await d.deliver_brief(TARGET, en_brief(), delivery_key="k", attempt=1)
    assert info.value.permanent is True
    assert "invalid_auth" in str(info.value) and "SLACK_BOT_TOKEN" in str(info.value)
    assert bad not in str(info.value)


async def test_missing_token_is_permanent():
    d = SlackDeliverer(None)
    with pytest.raises(DeliveryError) as info:
        await d.deliver_brief(TARGET, en_brief(), delivery_key="k", attempt=1)
    assert info.value.permanent is True and "SLACK_BOT_TOKEN is not set" in str(info.value)
    assert "slack:C0BRIEFS1" in str(info.value)


async def test_network_error_is_transient():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    d = SlackDeliverer(BOT_TOKEN, f"http://127.0.0.1:{port}/api")
    with pytest.raises(DeliveryError) as info:
        await d.deliver_brief(TARGET, en_brief(), delivery_key="k", attempt=1)
    assert info.value.permanent is False and "chat.postMessage failed" in str(info.value)
    assert BOT_TOKEN not in str(info.value)


# --------------------------------------------------------------------------- digests

def make_digest(per_topic: int) -> Digest:
    def brief(topic: str, i: int) -> Brief:
        return en_brief(id=f"b_{topic[:4]}{i:012d}", topics=[topic],
                        title={"en": f"{topic} story {i}: export licences up {i}%", "zh": f"{topic} 第{i}条：出口许可增加{i}%"},
                        figures=[Figure(text=f"{i}%", label={"en": "Change", "zh": "变化"})],
                        sources=[Source(url=f"https://wire.example.com/{topic}/{i}", feed="wire",
                                        title=f"Story {i}", published=PUBLISHED)])

    return Digest(
        name="morning", title={"en": "Morning digest", "zh": "早间摘要"},
        window_start=PUBLISHED - timedelta(hours=24), window_end=PUBLISHED, timezone="Asia/Shanghai",
        sections=[DigestSection(topic=t, label=l, count=per_topic + 2, briefs=[brief(t, i) for i in range(per_topic)])
                  for t, l in (("rare_earths", {"en": "Rare earths", "zh": "稀土"}),
                               ("tariffs", {"en": "Tariffs", "zh": "关税"}))],
    )


def test_digest_rendering_and_split_between_items_only():
    digest = make_digest(per_topic=7)
    messages = render_digest(digest, make_settings(), max_blocks=6)
    assert len(messages) > 2
    blocks = [b for _, bs in messages for b in bs]
    assert all(len(bs) <= 6 for _, bs in messages)
    assert blocks[0]["text"]["text"] == "Morning digest"
    assert blocks[1]["elements"][0]["text"] == "早间摘要"
    assert "2024-05-11 18:30 CST → 2024-05-12 18:30 CST" in blocks[1]["elements"][1]["text"]
    assert blocks[2]["text"]["text"] == "Rare earths / 稀土: 9 · Tariffs / 关税: 9"
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    items = [t for t in sections if t.startswith("• ")]
    assert len(items) == 14
    assert items[0] == ("• <https://wire.example.com/rare_earths/0|rare_earths story 0: export licences up 0%> — *0%*"
                        "\n    rare_earths 第0条：出口许可增加0%")
    for _, bs in messages:
        # A topic heading is never the last block of a message (its first item travels with it).
        assert bs[-1]["type"] == "section" and not bs[-1]["text"]["text"].startswith("*")
    # Every item appears once, in order: sections in digest order, briefs in rank order.
    assert items == sorted(items, key=lambda t: (not t.startswith("• <https://wire.example.com/rare"),
                                                int(re.search(r"story (\d+)", t).group(1))))
    assert [t for t, _ in messages][1].endswith(f"part 2/{len(messages)}")


def test_empty_digest_says_nothing_new():
    digest = make_digest(per_topic=0)
    [(text, blocks)] = render_digest(digest, make_settings())
    assert "Nothing new in the last 24 h — briefbot is running." in blocks[-1]["text"]["text"]
    assert text.startswith("Morning digest")


async def test_digest_delivery_resumes_after_partial_post(slack):
    digest = make_digest(per_topic=30)  # 60 items: more than one 50-block message
    parts = render_digest(digest, make_settings())
    assert len(parts) == 2
    d = deliverer(slack)
    # Part 1 lands, part 2 is rate limited for long: the outbox will retry later.
    slack.script("chat.postMessage", OK, Scripted(status=429, error="ratelimited", retry_after=300))
    with pytest.raises(DeliveryError):
        await d.deliver_digest(TARGET, digest, delivery_key="digest-morning-2024-05-12", attempt=1)
    assert len(slack.posted(CHANNEL)) == 1
    joined = await d.deliver_digest(TARGET, digest, delivery_key="digest-morning-2024-05-12", attempt=2)
    posted = slack.posted(CHANNEL)
    assert joined == ",".join(m["ts"] for m in posted) and len(posted) == 2
    assert [m["metadata"]["event_payload"]["key"] for m in posted] == [
        "digest-morning-2024-05-12#1/2", "digest-morning-2024-05-12#2/2"]
    assert [m["text"] for m in posted] == [t for t, _ in parts]


async def test_retry_without_history_scope_still_posts(slack, caplog):
    slack.script("conversations.history", Scripted(error="missing_scope"))
    ts = await deliverer(slack).deliver_brief(TARGET, en_brief(), delivery_key="k-scope", attempt=2)
    assert [m["ts"] for m in slack.posted(CHANNEL)] == [ts]
    assert "cannot check for an earlier copy" in caplog.text


def test_digest_overview_in_both_languages():
    digest = make_digest(per_topic=1).model_copy(update={"overview": {
        "en": "Quota cuts & <!here> tariffs dominated.", "zh": "配额削减与关税成为焦点。"}})
    [(_, blocks)] = render_digest(digest, make_settings())
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert "Quota cuts &amp; &lt;!here&gt; tariffs dominated." in texts
    assert "配额削减与关税成为焦点。" in texts
