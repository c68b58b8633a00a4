"""The grounding guard: numbers in model-written brief text must stand in the source article."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.summarise.grounding import (
    GroundingReport,
    check_brief,
    check_brief_text,
    drop_failing_sentences,
    drop_unsupported_sentences,
    figure_in_source,
    figure_is_span,
    problem_kind,
    repair_feedback,
    unsupported_numbers,
)

ZH_SOURCE = (
    "新华社北京6月9日电 海关总署9日通报，2025年以来全国海关共查获走私稀土2150吨，案值8000万港元，"
    "涉案企业12家。据统计，氧化镨钕价格涨至每公斤452元，较上月上涨12.47%。美国对华加征34%的关税，"
    "商务部将28家美国企业列入出口管制管控名单，管制物项达3000多项。北方稀土（600111）股价上涨超45%，"
    "近九成出口企业已获得许可，审批时间为45个工作日。"
)

EN_SOURCE = (
    "BEIJING, June 9 (Reporter) - China's export licences for seven medium and heavy rare earths now take "
    "about 45 working days, and prices of neodymium-praseodymium oxide rose 12.5% in May to 452,000 yuan "
    "per tonne. Customs seized 2,150 tonnes of smuggled antimony worth $18.4 billion in 2025. Washington "
    "kept a 145% tariff on Chinese magnets while a 90-day truce holds. Shares of Lynas rose 6.2% to A$8.10; "
    "the company said output would reach 10,500 tonnes, up from 1,287,000 kg a decade ago."
)


# --------------------------------------------------------------------------- figure_in_source

@pytest.mark.parametrize("figure, source", [
    ("8000万港元", "案值8000万港元。"),
    ("45%", "股价上涨４５％"),                      # full-width in the source
    ("４５％", "股价上涨45%"),                      # full-width in the figure
    ("$18.4 billion", "worth $18.4\n billion in 2025"),  # whitespace differs
    ("8000 万港元", "案值8000万港元"),               # extraction added a space
    ("US$18.4BN", "worth us$18.4bn"),               # case
])
def test_figure_in_source(figure, source):
    assert figure_in_source(figure, source)


@pytest.mark.parametrize("figure, source", [
    ("8000万港元", "案值8000万元"),
    ("37%", "rose 45%"),
    ("", "anything"),
])
def test_figure_not_in_source(figure, source):
    assert not figure_in_source(figure, source)


# --------------------------------------------------------------------------- cross-language support

@pytest.mark.parametrize("candidate", [
    "Customs seized 2,150 tonnes of smuggled rare earths worth HK$80 million this year.",
    "China seizes 2,150t of smuggled rare earths in 2025",
    "Customs seized a 2,150-tonne haul worth HK$80mn.",
    "NdPr oxide rose 12.5% to 452 yuan/kg.",                 # 12.5 rounds 12.47
    "NdPr oxide prices climbed to 452 yuan per kilogram.",
    "The US imposed a 34% tariff; Beijing listed 28 US firms and over 3,000 items.",
    "Shares of China Northern Rare Earth rose over 45% on June 9.",
    "Nearly 90% of exporters have licences; approval takes 45 working days.",
    "Twelve companies were involved, the agency said on the 9th.",  # spelled: not checked
    "Two outlets reported it; one said approvals were slow.",
    "北方稀土（600111）股价上涨超45%。",
    "海关查获走私稀土2150吨，案值约8000万港元。",
])
def test_english_and_chinese_claims_grounded_in_chinese_source(candidate):
    assert unsupported_numbers(candidate, ZH_SOURCE) == []


@pytest.mark.parametrize("candidate", [
    "海关查获走私锑2150吨，价值184亿美元。",                   # 18.4 billion = 184亿
    "氧化镨钕价格上涨12.5%，至每吨45.2万元。",                 # 452,000 yuan per tonne
    "美国维持145%的关税，休战期为90天。",
    "莱纳斯股价上涨6.2%至8.10澳元。",
    "产量将达到10500吨，此前约为1287吨。",                     # 1,287,000 kg = 1287 t
    "The output was about 1.3 million kg a decade ago.",      # rounding an exact source number
    "2025年6月9日，海关公布了数据。",
    "七种中重稀土的出口许可约需45个工作日。",
])
def test_chinese_claims_grounded_in_english_source(candidate):
    assert unsupported_numbers(candidate, EN_SOURCE) == []


@pytest.mark.parametrize("candidate, bad", [
    ("Shares rose 37% on Monday.", ["37%"]),
    ("Customs seized 2,500 tonnes of rare earths.", ["2,500 tonnes"]),
    ("The fine was HK$8 million.", ["HK$8 million"]),
    ("The case was worth 80 million yuan.", ["80 million yuan"]),     # wrong currency
    ("In 2024, seizures doubled.", ["2024"]),                          # a year must be there too
    ("The rules took effect on June 10.", ["June 10"]),
    ("NdPr oxide sold at 452 yuan per tonne.", ["452 yuan per tonne"]),  # per kg in the source
    ("Beijing listed 29 US firms and 3,100 items.", ["29 US firms", "3,100 items"]),
    ("Prices rose 12.5 percentage points.", ["12.5 percentage points"]),
    ("Approval takes six months.", ["six months"]),                    # spelled, but with a unit
    ("That is two tonnes more.", ["two tonnes"]),
    ("股价上涨37%。", ["37%"]),
    ("案值8000万美元。", ["8000万美元"]),
    ("涉案企业15家，罚款2亿元。", ["15家", "2亿元"]),
    ("价格上涨百分之三十七。", ["百分之三十七"]),
])
def test_invented_numbers_are_rejected(candidate, bad):
    assert unsupported_numbers(candidate, ZH_SOURCE) == bad


def test_rounding_may_not_invent_precision():
    source = "出口量约8万吨，同比增长36.6%。"
    assert unsupported_numbers("Exports were 80,000 tonnes.", source) == []
    assert unsupported_numbers("Exports were 82,000 tonnes.", source) == ["82,000 tonnes"]
    assert unsupported_numbers("Exports rose 37%.", source) == []           # 36.6 rounds to 37
    assert unsupported_numbers("Exports rose 40%.", source) == ["40%"]      # 40 is not 36.6 rounded
    assert unsupported_numbers("Exports rose nearly 40%.", source) == ["40%"]  # still over 5 % off


def test_approximate_wording_allows_rounding_trailing_zeros():
    source = "Customs seized 3,980 tonnes of antimony."
    assert unsupported_numbers("Customs seized 4,000 tonnes of antimony.", source) == ["4,000 tonnes"]
    assert unsupported_numbers("Customs seized nearly 4,000 tonnes of antimony.", source) == []
    assert unsupported_numbers("海关查获近4000吨锑。", source) == []
    assert unsupported_numbers("Customs seized nearly 5,000 tonnes.", source) == ["5,000 tonnes"]


def test_substring_digits_are_not_support():
    # "37%" must not be found inside "137%", nor "12" inside "12.5" as text.
    source = "Tariffs reached 137% and prices rose 12.8%."
    assert unsupported_numbers("Tariffs reached 37%.", source) == ["37%"]
    assert unsupported_numbers("Prices rose 12 percent.", source) == ["12 percent"]


def test_repeated_mentions_reported_once_in_order():
    assert unsupported_numbers("Up 37%. Again, 37%. Then 41%.", ZH_SOURCE) == ["37%", "41%"]


def test_empty_inputs():
    assert unsupported_numbers("", ZH_SOURCE) == []
    assert unsupported_numbers("No figures here at all.", "") == []
    assert unsupported_numbers("Prices rose 5%.", "") == ["5%"]


# --------------------------------------------------------------------------- sentence dropping

def test_drop_unsupported_sentences_english():
    text = ("Customs seized 2,150 tonnes of smuggled rare earths. Profits rose 37% in 2024. "
            "The US imposed a 34% tariff. Analysts expect more controls.")
    kept, removed = drop_unsupported_sentences(text, ZH_SOURCE, "en")
    assert removed == ["Profits rose 37% in 2024."]
    assert kept == ("Customs seized 2,150 tonnes of smuggled rare earths. The US imposed a 34% tariff. "
                    "Analysts expect more controls.")


def test_drop_unsupported_sentences_chinese():
    text = "海关查获走私稀土2150吨。利润增长37%！美国对华加征34%的关税。分析人士预计管制将继续。"
    kept, removed = drop_unsupported_sentences(text, EN_SOURCE, "zh")
    # The English source has 2,150 tonnes but a 145% tariff, not 34%.
    assert removed == ["利润增长37%！", "美国对华加征34%的关税。"]
    assert kept == "海关查获走私稀土2150吨。分析人士预计管制将继续。"
    kept_zh, removed_zh = drop_unsupported_sentences(text, ZH_SOURCE, "zh")
    assert removed_zh == ["利润增长37%！"]
    assert kept_zh == "海关查获走私稀土2150吨。美国对华加征34%的关税。分析人士预计管制将继续。"


def test_drop_detects_language_when_not_given():
    kept, removed = drop_unsupported_sentences("股价上涨超45%。利润增长37%。", ZH_SOURCE)
    assert (kept, removed) == ("股价上涨超45%。", ["利润增长37%。"])


def test_drop_everything_and_nothing():
    assert drop_unsupported_sentences("Up 99%. Down 98%.", ZH_SOURCE, "en") == ("", ["Up 99%.", "Down 98%."])
    text = "Customs seized 2,150 tonnes. Prices rose 12.5%."
    assert drop_unsupported_sentences(text, ZH_SOURCE, "en") == (text, [])
    assert drop_unsupported_sentences("", ZH_SOURCE, "en") == ("", [])


# --------------------------------------------------------------------------- brief check

def test_check_brief_text_reports_per_field():
    fields = {
        "title.en": "China seizes 2,150t of smuggled rare earths",
        "title.zh": "海关查获走私稀土2150吨",
        "summary.en": "Customs seized 2,150 tonnes worth HK$90 million; profits rose 37%.",
        "summary.zh": "案值8000万港元，涉案企业13家。",
    }
    report = check_brief_text(fields, ZH_SOURCE)
    assert isinstance(report, GroundingReport)
    assert not report.ok
    assert report.unsupported == {"summary.en": ["HK$90 million", "37%"], "summary.zh": ["13家"]}
    assert report.failed_fields == ["summary.en", "summary.zh"]
    assert report.checked == list(fields)
    assert "summary.en: HK$90 million, 37%" in report.describe()


def test_check_brief_text_ok():
    report = check_brief_text({"title.en": "Rare-earth seizures: 2,150 tonnes", "summary.zh": "股价上涨超45%。"},
                              ZH_SOURCE)
    assert report.ok and report.unsupported == {} and report.describe() == "all numbers grounded"


# --------------------------------------------------------------------------- properties

@given(st.decimals(min_value="0.1", max_value="300", places=1))
def test_percent_grounded_across_languages(p):
    source = f"关税税率提高至{p}%。"
    assert unsupported_numbers(f"The tariff rises to {p}%.", source) == []
    assert unsupported_numbers(f"The tariff rises to {p} per cent.", source) == []
    other = p + 1
    assert unsupported_numbers(f"The tariff rises to {other}%.", source) == [f"{other}%"]


@given(st.integers(min_value=1, max_value=99_999))
def test_wan_money_grounds_english_millions(n):
    source = f"案值{n}万港元。"
    # n万 = n * 10,000 = n/100 million
    millions = n / 100
    text = f"HK${millions:g} million"
    assert unsupported_numbers(f"The case was worth {text}.", source) == []
    assert unsupported_numbers(f"The case was worth HK${n * 10_000 + 10_000:,}.", source) == [
        f"HK${n * 10_000 + 10_000:,}"]


# --------------------------------------------------------------------------- units and date parts

@pytest.mark.parametrize("candidate, source, bad", [
    ("Shares rose to HK$0.62 per tonne.", "中国稀土股价报0.62港元。", ["HK$0.62 per tonne"]),  # a share price
    ("Shares rose to HK$0.62 a share.", "中国稀土股价报0.62港元。", []),
    ("Shares rose to HK$0.62.", "中国稀土股价报0.62港元。", []),          # a claim may leave a unit out
    ("Prices hit 452 yuan.", "每公斤452元。", []),
    ("Output reached 45 tonnes.", "Output reached 45.", ["45 tonnes"]),  # nor read one into a bare number
    ("Output rose 45%.", "Output reached 45.", ["45%"]),
    ("Beijing listed 28 firms.", "Beijing listed 28.", []),               # a count may name what it counts
    ("Approval takes 45 working days.", "审批需要45个工作日。", []),
    ("Approval takes 45 days.", "审批需要45个工作日。", ["45 days"]),  # working days are not days
])
def test_a_number_stands_only_with_a_compatible_unit(candidate, source, bad):
    assert unsupported_numbers(candidate, source) == bad


@pytest.mark.parametrize("candidate, source, bad", [
    ("9月9日，中国宣布管制。", "On the 9th, China announced controls.", ["9月9日"]),   # a day stays a day
    ("9日，中国宣布管制。", "On the 9th, China announced controls.", []),
    ("June 9", "In June, talks resumed. On the 9th, China announced controls.", ["June 9"]),  # not pieced together
    ("2025年6月9日", "BEIJING, June 9 - Customs data for 2025 show a rise.", []),   # a year may come from elsewhere
    ("2023年12月", "股价创2023年2月以来新高。12月18日，欧盟达成协议。", ["2023年12月"]),
    ("In 2024, seizures doubled.", "Seizures doubled in May 2025.", ["2024"]),
    ("On 2023年12月1日, China announced controls.", "On the 9th, China announced controls.", ["2023年12月1日"]),
])
def test_a_date_carries_only_the_parts_the_source_gives(candidate, source, bad):
    assert unsupported_numbers(candidate, source) == bad


@pytest.mark.parametrize("figure, is_span", [
    ("25吨", True), ("超45%", True), ("逾8000万港元", True), ("HK$80 million", True), ("up 45% to HK$0.62", True),
    ("seven medium and heavy rare earth elements", True),
    ("The Wall Street Journal reported on the 15th", False), ("25吨锑金属走私案", False),
    ("特斯拉Optimus二代电机试用替代磁体成本降18%", False), ("no number here", False), ("1, 2 and 3", False),
])
def test_a_key_figure_is_a_short_span(figure, is_span):
    assert figure_is_span(figure) is is_span


# --------------------------------------------------------------------------- the whole brief

def test_check_brief_gives_each_problem_its_reason_and_kind():
    fields = {"title.en": "China seizes 2,150 tonnes of rare earths", "title.zh": "海关查获走私稀土： seized haul",
              "summary.en": "海关查获走私稀土2150吨。", "summary.zh": "海关查获走私稀土2150吨。建议投资者买入。"}
    report = check_brief(fields, ZH_SOURCE)
    assert report.unsupported == {
        "title.zh": ["English words in the Chinese text: seized, haul"],
        "summary.en": ["written in Chinese, not English"],
        "summary.zh": ["advice to readers: '建议投资者买入。'"]}
    assert [problem_kind(p) for problems in report.unsupported.values() for p in problems] == [
        "language", "language", "advice"]
    assert problem_kind("37% (not in the article)") == "number"
    feedback = repair_feedback(report.unsupported)
    assert "- title.zh: English words in the Chinese text: seized, haul" in feedback
    assert "Reply with the complete JSON object only." in feedback


@pytest.mark.parametrize("text, source, ok", [
    ("A股和H股上涨，CPI走高，vivo发布新机。", "A股、H股上涨3%。CPI数据公布。vivo新品。", True),  # names, tickers, acronyms
    ("特朗普与Bessent会谈。", "Trump met Bessent in London.", True),
    ("谈判呈现phased easing态势。", "The talks showed phased easing.", False),  # words, not names
    ("The谈判继续。", "The talks went on.", False),
])
def test_chinese_slot_keeps_only_names_from_the_source(text, source, ok):
    assert check_brief({"summary.zh": text}, source).ok is ok


@pytest.mark.parametrize("text, ok", [
    ("Vice Premier He Lifeng (何立峰) led the talks.", True),   # a name standing in the source
    ("He Lifeng led the talks on 6月9日.", False),              # 月, 日: no name
    ("何立峰率团在伦敦谈判。", False),
])
def test_english_slot_keeps_only_chinese_names_from_the_source(text, ok):
    assert check_brief({"summary.en": text}, "国务院副总理何立峰6月9日在伦敦与美方会谈。").ok is ok


def test_drop_failing_sentences_keeps_the_facts():
    text = ("The article discusses rare earth smuggling. Customs seized 2,150 tonnes of smuggled rare earths. "
            "Investors should buy now. 海关查获走私稀土。")
    kept, removed = drop_failing_sentences(text, ZH_SOURCE, "en")
    assert kept == "Customs seized 2,150 tonnes of smuggled rare earths."
    assert removed == ["The article discusses rare earth smuggling.", "Investors should buy now.", "海关查获走私稀土。"]
    assert drop_failing_sentences("本文讨论了稀土走私问题。海关查获走私稀土2150吨。", ZH_SOURCE, "zh") == (
        "海关查获走私稀土2150吨。", ["本文讨论了稀土走私问题。"])
    # News of a trade is no advice; a sentence about the article that states a figure is a fact.
    text = "The fund sold its stake in the trader. The article says customs seized 2,150 tonnes."
    assert drop_failing_sentences(text, ZH_SOURCE + "该基金已出售所持股份。", "en") == (text, [])
