"""The words of numbers: numerals, months, currencies, magnitudes and units, as lookup tables.

The patterns that find these words live next to the code that reads them (scan, dates, prefix,
suffix); a matched word is looked up here. Case-insensitive patterns also match a few non-ASCII
look-alikes of ASCII letters (CASE_FOLD_ODDITIES); such a spelling is not in these tables, and the
number then keeps no unit (see `known`).
"""

from __future__ import annotations

# --------------------------------------------------------------------------- numerals

CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
             "八": 8, "九": 9}
CN_SMALL_UNITS = {"十": 10, "百": 100, "千": 1000}
CN_BIG_UNITS = {"万": 10_000, "亿": 100_000_000}
CN_NUMERALS = "零〇一二两三四五六七八九十百千万亿"  # what a Chinese numeral is written with

EN_SMALL = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split())}
EN_TENS = {w: 10 * (i + 2) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())}
EN_SCALES = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}

# İ ı ſ K: (?i) patterns match these as ASCII letters; lower-casing and the tables here do not.
CASE_FOLD_ODDITIES = "\u0130\u0131\u017f\u212a"

# --------------------------------------------------------------------------- dates

MONTHS = {
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7, "august": 8,
    "september": 9, "october": 10, "november": 11, "december": 12, "jan": 1, "feb": 2, "mar": 3, "apr": 4,
    "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12,
}

# --------------------------------------------------------------------------- money

SYMBOL_CURRENCY = {"US$": "USD", "U.S.$": "USD", "U.S. $": "USD", "HK$": "HKD", "A$": "AUD", "C$": "CAD",
                   "S$": "SGD", "$": "USD", "¥": "CNY", "€": "EUR", "£": "GBP"}
WORD_CURRENCY = {"rmb": "CNY", "cny": "CNY", "usd": "USD", "hkd": "HKD", "eur": "EUR", "jpy": "JPY", "gbp": "GBP",
                 "aud": "AUD", "cad": "CAD", "人民币": "CNY", "港币": "HKD", "港元": "HKD", "美元": "USD",
                 "欧元": "EUR", "日元": "JPY", "英镑": "GBP", "澳元": "AUD", "加元": "CAD", "元": "CNY",
                 "yuan": "CNY", "renminbi": "CNY",
                 "euro": "EUR", "euros": "EUR", "yen": "JPY", "dollar": "USD", "dollars": "USD"}
QUALIFIED_DOLLAR = {"us": "USD", "u.s.": "USD", "hong kong": "HKD", "hk": "HKD", "australian": "AUD",
                    "canadian": "CAD"}
# The price unit of "per kilogram", "/吨", "每股".
PER_NAMES = {"kilogram": "kg", "kilograms": "kg", "kilo": "kg", "kilos": "kg", "kg": "kg", "公斤": "kg", "千克": "kg",
             "tonne": "t", "tonnes": "t", "ton": "t", "tons": "t", "t": "t", "吨": "t", "share": "share",
             "shares": "share", "股": "share", "ounce": "oz", "ounces": "oz", "oz": "oz", "lb": "lb", "lbs": "lb",
             "pound": "lb", "pounds": "lb"}

# --------------------------------------------------------------------------- magnitudes and units

CN_MAGNITUDES = {"万亿": 1e12, "千亿": 1e11, "百亿": 1e10, "十亿": 1e9, "亿": 1e8, "千万": 1e7, "百万": 1e6,
                 "十万": 1e5, "万": 1e4, "千": 1e3, "百": 1e2}
EN_MAGNITUDES = {"trillion": 1e12, "tn": 1e12, "billion": 1e9, "bn": 1e9, "million": 1e6, "mn": 1e6,
                 "thousand": 1e3, "m": 1e6, "k": 1e3}
QUANTITY_UNITS = {"metric ton": "t", "metric tons": "t", "tonne": "t", "tonnes": "t", "ton": "t", "tons": "t",
                  "t": "t", "kt": "t", "公吨": "t", "吨": "t", "kilogram": "kg", "kilograms": "kg", "kilo": "kg",
                  "kilos": "kg", "kg": "kg", "公斤": "kg", "千克": "kg"}
DURATION_UNITS = {"day": "day", "week": "week", "month": "month", "year": "year", "hour": "hour",
                  "minute": "minute", "个多月": "month", "个月": "month", "个星期": "week", "星期": "week", "天": "day",
                  "周": "week", "小时": "hour", "分钟": "minute", "年": "year", "日": "day"}

# The nouns that make "12 companies" a count (a regex alternation).
COUNT_NOUNS = (
    "items?|products?|companies|company|firms?|entities|entity|enterprises?|countries|nations|elements|minerals|"
    "metals|categories|types|kinds|goods|shipments?|cases?|people|persons|workers|jobs|licen[cs]es|permits|"
    "applications|tariff\\s+lines|lines|exporters|importers|producers|suppliers|mines|vessels|ships|containers|"
    "units|outlets|suspects|individuals|banks|factories|plants|projects|deals|agreements|measures|rules|"
    "provinces|cities|states|members|officials|sanctions|entries|codes|earths|magnets|chips|orders|smugglers|"
    "seizures|investigations|arrests"
)
# Words that end the words between a number and its count noun (a regex alternation).
COUNT_STOP = ("the|a|an|of|in|on|at|to|from|by|for|with|was|were|is|are|be|been|has|have|had|that|this|"
              "which|who|per|than|or|as|its|their|his|her|it|they|he|she|we|said|says|after|before|since|"
              "over|under|about|more|less|up|down")


def known(word: str, table: dict) -> bool:
    """A matched word is in its table, unless it was spelled with a letter that only matches an ASCII
    one case-insensitively ("KİLO" lower-cases to "ki̇lo", "mıllıon" stays itself): such a spelling is
    not that word (a unit, currency, price unit, magnitude), and the number keeps no unit."""
    return word in table
