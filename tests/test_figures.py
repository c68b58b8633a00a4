"""The number parser and key-figure extraction, on realistic English and Chinese news text."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.analyse.numbers import (
    MAX_KEY_FIGURES,
    Number,
    date_parts,
    extract_figures,
    find_numbers,
    generic_label,
    supports,
    values_match,
)
from bot.analyse.numbers import dates, lexicon, prefix, scan, suffix, width
from bot.models import MAX_FIGURES, Figure


def one(text: str) -> Number:
    """The only number in `text` (fails the test when there are more or none)."""
    found = find_numbers(text)
    assert len(found) == 1, f"expected one number in {text!r}, got {found}"
    return found[0]


def parsed(text: str) -> list[tuple[str, float, str, str]]:
    return [(n.text, n.value, n.unit, n.kind) for n in find_numbers(text)]


def first(text: str, fragment: str) -> Number:
    for n in find_numbers(text):
        if n.text == fragment:
            return n
    raise AssertionError(f"{fragment!r} not found in {parsed(text)}")


# --------------------------------------------------------------------------- single forms

@pytest.mark.parametrize("text, value, unit, kind, fragment", [
    # thousands separators, decimals
    ("Exports fell to 4,000 tonnes in May.", 4000, "t", "quantity", "4,000 tonnes"),
    ("The quota rose to 4,000.5 tonnes.", 4000.5, "t", "quantity", "4,000.5 tonnes"),
    ("Output reached 1,234,567 metric tons last year.", 1234567, "t", "quantity", "1,234,567 metric tons"),
    ("The shipment weighed 250 kg.", 250, "kg", "quantity", "250 kg"),
    ("Officers found 1,200 kilograms of gallium.", 1200, "kg", "quantity", "1,200 kilograms"),
    ("A 5,000t cargo of ore was held.", 5000, "t", "quantity", "5,000t"),
    ("Smelters shipped 50kt of tungsten.", 50000, "t", "quantity", "50kt"),
    ("Output hit 2.7m tonnes of ore.", 2.7e6, "t", "quantity", "2.7m tonnes"),
    # percentages
    ("Prices jumped 45% on Monday.", 45, "%", "percent", "45%"),
    ("Prices jumped 45 per cent on Monday.", 45, "%", "percent", "45 per cent"),
    ("Prices jumped 45 percent on Monday.", 45, "%", "percent", "45 percent"),
    ("Margins narrowed by 2 percentage points.", 2, "pp", "percent", "2 percentage points"),
    ("Tariffs rose to forty-five percent.", 45, "%", "percent", "forty-five percent"),
    # money
    ("The deal is worth $18.4 billion.", 18.4e9, "USD", "money", "$18.4 billion"),
    ("The deal is worth US$18.4bn.", 18.4e9, "USD", "money", "US$18.4bn"),
    ("Lynas raised A$500 million.", 5e8, "AUD", "money", "A$500 million"),
    ("Shares closed at HK$0.62.", 0.62, "HKD", "money", "HK$0.62"),
    ("A fund of RMB 2 billion was set up.", 2e9, "CNY", "money", "RMB 2 billion"),
    ("A fund of RMB2bn was set up.", 2e9, "CNY", "money", "RMB2bn"),
    ("Fines reached €300 million.", 3e8, "EUR", "money", "€300 million"),
    ("Fines reached 300 million euros.", 3e8, "EUR", "money", "300 million euros"),
    ("It cost ¥1,890 per kilogram.", 1890, "CNY/kg", "money", "¥1,890 per kilogram"),
    ("Oxide sold at 1,890 yuan per kilogram.", 1890, "CNY/kg", "money", "1,890 yuan per kilogram"),
    ("Oxide sold at 452,000 yuan a tonne.", 452000, "CNY/t", "money", "452,000 yuan a tonne"),
    ("Antimony traded at $55,000/t in Rotterdam.", 55000, "USD/t", "money", "$55,000/t"),
    ("Antimony traded at $55,000 per metric ton.", 55000, "USD/t", "money", "$55,000 per metric ton"),
    ("The firm lost 80 million Hong Kong dollars.", 8e7, "HKD", "money", "80 million Hong Kong dollars"),
    ("The firm lost 80 million US dollars.", 8e7, "USD", "money", "80 million US dollars"),
    ("The firm lost 80 million dollars.", 8e7, "USD", "money", "80 million dollars"),
    ("Revenue was 3 trillion yen.", 3e12, "JPY", "money", "3 trillion yen"),
    ("The loan was USD 5 million.", 5e6, "USD", "money", "USD 5 million"),
    ("Costs rose $5m.", 5e6, "USD", "money", "$5m"),
    ("The dividend is HK$0.15 per share.", 0.15, "HKD/share", "money", "HK$0.15 per share"),
    # durations
    ("Both sides agreed a 90-day truce.", 90, "day", "duration", "90-day"),
    ("The pause lasts 90 days.", 90, "day", "duration", "90 days"),
    ("Licences take six months to issue.", 6, "month", "duration", "six months"),
    ("The ban runs for 2 years.", 2, "year", "duration", "2 years"),
    # counts
    ("Beijing restricted 3,000 items.", 3000, "item", "count", "3,000 items"),
    ("Beijing listed 12 Chinese companies.", 12, "item", "count", "12 Chinese companies"),
    ("Washington added 28 U.S. defence firms.", 28, "item", "count", "28 U.S. defence firms"),
    ("The rules cover 1,000 dual-use export items.", 1000, "item", "count", "1,000 dual-use export items"),
    ("Controls now cover seven medium and heavy rare earths.", 7, "item", "count",
     "seven medium and heavy rare earths"),
    # multiples
    ("Prices doubled, a 3-fold rise since March.", 3, "x", "number", "3-fold"),
])
def test_english_forms(text, value, unit, kind, fragment):
    n = first(text, fragment)
    assert n.value == pytest.approx(value)
    assert (n.unit, n.kind) == (unit, kind)
    assert text[n.start:n.end] == n.text


@pytest.mark.parametrize("text, value, unit, kind, fragment", [
    ("海关查获走私锑2000吨。", 2000, "t", "quantity", "2000吨"),
    ("今年出口稀土4,000.5吨。", 4000.5, "t", "quantity", "4,000.5吨"),
    ("全年产量约1.2万吨。", 12000, "t", "quantity", "1.2万吨"),
    ("查获镓产品300公斤。", 300, "kg", "quantity", "300公斤"),
    ("查获锗产品15千克。", 15, "kg", "quantity", "15千克"),
    ("出口量为三十多万吨。", 300000, "t", "quantity", "三十多万吨"),
    ("涉案稀土1万多吨。", 10000, "t", "quantity", "1万多吨"),
    ("股价上涨４５％。", 45, "%", "percent", "４５％"),
    ("股价上涨45%。", 45, "%", "percent", "45%"),
    ("税率提高至百分之四十五。", 45, "%", "percent", "百分之四十五"),
    ("税率提高至百分之4.5。", 4.5, "%", "percent", "百分之4.5"),
    ("九成企业已获得许可。", 90, "%", "percent", "九成"),
    ("约7成订单来自海外。", 70, "%", "percent", "7成"),
    ("毛利率上升2个百分点。", 2, "pp", "percent", "2个百分点"),
    ("案值8000万港元。", 8e7, "HKD", "money", "8000万港元"),
    ("股价收于0.62港元。", 0.62, "HKD", "money", "0.62港元"),
    ("罚款2亿元。", 2e8, "CNY", "money", "2亿元"),
    ("投资人民币2亿元。", 2e8, "CNY", "money", "人民币2亿元"),
    ("进口额达184亿美元。", 18.4e9, "USD", "money", "184亿美元"),
    ("市场规模达1.5万亿元。", 1.5e12, "CNY", "money", "1.5万亿元"),
    ("交易额三千万元。", 3e7, "CNY", "money", "三千万元"),
    ("补贴五百亿美元。", 5e10, "USD", "money", "五百亿美元"),
    ("氧化镨钕价格为每公斤1890元。", 1890, "CNY/kg", "money", "每公斤1890元"),
    ("氧化镨钕报1890元/公斤。", 1890, "CNY/kg", "money", "1890元/公斤"),
    ("锑锭报55000美元/吨。", 55000, "USD/t", "money", "55000美元/吨"),
    ("每股派息0.15港元。", 0.15, "HKD/share", "money", "0.15港元"),
    ("欧盟罚款3亿欧元。", 3e8, "EUR", "money", "3亿欧元"),
    ("莱纳斯股价收于8.10澳元。", 8.10, "AUD", "money", "8.10澳元"),
    ("暂停加征关税90天。", 90, "day", "duration", "90天"),
    ("许可审批需要3个月。", 3, "month", "duration", "3个月"),
    ("审批时间缩短为三个月。", 3, "month", "duration", "三个月"),
    ("有效期5年。", 5, "year", "duration", "5年"),
    ("须在30日内申报。", 30, "day", "duration", "30日"),
    ("管制物项共5种。", 5, "item", "count", "5种"),
    ("管制物项共５种。", 5, "item", "count", "５种"),
    ("商务部将12家美国企业列入清单。", 12, "item", "count", "12家"),
    ("涉及3000多项物项。", 3000, "item", "count", "3000多项"),
    ("涉及十五种稀土。", 15, "item", "count", "十五种"),
    ("共破获走私案件26起。", 26, "item", "count", "26起"),
    ("价格上涨3倍。", 3, "x", "number", "3倍"),
])
def test_chinese_forms(text, value, unit, kind, fragment):
    n = first(text, fragment)
    assert n.value == pytest.approx(value)
    assert (n.unit, n.kind) == (unit, kind)
    assert text[n.start:n.end] == n.text


@pytest.mark.parametrize("numeral, value", [
    ("三千", 3000), ("两百万", 2_000_000), ("十五", 15), ("一百零五", 105), ("三千五", 3500),
    ("四十五", 45), ("二十万", 200_000), ("一亿五千万", 150_000_000), ("十万", 100_000), ("一万零五十", 10_050),
])
def test_chinese_numerals_standalone(numeral, value):
    n = one(f"数量达{numeral}，")
    assert n.value == value and n.spelled and n.text == numeral


@pytest.mark.parametrize("text", [
    "一些企业表示观望。",   # 一些 = some
    "中国五矿发布公告。",   # company name
    "三一重工股价走高。",   # company name
    "十四五规划提出目标。",  # plan name, not 145
    "数十家企业受到影响。",  # "dozens of"
    "市场一成不变。",       # idiom, not 10 %
    "这十分重要。",         # 十分 = very
    "第3批清单公布。",      # ordinal
    "万一出口受阻怎么办。",  # 万一 = in case
    "三元材料需求旺盛。",    # ternary (NCM) cathode material, not 3 yuan
])
def test_chinese_words_that_are_not_numbers(text):
    assert find_numbers(text) == []


@pytest.mark.parametrize("text", [
    "Q1 output was flat.",
    "The COVID-19 slowdown hurt demand.",
    "5G base stations use magnets.",
    "Talks resume at 10:30 local time.",
    "Someone often says so.",
    "It ranked No. 3 among suppliers.",
    "The 2nd round of talks ended.",
])
def test_english_tokens_that_are_not_figures(text):
    assert find_numbers(text) == []


# --------------------------------------------------------------------------- dates

@pytest.mark.parametrize("text, fragment, parts", [
    ("商务部2025年6月9日发布公告。", "2025年6月9日", (2025, 6, 9)),
    ("商务部2025年6月发布公告。", "2025年6月", (2025, 6, 0)),
    ("商务部6月9日发布公告。", "6月9日", (0, 6, 9)),
    ("海关总署9日通报。", "9日", (0, 0, 9)),
    ("六月九日起实施。", "六月九日", (0, 6, 9)),
    ("二〇二五年起实施。", "二〇二五年", (2025, 0, 0)),
    ("The rules take effect on June 9, 2025.", "June 9, 2025", (2025, 6, 9)),
    ("The rules take effect on June 9.", "June 9", (0, 6, 9)),
    ("The rules take effect on 9 June 2025.", "9 June 2025", (2025, 6, 9)),
    ("The rules took effect in May 2025.", "May 2025", (2025, 5, 0)),
    ("The rules take effect on the 9th.", "9th", (0, 0, 9)),
    ("Data released 2025-06-09 show a drop.", "2025-06-09", (2025, 6, 9)),
    ("Exports fell in 2024.", "2024", (2024, 0, 0)),
])
def test_dates(text, fragment, parts):
    n = first(text, fragment)
    assert n.kind == "date" and n.unit == "date"
    assert date_parts(n.value) == parts


def test_year_versus_count():
    assert first("In 2024 exporters shipped more.", "2024").kind == "date"
    assert first("Some 2,024 companies applied.", "2,024 companies").kind == "count"
    assert first("Exports reached 2025 tonnes.", "2025 tonnes").kind == "quantity"


def test_duration_months_are_not_dates():
    assert one("审批需要6个月。").kind == "duration"
    assert one("6月出口下降。").kind == "date"


# --------------------------------------------------------------------------- ranges, sentences

def test_range_shares_currency_and_magnitude():
    low, high = find_numbers("The package is worth $10-15 billion.")
    assert (low.value, low.unit) == (10e9, "USD") and (high.value, high.unit) == (15e9, "USD")
    low, high = find_numbers("出口量10万至15万吨。")
    assert (low.value, low.unit, low.kind) == (1e5, "t", "quantity")
    assert (high.value, high.unit) == (1.5e5, "t")
    low, high = find_numbers("Duties of 3 to 5 percent apply.")
    assert (low.value, low.unit) == (3, "%") and (high.value, high.unit) == (5, "%")


def test_full_sentence_english():
    text = ("Shares of China Northern Rare Earth jumped 9.8% to HK$0.62 on June 9, 2025, after Beijing "
            "added 3,000 items and 12 Chinese companies to its export control list.")
    assert parsed(text) == [
        ("9.8%", 9.8, "%", "percent"),
        ("HK$0.62", 0.62, "HKD", "money"),
        ("June 9, 2025", 20250609, "date", "date"),
        ("3,000 items", 3000, "item", "count"),
        ("12 Chinese companies", 12, "item", "count"),
    ]


def test_full_sentence_chinese():
    text = "海关总署6月9日通报，查获走私锑2000吨，案值8000万港元，涉案企业12家，股价下跌3.5%。"
    assert parsed(text) == [
        ("6月9日", 609, "date", "date"),
        ("2000吨", 2000, "t", "quantity"),
        ("8000万港元", 8e7, "HKD", "money"),
        ("12家", 12, "item", "count"),
        ("3.5%", 3.5, "%", "percent"),
    ]


def test_precision_follows_the_last_given_digit():
    assert one("worth $18.4 billion").precision == pytest.approx(1e8)
    assert one("价值184亿美元").precision == pytest.approx(1e8)
    assert one("数量达三千，").precision == 1000
    assert one("up 45%").precision == 1
    assert one("up 4.25%").precision == pytest.approx(0.01)


def test_offsets_are_verbatim_with_full_width_text():
    text = "出口量为１２，０００吨，同比增长４５．５％，罚款８０００万港元。"
    numbers = find_numbers(text)
    assert [(n.value, n.unit) for n in numbers] == [(12000, "t"), (45.5, "%"), (8e7, "HKD")]
    for n in numbers:
        assert text[n.start:n.end] == n.text
    assert numbers[0].text == "１２，０００吨"


def test_chinese_comma_is_not_a_thousands_separator():
    assert parsed("涉及5种，12家企业") == [("5种", 5, "item", "count"), ("12家", 12, "item", "count")]


# --------------------------------------------------------------------------- matching

@pytest.mark.parametrize("a, b", [
    ("80,000,000", "80 million"),
    ("HK$80 million", "8000万港元"),
    ("$18.4 billion", "184亿美元"),
    ("45%", "百分之四十五"),
    ("90%", "九成"),
    ("about 1.3 billion", "1,287,000,000"),
    ("2,000 tonnes", "2000吨"),
    ("2 tonnes", "2,000 kg"),
    ("1,890 yuan per kilogram", "每公斤1890元"),
    ("1,890 yuan", "1890元/公斤"),
    ("90 days", "90天"),
    ("3,000 items", "3000项"),
    ("June 9", "2025年6月9日"),
    ("2025", "2025年6月"),
    ("12 companies", "12"),
])
def test_values_match(a, b):
    na = find_numbers(a)[-1]
    nb = find_numbers(b)[-1]
    assert values_match(na, nb) and values_match(nb, na)


@pytest.mark.parametrize("a, b", [
    ("37%", "45%"),
    ("HK$80 million", "8000万元"),          # different currency
    ("$80 million", "HK$80 million"),
    ("45%", "45 percentage points"),
    ("1,890 yuan per kilogram", "1890元/吨"),  # different price unit
    ("90 days", "90 months"),
    ("2 tonnes", "2 kg"),
    ("June 9", "June 10"),
    ("2024", "2025年6月"),
    ("4,000", "3,980"),
    ("2 billion", "1.6 billion"),            # rounding that far is not a restatement
    ("2025", "2025 tonnes"),                  # a year is not a quantity
])
def test_values_do_not_match(a, b):
    na = find_numbers(a)[-1]
    nb = find_numbers(b)[-1]
    assert not values_match(na, nb) and not values_match(nb, na)


def test_supports_allows_rounding_but_not_invented_precision():
    source = one("8万")
    assert supports(source, one("80,000"))
    assert not supports(source, one("82,000"))
    assert supports(one("1,287,000,000"), one("1.3 billion"))
    assert not supports(one("3,980 tonnes"), one("4,000 tonnes"))
    assert supports(one("3,980 tonnes"), one("4,000 tonnes"), approximate=True)
    assert not supports(one("3,700 tonnes"), one("4,000 tonnes"), approximate=True)


# --------------------------------------------------------------------------- key figures

EN_ARTICLE = """BEIJING, June 9 (Reporter) - Prices of neodymium-praseodymium oxide rose 12.5% in May to
452,000 yuan per tonne, as China's export controls on seven medium and heavy rare earths squeezed supply.
Customs officers seized 2,150 tonnes of smuggled antimony worth $18.4 billion, officials said in 2025.
Shares of China Northern Rare Earth jumped 9.8% on Monday. The ministry added 28 U.S. companies to its
export control list.
[1] Media enquiries: 12345678.
"""

ZH_ARTICLE = """新华社北京6月9日电 海关总署9日通报，今年以来全国海关共查获走私稀土2150吨，案值8000万港元。
据统计，氧化镨钕价格涨至每公斤452元，较上月上涨12.5%。美国对华加征34%的关税，商务部将28家美国企业列入出口管制管控名单。
北方稀土股价上涨9.8%。2025年1-5月，稀土出口量下降。
"""


def test_extract_figures_english_ranking_and_labels():
    figures = extract_figures(EN_ARTICLE, "en")
    assert all(isinstance(f, Figure) for f in figures)
    assert len(figures) == 6
    texts = [f.text for f in figures]
    for f in figures:
        assert f.text in EN_ARTICLE  # verbatim
        assert f.label.get("en") and f.label.get("zh")
    # Story figures first: money/percent/quantities, never the year or the phone-like number.
    assert texts[0] == "452,000 yuan per tonne"
    assert set(texts[:5]) >= {"12.5%", "$18.4 billion", "2,150 tonnes", "9.8%"}
    assert "2025" not in texts and "12345678" not in texts and "1" not in texts
    by_text = {f.text: f for f in figures}
    assert by_text["2,150 tonnes"].label["en"] == "smuggled antimony"
    assert "Rare Earth jumped" in by_text["9.8%"].label["en"]
    assert by_text["2,150 tonnes"].label["zh"] == "数量（吨）"
    assert by_text["$18.4 billion"].label["zh"] == "金额（美元）"
    assert by_text["452,000 yuan per tonne"].label["zh"] == "价格（人民币/吨）"
    assert (by_text["452,000 yuan per tonne"].value, by_text["452,000 yuan per tonne"].unit) == (452000, "CNY/t")


def test_extract_figures_chinese_ranking_and_labels():
    figures = extract_figures(ZH_ARTICLE)  # language detected
    texts = [f.text for f in figures]
    assert texts[0] == "8000万港元"
    assert set(texts) >= {"2150吨", "每公斤452元", "12.5%", "34%", "9.8%"}
    by_text = {f.text: f for f in figures}
    assert by_text["8000万港元"].label == {"zh": "案值", "en": "amount (HKD)"}
    assert by_text["34%"].label["zh"] == "关税"
    assert by_text["9.8%"].label["zh"] == "北方稀土股价上涨"
    assert by_text["2150吨"].label["zh"] == "查获走私稀土"
    assert by_text["每公斤452元"].label["en"] == "price (CNY/kg)"
    assert all(f.text in ZH_ARTICLE for f in figures)


@pytest.mark.parametrize("text, lang, fragment, label", [
    ("Washington slapped a 45% tariff on Chinese magnets.", "en", "45%", "tariff on Chinese magnets"),
    ("Customs seized 2,150 tonnes of smuggled antimony.", "en", "2,150 tonnes", "smuggled antimony"),
    ("Exports of gallium fell to 1.2 tonnes in May.", "en", "1.2 tonnes", "gallium fell"),
    ("美国对华加征34%的关税。", "zh", "34%", "关税"),
    ("5月镓出口量降至1.2吨。", "zh", "1.2吨", "镓出口量降至"),        # stops at the earlier number
    ("据海关统计，今年前5个月我国稀土出口量为2.5万吨。", "zh", "2.5万吨", "我国稀土出口量"),
])
def test_labels_from_context(text, lang, fragment, label):
    by_text = {f.text: f for f in extract_figures(text, lang)}
    assert by_text[fragment].label[lang] == label


def test_dates_come_last_and_duplicates_are_dropped():
    text = ("Tariffs of 34% start on June 9. Officials repeated that the 34% duty applies to 2,000 items. "
            "The 34 per cent rate was set in April 2025.")
    figures = extract_figures(text, "en", max_figures=10)
    texts = [f.text for f in figures]
    assert texts.count("34%") == 1 and "34 per cent" not in texts  # same value + unit
    assert texts[-2:] == ["June 9", "April 2025"] or texts[-2:] == ["April 2025", "June 9"]
    assert texts.index("34%") < texts.index("2,000 items")


def test_extract_skips_list_markers_citations_and_bare_years():
    text = "1. Exports fell 20% in 2024 [2].\n2. Imports rose 5%."
    assert [f.text for f in extract_figures(text, "en")] == ["20%", "5%"]


def test_max_figures_and_empty_text():
    assert extract_figures("", "en") == []
    assert len(extract_figures(EN_ARTICLE, "en", max_figures=2)) == 2


def test_generic_labels_for_each_kind():
    cases = {
        "45%": ("percentage", "百分比"),
        "2个百分点": ("percentage points", "百分点"),
        "HK$5 million": ("amount (HKD)", "金额（港元）"),
        "1890元/公斤": ("price (CNY/kg)", "价格（人民币/公斤）"),
        "2000吨": ("quantity (t)", "数量（吨）"),
        "90 days": ("duration (days)", "时长（天）"),
        "12家": ("count", "数量"),
        "June 9": ("date", "日期"),
        "3倍": ("multiple", "倍数"),
    }
    for text, (en, zh) in cases.items():
        n = one(text)
        assert (generic_label(n, "en"), generic_label(n, "zh")) == (en, zh), text


# --------------------------------------------------------------------------- properties

FULL_WIDTH = str.maketrans("0123456789,.", "０１２３４５６７８９，．")


@given(st.integers(min_value=0, max_value=10**13))
def test_thousands_separators_round_trip(n):
    number = one(f"Exports reached {n:,} tonnes.")
    assert (number.value, number.unit, number.kind) == (n, "t", "quantity")


@given(st.integers(min_value=0, max_value=10**9))
def test_full_width_digits_round_trip(n):
    text = f"查获{n:,}吨".translate(FULL_WIDTH)
    number = one(text)
    assert (number.value, number.unit) == (n, "t")
    assert number.text == text[2:]


@given(st.integers(min_value=1, max_value=99_999), st.sampled_from(["万", "亿"]))
def test_wan_yi_round_trip(n, magnitude):
    number = one(f"投资{n}{magnitude}元")
    scale = 1e4 if magnitude == "万" else 1e8
    assert number.value == n * scale and number.unit == "CNY"


@given(st.decimals(min_value="0.1", max_value="999.9", places=1), st.sampled_from(["million", "billion", "bn"]))
def test_english_magnitudes_round_trip(amount, word):
    number = one(f"The fund holds ${amount} {word}." if word != "bn" else f"The fund holds ${amount}bn.")
    scale = 1e6 if word == "million" else 1e9
    assert number.value == pytest.approx(float(amount) * scale, rel=1e-12)
    assert number.unit == "USD"


CN_DIGITS = "零一二三四五六七八九"


def to_chinese(n: int) -> str:
    """Standard Chinese numeral for 1 <= n < 10**12 (independent of the parser)."""
    def section(x: int) -> str:  # 0 < x < 10000
        out, zero = "", False
        for unit, place in (("千", 1000), ("百", 100), ("十", 10), ("", 1)):
            digit = x // place % 10
            if digit:
                if zero:
                    out += "零"
                out += CN_DIGITS[digit] + unit
                zero = False
            elif out:
                zero = True
        return out

    parts = [(n // 10**8, "亿"), (n // 10**4 % 10**4, "万"), (n % 10**4, "")]
    out, need_zero = "", False
    for value, unit in parts:
        if value:
            if out and (need_zero or value < 1000):
                out += "零"
            out += section(value) + unit
            need_zero = False
        elif out:
            need_zero = True
    if out.startswith("一十"):
        out = out[1:]  # 十五, not 一十五
    return out


@given(st.integers(min_value=1, max_value=10**12 - 1))
@settings(max_examples=300)
def test_chinese_numerals_round_trip(n):
    numeral = to_chinese(n)
    number = one(f"出口{numeral}吨")
    assert (number.value, number.unit) == (n, "t"), numeral
    assert number.text == numeral + "吨"


def test_chinese_formatter_examples():
    assert [to_chinese(x) for x in (10, 15, 105, 1005, 10_050, 2_000_000, 100_000_005)] == [
        "十", "十五", "一百零五", "一千零五", "一万零五十", "二百万", "一亿零五"]


EN_SMALL = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
            "sixteen seventeen eighteen nineteen").split()
EN_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()


def to_english(n: int) -> str:
    def below_thousand(x: int) -> str:
        words = []
        if x >= 100:
            words.append(EN_SMALL[x // 100] + " hundred")
            x %= 100
            if x:
                words.append("and")
        if x >= 20:
            words.append(EN_TENS[x // 10 - 2] + ("-" + EN_SMALL[x % 10] if x % 10 else ""))
        elif x:
            words.append(EN_SMALL[x])
        return " ".join(words)

    if n == 0:
        return "zero"
    words = []
    for scale, name in ((10**9, "billion"), (10**6, "million"), (10**3, "thousand"), (1, "")):
        chunk = n // scale % 1000
        if chunk:
            words.append(below_thousand(chunk) + (" " + name if name else ""))
    return " ".join(words)


@given(st.integers(min_value=1, max_value=10**12 - 1))
@settings(max_examples=300)
def test_english_number_words_round_trip(n):
    words = to_english(n)
    number = one(f"They shipped {words} tonnes of ore.")
    assert (number.value, number.unit) == (n, "t"), words


@given(st.integers(min_value=1, max_value=10**6), st.sampled_from([
    ("{n:,} tonnes", "{n}吨"), ("{n:,}%", "百分之{n}"), ("US${n:,}", "{n}美元"), ("{n:,} days", "{n}天"),
]))
def test_representations_match_each_other(n, forms):
    en_form, zh_form = forms
    a = one(en_form.format(n=n))
    b = one(zh_form.format(n=n))
    assert values_match(a, b)
    c = one(en_form.format(n=n + 1))
    assert not values_match(c, b)


@given(st.text(alphabet=st.sampled_from(list("0123456789,.%$ 万亿元吨一二三十百千年月日 tonsmillion per cent HK¥")),
               max_size=40))
@settings(max_examples=300)
def test_find_numbers_never_breaks_on_noise(text):
    for n in find_numbers(text):
        assert text[n.start:n.end] == n.text
        assert n.kind in ("percent", "money", "quantity", "duration", "count", "date", "number")
        assert n.value >= 0


# --------------------------------------------------------------------------- shortcuts = the plain definition

# find_numbers tries each pattern only where it can match: numerals at candidate positions
# (scan.core_matches), dates at candidate positions (dates.date_starts), prefix and suffix patterns
# after a first-character test. With every shortcut off it must find exactly the same.

class _Everything:
    def __contains__(self, item) -> bool:
        return True


def _shortcuts_off(monkeypatch) -> None:
    monkeypatch.setattr(width, "fold_width", lambda text: (
        text if text.isascii() else width._FULLWIDTH_THOUSANDS_RE.sub(",", text).translate(width._FOLD_TABLE)))
    monkeypatch.setattr("bot.analyse.numbers.finder.fold_width", width.fold_width)
    monkeypatch.setattr("bot.analyse.numbers.finder.core_matches",
                        lambda norm, runs, masked: list(scan.CORE_RE.finditer(norm)))
    monkeypatch.setattr(dates, "date_starts", lambda norm, runs: {name: range(len(norm)) for name, _ in dates.DATE_RES})
    monkeypatch.setattr(prefix, "_may_end", lambda head, last_chars: True)
    monkeypatch.setattr(suffix, "_SUFFIX_FIRST", _Everything())
    for name in ("_CN_MAGNITUDE_FIRST", "_CN_CURRENCY_FIRST", "_EN_CURRENCY_AFTER_SPACE"):
        monkeypatch.setattr(suffix, name, _Everything())
    monkeypatch.setattr(suffix._Gate, "allows", lambda self, c, after: True)
    monkeypatch.setattr(suffix, "_UNIT_RULES", tuple(rule._replace(gate=suffix._Gate(_Everything(), _Everything()))
                                                     for rule in suffix._UNIT_RULES))


def _found(text: str) -> list[tuple]:
    return [(n.value, n.unit, n.kind, n.text, n.start, n.end, n.precision, n.spelled) for n in find_numbers(text)]


_SCAN_TOKENS = (list("0123456789０１２,.，-/:%％$ \n\t\u3000") + list("零〇一二两三四五六七八九十百千万亿点年月日号个多余成吨元数第每股公斤")
                + ["one", "Two", "THREE", "seventeen", "seventy", "hundred", "thousand", "million", "a", "A", "and",
                   "often", "money", "weight", "someone", "the", "The", "th", "st", "nd", "June", "Sept.", "May",
                   "March", "Dec", "of", "US$", "HK$", "RMB", "USD", "No.", "百分之", "若干", "fıve", "İ", "ſix", "K",
                   "x", "_", "é", "2025", "2025-06-09", "6月9日", "二〇二五年", "三点五万", "十五", "bn", "m", "k",
                   "per", "cent", "percent", "pp", "tonnes", "t", "kg", "kt", "days", "months", "companies",
                   "rare earth magnets", "times", "-fold", "倍", "to", "至", "人民币", "美元", "港元", "个月", "天",
                   "家", "种", "in", "since", "KİLO", "DOLLARS", "US dollars", "[", "]", "(", ")", "、", "。"])
_scan_texts = st.lists(st.sampled_from(_SCAN_TOKENS), max_size=30).map("".join)
_SPACED_TOKENS = st.lists(st.sampled_from(_SCAN_TOKENS), max_size=14).map(" ".join)

_EDGE_TEXTS = [
    "the 9th", "The  21st of May", "  5th", "May 5", " May\u3000 2025", "Sept., 2025", "Sept.,\n\n2025", "9 of May",
    "on the\t3rd,", "其 2025 年", "6 月 9 号", "十二月三日", "一二三四五六年", "x2025/6/9", "1.2025.6.9", "May2025",
    "Dec 31 2025", "31 Dec.", "5 restored paintings", "5 new rare earth magnets", "5 of the companies",
    "5 big new shiny red firms", "5 a b c d items", "5 a b c items", "5 tariff\n lines", "5 ITEMS", "5 İtems",
    "5 ſhips", "5 (companies)", "5   companies", "5 x " + "y" * 300 + " companies", "三点五万吨", "增长三点五倍达二十万",
    "five million and 3 seventy-two", "a hundred and a thousand", "fıve million", "ſeven tonnes", "x5 5x 3.5.1 10:30",
    "１２，３４５", "３，０００吨", "5，12家", "$10-15 billion", "10万至15万吨", "三到五成", "每吨1890元", "US$5 per KİLO",
]


@pytest.mark.parametrize("text", _EDGE_TEXTS)
def test_shortcuts_change_nothing_on_edge_cases(text, monkeypatch):
    expected = _found(text)
    _shortcuts_off(monkeypatch)
    assert _found(text) == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_scan_texts, _SPACED_TOKENS), min_size=20, max_size=20))
def test_shortcuts_change_nothing(texts):
    expected = [_found(text) for text in texts]
    with pytest.MonkeyPatch.context() as monkeypatch:
        _shortcuts_off(monkeypatch)
        assert [_found(text) for text in texts] == expected


@settings(max_examples=400, deadline=None)
@given(_scan_texts)
def test_core_scan_finds_what_finditer_finds(text):
    norm = width.fold_width(text)
    masked = scan.mask(norm)
    expected = [(m.span(), m.lastgroup, m.group()) for m in scan.CORE_RE.finditer(norm)]
    found = scan.core_matches(norm, scan.digit_runs(norm, masked), masked)
    assert [(m.span(), m.lastgroup, m.group()) for m in found] == expected


@settings(max_examples=400, deadline=None)
@given(st.one_of(_scan_texts, _SPACED_TOKENS, st.sampled_from(_EDGE_TEXTS)))
def test_date_candidates_cover_every_match(text):
    # Every position where a date pattern matches (on its own, not after an earlier match) is a
    # candidate, in ascending order.
    norm = width.fold_width(text)
    runs = scan.digit_runs(norm)
    assert runs == [m.span() for m in re.finditer("[0-9]+", norm)]
    starts = dates.date_starts(norm, runs)
    for name, regex in dates.DATE_RES:
        hits = {i for i in range(len(norm)) if regex.match(norm, i)}
        assert hits <= set(starts.get(name, ())), (name, norm)
    assert all(list(s) == sorted(s) for s in starts.values())


def test_what_the_shortcuts_rest_on():
    # \s is str.isspace, and no such character is above U+3000 (suffix._SPACES).
    spaces = {chr(i) for i in range(0x110000) if chr(i).isspace()}
    assert spaces == {chr(i) for i in range(0x110000) if re.match(r"\s", chr(i))} == suffix._SPACES
    # (?i) matches these for ASCII letters, and nothing else (the gates' letter sets, the mask).
    matched = {chr(i) for i in range(0x110000) if re.match(r"(?i:[a-z])", chr(i))}
    assert matched == set(string.ascii_letters) | set(lexicon.CASE_FOLD_ODDITIES)
    # The mask has a byte for each character.
    for i in range(0, 0x110000, 0x8000):
        text = "".join(map(chr, range(i, i + 0x8000)))
        masked = scan.mask(text)
        assert len(masked) == len(text)
        assert all(chr(b) == (c.lower() if c.isascii() and (c.isalpha() or c == "_") else "0" if "0" <= c <= "9"
                              else " ") for b, c in zip(masked, text))


def test_fold_width_is_the_fold_table_on_every_character():
    # The BMP and the astral blocks with compatibility forms (mathematical letters and digits,
    # enclosed alphanumerics, compatibility ideographs).
    codes = [*range(0xD800), *range(0xE000, 0x10000), *range(0x1D400, 0x1D800), *range(0x1F100, 0x1F200),
             *range(0x2F800, 0x2FA20)]
    chars = "".join(map(chr, codes))
    for i in range(0, len(chars), 4096):
        text = chars[i:i + 4096]
        assert width.fold_width(text) == text.translate(width._FOLD_TABLE)
        framed = "３，０" + text + "１，２"
        assert width.fold_width(framed) == framed.replace("３，０", "3,0").replace("１，２", "1,2").translate(
            width._FOLD_TABLE)


def test_key_figure_default_is_a_briefs_limit():
    assert MAX_KEY_FIGURES == MAX_FIGURES


@pytest.mark.parametrize("text,expected", [
    ("On June 9, 2025 the ministry said", 20250609), ("the 9th of Sept. 2025", 20250909), ("2025/6/9", 20250609),
    ("二〇二五年六月九日", 20250609), ("6 月 9 号", 609), ("since May 2025", 20250500), ("本月9号起", 9),
    ("from May, 2025 on", 20250500), ("the 12th of March", 312),
])
def test_dates_still_found_behind_prefilters(text, expected):
    dates = [n.value for n in find_numbers(text) if n.kind == "date"]
    assert dates == [expected]


@pytest.mark.parametrize("text,unit", [("GBP 5 million", "GBP"), ("RMB 30 billion", "CNY"), ("HK$ 80 million", "HKD"),
                                       ("人民币 50 亿", "CNY"), ("CAD 3.5 bn", "CAD"), ("EUR 12", "EUR"),
                                       ("GBP5 million", "GBP")])
def test_currency_before_the_figure(text, unit):
    assert [(n.kind, n.unit) for n in find_numbers(text)] == [("money", unit)]


def test_magnitude_look_alikes_are_plain_numbers_not_a_crash():
    # Case-insensitive matching lets "mıllıon" (dotless ı) and "MİLLİON" through the magnitude pattern;
    # they are not magnitudes, and an item containing them must not fail its feed's every poll.
    numbers = find_numbers("Output rose to 5 mıllıon tonnes, 3 MİLLİON; two mıllıon")
    assert [(n.value, n.text) for n in numbers] == [(5.0, "5"), (3.0, "3")]
    assert find_numbers("Output rose to 5 million tonnes")[0].value == 5_000_000


def test_units_spelled_with_look_alike_letters_are_plain_numbers_not_a_crash():
    # Case-insensitive unit patterns match these too, and a KeyError here would fail the item's whole
    # feed. As with magnitudes ("mıllıon"), a look-alike spelling is not the unit word: no unit.
    found = {text: [(n.value, n.unit) for n in find_numbers(text)]
             for text in ("5 KİLO", "5 MİNUTES", "US$5 per KİLO", "5 DOLLARS", "5 DOLLARS per kilo")}
    assert found == {"5 KİLO": [(5.0, "")], "5 MİNUTES": [(5.0, "")], "US$5 per KİLO": [(5.0, "USD")],
                     "5 DOLLARS": [(5.0, "USD")], "5 DOLLARS per kilo": [(5.0, "USD/kg")]}
