"""A model's bare month ("2月") stands on the month the article names in words ("late February"),
which the number parser reads as no date; a day or another month still does not."""

from __future__ import annotations

from bot.summarise.grounding import check_brief, unsupported_numbers

SOURCE = ("Washington and Beijing agreed to extend their tariff truce by 90 days, keeping the suspended 24% "
          "additional tariff on hold until late February.")


def test_bare_month_named_in_the_article_is_grounded():
    assert unsupported_numbers("暂停加征的24%关税延至2月下旬。", SOURCE) == []
    assert check_brief({"summary.zh": "暂停加征的24%关税延至2月下旬。"}, SOURCE).ok


def test_other_month_or_an_added_day_is_not():
    assert unsupported_numbers("暂停加征的24%关税延至3月下旬。", SOURCE) == ["3月"]
    assert unsupported_numbers("The tariff stays suspended until February 9.", SOURCE) == ["February 9"]
    assert unsupported_numbers("暂停至2月", "Output rose 24% in the quarter.") == ["2月"]
