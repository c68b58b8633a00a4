"""find_numbers' shortcuts change nothing: it finds what the plain implementation finds.

`reference/figures_v1.py` is a verbatim copy of bot/figures.py before the shortcuts (candidate
positions for the date patterns, first-character gates for the suffix patterns, ...). Every text
we have and a seeded grammar fuzz go through both; every Number must be the same, field by field.
"""

from __future__ import annotations

import ast
import random
import re
from collections import Counter
from dataclasses import fields

from bench.corpus import make_corpus, render_feed
from bot.analyse.numbers import figures
from bot.ingest.parse import parse_feed
from bot.analyse.text import html_to_text
from corpora import TESTS, feed_files, parsed_entries, seed_pages
from reference import figures_v1 as reference



def numbers(module, text: str) -> list[tuple] | str:
    """Every field of every Number found (float.hex: exact, and keeps the sign of zero), or the
    exception raised: the old code raises on a few inputs ("5 KİLO"); see same_numbers."""
    try:
        found = module.find_numbers(text)
    except Exception as exc:  # noqa: BLE001 - compared, not handled
        return f"raises {type(exc).__name__}: {exc}"
    return [tuple(v.hex() if isinstance(v, float) else v for v in (getattr(n, f.name) for f in fields(n)))
            for n in found]


def same_numbers(text: str) -> list[tuple] | str:
    """The new code's numbers, asserted equal to the old code's. Where the old code raised (a unit
    word spelled with İ, ı, ſ or the Kelvin sign: a KeyError that failed the whole feed), the new
    one must find numbers instead."""
    new, old = numbers(figures, text), numbers(reference, text)
    if isinstance(old, str) and old.startswith("raises KeyError"):
        assert isinstance(new, list), (text, new)
    else:
        assert new == old, text
    return new


def assert_same(texts) -> int:
    """Both implementations on every text; returns how many numbers they found."""
    found = 0
    for text in texts:
        assert figures.fold_width(text) == reference.fold_width(text), text
        new = same_numbers(text)
        found += len(new) if isinstance(new, list) else 0
    return found


def feed_texts(paths) -> list[str]:
    return [t for e in parsed_entries(paths) for t in (e.title, e.text)]


def test_fixture_and_sample_feeds():
    texts = feed_texts(feed_files())
    assert len(texts) > 20
    assert assert_same(texts) > 20


def test_every_string_in_the_figures_tests():
    tree = ast.parse((TESTS / "test_figures.py").read_text(encoding="utf-8"))
    texts = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    assert len(texts) > 300
    assert assert_same(sorted(texts)) > 300


def test_bench_corpus():
    texts = []
    for feed in make_corpus(60, 20):
        parsed = parse_feed(render_feed(feed), feed.content_type, "http://x.test/f")
        texts += [t for e in parsed.entries for t in (e.title, e.text)]
    assert len(texts) == 2400
    assert assert_same(texts) > 3000


def test_real_pages_when_present():
    for page in seed_pages():  # absent in CI: nothing to compare
        raw = page.read_text(encoding="utf-8", errors="replace")
        text = html_to_text(raw)
        assert_same([raw, text])
        lines = text.splitlines()
        assert_same(lines)
        assert_same(" ".join(lines[i:i + 3]) for i in range(0, len(lines), 3))


# --------------------------------------------------------------------------- grammar fuzz

_CN_DIGIT_CHARS = "零一二三四五六七八九"


def _cn_numeral(n: int, rng: random.Random) -> str:
    """A Chinese numeral for n (0 <= n < 10**12), sometimes with 两 or a dropped 一."""
    if n == 0:
        return "零"

    def section(v: int) -> str:  # 0 < v < 10000
        out, zero = "", False
        for unit, place in (("千", 1000), ("百", 100), ("十", 10), ("", 1)):
            d = v // place % 10
            if d:
                if zero and out:
                    out += "零"
                digit = "两" if d == 2 and unit in ("千", "百") and rng.random() < 0.3 else _CN_DIGIT_CHARS[d]
                out += digit + unit
                zero = False
            else:
                zero = True
        return out

    parts, out = [(n // 10**8, "亿"), (n // 10**4 % 10**4, "万"), (n % 10**4, "")], ""
    for v, unit in parts:
        if v:
            out += section(v) + unit
    if out.startswith("一十") and rng.random() < 0.7:
        out = out[1:]
    return out


_EN_SMALL = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
             "sixteen seventeen eighteen nineteen").split()
_EN_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()


def _en_words(n: int, rng: random.Random) -> str:
    """English words for 0 <= n < 10**12, with random hyphens, 'and' and capitals."""
    def small(v: int) -> str:  # v < 1000
        words = []
        if v >= 100:
            words += [_EN_SMALL[v // 100], "hundred"]
            v %= 100
            if v and rng.random() < 0.5:
                words.append("and")
        if v >= 20:
            tens, unit = _EN_TENS[v // 10 - 2], v % 10
            words.append(tens + rng.choice("- ") + _EN_SMALL[unit] if unit else tens)
        elif v or not words:
            words.append(_EN_SMALL[v])
        return " ".join(words)

    if n == 0:
        return "zero"
    words = []
    for scale, name in ((10**9, "billion"), (10**6, "million"), (10**3, "thousand"), (1, "")):
        v = n // scale % 1000
        if v:
            words.append(("a" if v == 1 and name and rng.random() < 0.3 else small(v)) + (" " + name if name else ""))
    text = " ".join(words)
    return rng.choice([text, text, text.capitalize(), text.upper()])


_FULL_WIDTH = str.maketrans("0123456789,.%", "０１２３４５６７８９，．％")


def _arabic(rng: random.Random) -> str:
    n = rng.choice([rng.randint(0, 9), rng.randint(10, 99), rng.randint(100, 9999), rng.randint(1900, 2100),
                    rng.randint(10**4, 10**9), rng.randint(10**9, 10**16)])
    text = f"{n:,}" if n >= 1000 and rng.random() < 0.5 else str(n)
    if rng.random() < 0.3:
        text += "." + str(rng.randint(0, 999)).zfill(rng.randint(1, 3))
    if rng.random() < 0.08:
        text = rng.choice("+-−") + text
    if rng.random() < 0.1:
        text = text.translate(_FULL_WIDTH)
    return text


_CURRENCY_BEFORE = ["$", "US$", "U.S. $", "U.S.$", "HK$", "A$", "C$", "S$", "¥", "€", "£", "RMB", "RMB ", "CNY ",
                    "USD ", "HKD", "EUR ", "GBP", "人民币", "港币", "港元", "美元", "欧元", "每吨", "每公斤", "每股"]
_MAGNITUDES = [" million", " billion", " trillion", " thousand", "bn", "mn", "tn", "m", "k", " bn", "万", "亿", "千万",
               "百万", "十万", "万亿", "多万", "余亿", "千", "百", " Million", " mıllıon"]
_UNITS = ["%", "％", " per cent", " percent", " pct", "个百分点", "百分点", " percentage points", " pp", "ppt",
          " tonnes", " tons", " metric tons", "t", "kt", " kg", "kg", " kilograms", "吨", "公吨", "公斤", "千克", "多吨",
          "元", "美元", "亿美元", "亿元", "万元", "港元", "人民币", "欧元", "日元", "英镑", " yuan", " dollars",
          " US dollars", " Hong Kong dollars", " euros", " yen", " USD", " RMB", "元/吨", "美元/公斤", " per tonne",
          " a kilogram", "/kg", " per share", "元每股", " days", " months", "-year", " weeks", " hours", "个月", "个多月",
          "天", "周", "年", "小时", "分钟", "日内", " companies", " items", " rare earth magnets", " new licences",
          " of the firms", "家", "种", "项", "个", "名", "批", "起", "国", "倍", "-fold", " times", "成", "成本",
          "号", "日", "月", "th", "st", "nd", "G", "D", ":30", ".5.1", "", "", "", "", ""]
_DATES = ["2025年6月9日", "2025 年 6 月 9 日", "2025年6月", "2025年", "6月9日", "6月9号", "6 月 9 号", "6月", "6月份",
          "6个月", "9日", "30日内", "二〇二五年六月九日", "二零二四年十二月", "六月九日", "十二月", "三月", "2025-06-09",
          "2025/6/9", "2025.6.9", "2025-6-31", "1899-01-01", "June 9, 2025", "June 9th", "June 9", "Sept. 9",
          "Sep 9 2025", "9 June 2025", "9th of June", "12th of March", "May 2025", "May, 2025", "March 2024",
          "on the 9th", "the 21st", "The 3rd", "Dec. 31", "31 Dec", "Jan 1st, 2026", "in 2024", "since 1999",
          "by 2030", "fiscal 2025", "2025 companies", "in 2024 exporters", "13 月", "32日", "the 9th floor"]
_SPELLED = ["forty-five", "Twenty-one", "a hundred", "a million", "two hundred and fifty", "three billion",
            "seventeen", "one", "ten", "a thousand", "三千", "三千五", "两百万", "十五", "九成", "三到五成", "四点五",
            "三点五万", "百分之四十五", "百分之五", "一亿五", "五六", "十四五", "万一", "数十家", "几百万", "若干",
            "一些", "十分", "五矿", "第三", "often", "money", "someone", "weighty", "fıve", "ſix", "KİLO"]
_ODD = ["138-1234-5678", "+86 10 12345678", "A320", "COVID-19", "Q1", "G7", "5G", "3D", "v3.5.1", "10:30", "1:2",
        "No. 5", "No.12", "#3", "第3", "[1]", "[12]", "\n1. ", "\n2) ", "\n3、", "ISBN 9787111213826", "0.5.2",
        "10-15", "10 to 15", "3~5", "10万至15万吨", "5到8", "$10-15 billion", "3 to 5 percent", "20%-30%",
        "１２，３４５", "３，０００吨", "5，12家", "1,2,3", "1.2.3", "a5b", "x5 5x", "-5", "+3", "2nd", "40th"]
_PROSE_EN = ("the said exports rose fell to of in and a an by about nearly over more than tariff on magnets "
             "rare earth prices company output shares shipments quota Beijing Washington government").split()
_PROSE_ZH = list("稀土出口关税价格同比增长下降公司称据统计今年去年其中约达超过近共计进口产量的了是在")
_SEPARATORS = [" ", " ", " ", "", "", ", ", "，", "。", ". ", "\n", "\n\n", "\t", "\u3000", "\xa0", "; ", "、", "(", ")"]


def _mention(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.35:
        core = _arabic(rng)
    elif r < 0.5:
        core = _cn_numeral(rng.choice([rng.randint(0, 10), rng.randint(11, 9999), rng.randint(10**4, 10**11)]), rng)
        if rng.random() < 0.15:
            core += "点" + "".join(rng.choice(_CN_DIGIT_CHARS) for _ in range(rng.randint(1, 2)))
    elif r < 0.62:
        core = _en_words(rng.choice([rng.randint(0, 20), rng.randint(21, 999), rng.randint(1000, 10**10)]), rng)
    elif r < 0.75:
        return rng.choice(_DATES)
    elif r < 0.85:
        return rng.choice(_SPELLED)
    else:
        return rng.choice(_ODD)
    before = rng.choice(_CURRENCY_BEFORE) if rng.random() < 0.2 else ""
    magnitude = rng.choice(_MAGNITUDES) if rng.random() < 0.3 else ""
    unit = rng.choice(_UNITS) if rng.random() < 0.75 else ""
    return before + core + magnitude + unit


def fuzz_text(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(1, 14)):
        r = rng.random()
        if r < 0.45:
            parts.append(_mention(rng))
        elif r < 0.7:
            parts.append(" ".join(rng.choice(_PROSE_EN) for _ in range(rng.randint(1, 5))))
        elif r < 0.9:
            parts.append("".join(rng.choice(_PROSE_ZH) for _ in range(rng.randint(1, 6))))
        else:
            parts.append(rng.choice(["İ", "ı", "ſ", "K", "é", "_", "—", "–", "~", "至", "到", "to", "per", "每",
                                     "“", "”", '"', "'", "’", "/", "-", ".", ",", ":", "%", "$"]))
        parts.append(rng.choice(_SEPARATORS))
    return "".join(parts)


def test_grammar_fuzz_finds_the_same_numbers():
    rng = random.Random(20260101)
    kinds, units, spelled, dates, raised = Counter(), Counter(), 0, Counter(), 0
    cases = 8000
    for _ in range(cases):
        text = fuzz_text(rng)
        assert figures.fold_width(text) == reference.fold_width(text), text
        new = same_numbers(text)
        if isinstance(new, str):
            raised += 1
            continue
        for n in figures.find_numbers(text):
            kinds[n.kind] += 1
            units[n.unit] += 1
            spelled += n.spelled
        norm = reference.fold_width(text)
        for name, regex in reference._DATE_RES:
            dates[name] += regex.search(norm) is not None
    # The fuzz is not vacuous: every kind, the main units and every date pattern occur often.
    assert all(kinds[k] >= 50 for k in figures.KINDS), kinds
    assert all(units[u] >= 20 for u in ("%", "pp", "t", "kg", "USD", "CNY", "HKD", "EUR", "CNY/t", "day", "month",
                                        "year", "item", "x", "date", "")), units
    assert spelled >= 200
    assert raised == 0  # the new code never raises (the old one did on look-alike letters)
    assert all(dates[name] >= 20 for name, _ in reference._DATE_RES), dates


_SOUP = (list("0123456789０１２,.，．-/:%％$ \n\t") + list("零〇一二两三四五六七八九十百千万亿点年月日号个多余成吨元数第每股公斤")
         + ["one", "Two", "THREE", "seventeen", "seventy", "hundred", "thousand", "million", "billion", "bn", "m",
            "k", "a", "A", "and", "often", "money", "the", "The", "th", "st", "nd", "rd", "June", "Sept.", "May",
            "March", "Mar", "of", "US$", "HK$", "RMB", "USD", "No.", "百分之", "若干", "fıve", "İ", "ſix", "K", "x",
            "_", "é", "2025", "2025-06-09", "6月9日", "二〇二五年", "三点五万", "十五", "per", "cent", "percent",
            "tonnes", "t", "kg", "kt", "days", "months", "companies", "times", "-fold", "倍", "to", "至", "人民币",
            "美元", "港元", "个月", "天", "家", "种", "in", "since", "[", "]", "(", ")", "、", "。", "\ud800"])


def test_token_soup_finds_the_same_numbers():
    # Tokens glued without separators: boundaries, lookbehinds and adjacent matches.
    rng = random.Random(7)
    found = 0
    for _ in range(15000):
        text = "".join(rng.choice(_SOUP) for _ in range(rng.randint(1, 25)))
        new = same_numbers(text)
        found += len(new) if isinstance(new, list) else 0
    assert found > 10000


# --------------------------------------------------------------------------- the facts the shortcuts rest on

def test_whitespace_class_is_str_isspace():
    space = re.compile(r"\s")
    assert all((space.match(chr(i)) is not None) == chr(i).isspace() for i in range(0x110000))


def test_case_insensitive_ascii_letters_and_their_look_alikes():
    # The suffix gates list ASCII letters plus _CASE_FOLD_ODDITIES for the (?i) patterns, and texts
    # with those look-alikes skip the mask (where they are not letters).
    ascii_letters = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    for letter in (re.compile(r"(?i:[a-z])"), re.compile("(?i:" + "|".join("abcdefghijklmnopqrstuvwxyz") + ")")):
        matched = {chr(i) for i in range(0x110000) if letter.match(chr(i))}
        assert matched == ascii_letters | set(figures._CASE_FOLD_ODDITIES)


def test_mask_has_a_byte_for_each_character():
    for i in range(0, 0x110000, 0x8000):
        text = "".join(map(chr, range(i, i + 0x8000)))
        mask = figures._mask(text)
        assert len(mask) == len(text)
        assert all(chr(b) == (c.lower() if c.isascii() and (c.isalpha() or c == "_") else "0" if "0" <= c <= "9"
                              else " ") for b, c in zip(mask, text))


def test_characters_fold_width_skips_fold_to_themselves():
    may_fold = figures._MAY_FOLD_RE
    skipped = [chr(i) for i in range(0x110000) if not may_fold.match(chr(i))]
    assert len(skipped) > 20000
    assert all(reference._FOLD_TABLE[ord(c)] == c for c in skipped)


def test_fold_width_on_every_character():
    # The BMP and the astral blocks with compatibility forms (mathematical letters and digits,
    # enclosed alphanumerics, compatibility ideographs).
    codes = [*range(0xD800), *range(0xE000, 0x10000), *range(0x1D400, 0x1D800), *range(0x1F100, 0x1F200),
             *range(0x2F800, 0x2FA20)]
    chars = [chr(i) for i in codes]
    for i in range(0, len(chars), 4096):
        text = "".join(chars[i:i + 4096])
        assert figures.fold_width(text) == reference.fold_width(text)
        assert figures.fold_width("３，０" + text + "１，２") == reference.fold_width("３，０" + text + "１，２")


_DATE_EDGES = ["the 9th", "The  21st of May", "  5th", "5th", "May 5", "May", " May\u3000 2025", "Sept., 2025",
               "Sept.,\n\n2025", "9 of May", "9th of June", "on the\t3rd,", "其 2025 年", "6 月 9 号", "6月9日",
               "二〇二五年六月九日", "十二月三日", "一二三四五六年", "2025-06-09", "x2025/6/9", "1.2025.6.9",
               "May2025", "Dec 31 2025", "31 Dec.", "May, 2025"]


def test_date_candidates_cover_every_match():
    # Every position where a date pattern matches (on its own, not after an earlier match) is a
    # candidate, in a text that holds what the pattern needs.
    rng = random.Random(11)
    texts = _DATE_EDGES + [fuzz_text(rng) if rng.random() < 0.5
                           else "".join(rng.choice(_SOUP) for _ in range(rng.randint(1, 20))) for _ in range(6000)]
    checked = Counter()
    for raw in texts:
        text = figures.fold_width(raw)
        runs = figures._digit_runs(text)
        assert runs == [m.span() for m in re.finditer("[0-9]+", text)]
        starts = figures._date_starts(text, runs)
        for name, regex in figures._DATE_RES:
            hits = [i for i in range(len(text)) if regex.match(text, i)]
            if hits:
                assert figures._may_hold(text, figures._DATE_NEEDS[name], {})
                assert set(hits) <= set(starts.get(name, ())), (name, text, hits, starts)
                checked[name] += 1
        assert all(s == sorted(s) for s in starts.values())
    assert all(checked[name] >= 15 for name, _ in figures._DATE_RES), checked


_COUNT_EDGES = ["5 restored paintings", "5 new rare earth magnets", "5 of the companies", "5 big new shiny red firms",
                "5 a b c d items", "5 a b c items", "5 very big US-listed firms' shares", "5 tariff\n lines", "5 ITEMS",
                "5 İtems", "5 ſhips", "5 Kinds", "5 items5", "5 it's companies", "5 (companies)", "5   companies",
                "5 the companies", "5 The companies", "5 x " + "y" * 300 + " companies", "5 " + "ab " * 100]


def test_count_shortcut_never_skips_a_count():
    rng = random.Random(13)
    words = ["companies", "items", "firms", "tariff", "lines", "people", "the", "of", "new", "rare", "earth", "big",
             "U.S.-listed", "it's", "a", "an", "The", "Kinds", "İtems", "ſhips", "(x)", "x,", "5", "tonnes", "x" * 60]
    texts = _COUNT_EDGES + [" ".join(rng.choice(words) + rng.choice(["", "", ".", ","]) for _ in range(rng.randint(1, 9)))
                            for _ in range(20000)]
    hits = 0
    for text in texts:
        for pos in range(len(text)):
            if text[pos].isspace() and figures._EN_COUNT_RE.match(text, pos):
                assert figures._may_count(text, pos), (text, pos)
                hits += 1
    assert hits > 5000


def test_units_spelled_with_look_alike_letters_are_plain_numbers_not_a_crash():
    # The old code raised KeyError on these (the regex matched case-insensitively, the table lookup
    # did not), and an exception in the parser worker fails the whole feed. As with magnitudes
    # ("mıllıon"), a look-alike spelling is not the unit word: the number keeps no unit.
    found = {text: [(n.value, n.unit) for n in figures.find_numbers(text)]
             for text in ("5 KİLO", "5 MİNUTES", "US$5 per KİLO", "5 DOLLARS", "5 DOLLARS per kilo")}
    assert found == {"5 KİLO": [(5.0, "")], "5 MİNUTES": [(5.0, "")], "US$5 per KİLO": [(5.0, "USD")],
                     "5 DOLLARS": [(5.0, "USD")], "5 DOLLARS per kilo": [(5.0, "USD/kg")]}
