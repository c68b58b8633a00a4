"""What a small instruct model writes, scripted: one correct brief of a test article, and each
mistake a real 1.5B model made on real news pages, applied to it one at a time.

Queue a mistake on the OpenAI fake (`chat_json(make_mistake(name))`), then either the correct
brief (the repair retry fixed it) or the same mistake again (the retry did not, so the guard must
cut it). The article is written for the tests, in the shape of the pages the mistakes came from.
"""

from __future__ import annotations

import copy

ARTICLE_TITLE = "China tightens rare earth exports; China Rare Earth shares jump 45%"
ARTICLE_TEXT = (
    "On the 9th, China announced export controls on rare earths and related technologies, and Washington "
    "answered within hours.\n\n"
    "Hong Kong-listed China Rare Earth jumped more than 45% to HK$0.62, its highest since February 2023, as "
    "turnover swelled to over HK$80 million.\n\n"
    "The Wall Street Journal said on the 15th that Beijing expects the stock market to push Washington back "
    "to the table. Customs officers said they had broken up a 25-tonne antimony smuggling ring.\n\n"
    "A magnet maker said trial substitute magnets cut costs by 18% but performed 20% worse."
)

CORRECT = {
    "relevant": True,
    "title": {"en": "China tightens rare earth exports as China Rare Earth jumps 45%",
              "zh": "中国收紧稀土出口，中国稀土股价大涨45%"},
    "summary": {
        "en": "China announced export controls on rare earths on the 9th. Shares of China Rare Earth rose more "
              "than 45% to HK$0.62, their highest since February 2023.",
        "zh": "中国9日宣布对稀土实施出口管制。中国稀土股价大涨超45%，报0.62港元，创2023年2月以来新高。",
    },
    "figures": [
        {"text": "more than 45%", "label": {"en": "China Rare Earth share rise", "zh": "中国稀土股价涨幅"}},
        {"text": "HK$0.62", "label": {"en": "China Rare Earth share price", "zh": "中国稀土股价"}},
        {"text": "over HK$80 million", "label": {"en": "Turnover", "zh": "成交额"}},
    ],
}


def _invented_month(reply: dict) -> None:
    # The article says "the 9th": a month is in no source.
    reply["summary"]["zh"] = reply["summary"]["zh"].replace("中国9日", "中国9月9日")


def _invented_year(reply: dict) -> None:
    reply["summary"]["en"] = reply["summary"]["en"].replace("on the 9th", "on the 9th, as in 2024")


def _changed_unit(reply: dict) -> None:
    # A share price becomes a commodity price.
    reply["summary"]["en"] = reply["summary"]["en"].replace("to HK$0.62,", "to HK$0.62 per tonne,")


def _mixed_language(reply: dict) -> None:
    reply["title"]["zh"] = "中国收紧稀土出口： export controls和股价飙升"


def _english_slot_in_chinese(reply: dict) -> None:
    # Written in Chinese, and with a date that is in no source.
    reply["summary"]["en"] = "中国于2023年12月1日宣布对稀土实施出口管制。"


def _sentences_as_figures(reply: dict) -> None:
    reply["figures"] = [
        {"text": "The Wall Street Journal said on the 15th", "label": {"en": "Date", "zh": "日期"}},
        {"text": "Customs officers said they had broken up a 25-tonne antimony smuggling ring",
         "label": {"en": "amount", "zh": "数量"}},
    ] + reply["figures"]


def _empty_summary(reply: dict) -> None:
    reply["summary"]["en"] = "The article discusses the trade tensions between the United States and China."


def _advice(reply: dict) -> None:
    reply["summary"]["en"] += " Investors should buy now."


MISTAKES = {
    "invented month": (_invented_month, "summary.zh"),
    "invented year": (_invented_year, "summary.en"),
    "changed unit": (_changed_unit, "summary.en"),
    "mixed-language slot": (_mixed_language, "title.zh"),
    "English slot in Chinese": (_english_slot_in_chinese, "summary.en"),
    "empty summary": (_empty_summary, "summary.en"),
    "advice to readers": (_advice, "summary.en"),
}


def correct_reply() -> dict:
    return copy.deepcopy(CORRECT)


def make_mistake(name: str) -> dict:
    """The correct brief with the mistake `name` (a key of MISTAKES, or "sentences as figures")."""
    reply = correct_reply()
    (_sentences_as_figures if name == "sentences as figures" else MISTAKES[name][0])(reply)
    return reply


def obeys_planted(reply: dict | None = None) -> dict:
    """A model that did what text planted in the article asked: repeats its claim and its advice."""
    reply = reply or correct_reply()
    reply["summary"]["en"] += " Output tripled to 900 tonnes; readers should sell now."
    reply["summary"]["zh"] += "产量增至900吨，建议读者立即卖出。"
    reply["figures"].append({"text": "900 tonnes", "label": {"en": "Output", "zh": "产量"}})
    return reply
