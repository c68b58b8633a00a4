"""Numbers in English and Chinese news text: finding them, normalising them, picking key figures.

`find_numbers` is the single parser behind key figures *and* the grounding guard, so it errs
on the side of recognising a mention (and its unit) rather than missing it: a number the
parser cannot see is a number the guard cannot check.

Normalisation (value, unit) is what lets "HK$80 million" in an English summary stand for
"8000万港元" in a Chinese article. Signs are not parsed: prose carries direction in words
("fell 3%", "下跌3%"), and the guard compares magnitudes.

Modules, in the order find_numbers uses them: width (full-width folding), scan (where numerals
are), numerals (their values), dates, prefix and suffix (currency, magnitude, unit), finder
(find_numbers); then matching (values_match, supports: the grounding guard's comparisons),
labels and pick (key figures). lexicon holds the word tables they share.
"""

from bot.analyse.numbers.finder import find_numbers
from bot.analyse.numbers.labels import generic_label
from bot.analyse.numbers.matching import supports, values_match
from bot.analyse.numbers.number import KINDS, Number, date_parts
from bot.analyse.numbers.pick import MAX_KEY_FIGURES, KeyFigure, as_figures, extract_figures, key_figures
from bot.analyse.numbers.width import fold_width

__all__ = ["KINDS", "MAX_KEY_FIGURES", "KeyFigure", "Number", "as_figures", "date_parts", "extract_figures",
           "find_numbers", "fold_width", "generic_label", "key_figures", "supports", "values_match"]
