"""Same-story decisions: merge other outlets' versions, never two different stories."""

from datetime import datetime, timedelta, timezone

from bot.pipeline import _signature_numbers
from bot.stories import find_same_story, make_signature

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=timezone.utc)


def sig(title: str, text: str, lang: str = "en", topics=("rare-earth",), hours: float = 0):
    return make_signature(title, text, lang, list(topics), _signature_numbers(title + "\n" + text),
                          NOW - timedelta(hours=hours))


MAGNETS = sig("China approves magnet export licences for 12 European firms",
              "The commerce ministry approved rare earth magnet export licences for 12 European companies. "
              "NdPr oxide rose 4.5% to 615,000 yuan per tonne.")


def test_other_outlet_same_language_merges():
    other = sig("Beijing grants magnet permits to a dozen EU companies",
                "Beijing granted export licences to 12 European firms; NdPr oxide gained 4.5% to 615,000 yuan "
                "per tonne.", hours=2)
    assert find_same_story(other, [("m", MAGNETS)]) == "m"


def test_chinese_version_merges_through_numbers():
    zh = sig("商务部批准12家欧洲企业稀土磁体出口许可", "商务部已批准12家欧洲企业的出口许可申请。氧化镨钕价格上涨4.5%，报61.5万元/吨。",
             lang="zh", hours=1)
    assert find_same_story(zh, [("m", MAGNETS)]) == "m"


def test_next_days_price_report_is_a_new_story():
    tomorrow = sig("China approves magnet export licences for 9 more firms",
                   "The commerce ministry approved rare earth magnet export licences for 9 more companies. "
                   "NdPr oxide rose 1.2% to 622,000 yuan per tonne.", hours=-24)
    assert find_same_story(tomorrow, [("m", MAGNETS)]) is None


def test_shared_common_number_and_generic_entities_do_not_merge():
    truce = sig("US and China extend tariff truce by 90 days", "Washington and Beijing extended the truce by "
                "90 days, keeping a 10% baseline tariff.", topics=("tariff", "rare-earth"))
    other = sig("EU opens anti-dumping probe into Chinese e-bikes", "Brussels said the probe could lead to "
                "duties within 90 days on Chinese rare earth magnet e-bikes.", topics=("tariff",))
    assert find_same_story(other, [("t", truce)]) is None


def test_outside_time_window_never_merges():
    old = sig("China approves magnet export licences for 12 European firms",
              "Licences for 12 European companies; NdPr oxide rose 4.5% to 615,000 yuan per tonne.", hours=72)
    assert find_same_story(old, [("m", MAGNETS)]) is None


def test_different_topics_never_merge():
    tariff_only = sig("Tariff on 12 European firms", "4.5% and 615,000 yuan per tonne.", topics=("tariff",))
    assert find_same_story(tariff_only, [("m", MAGNETS)]) is None


def test_same_tariff_rate_on_different_goods_is_two_stories():
    soy = sig("China raises tariffs 25% on US soybeans", "Beijing will raise tariffs on US soybeans to 25% "
              "from next month.", topics=("tariff",))
    evs = sig("US raises tariffs 25% on Chinese EVs", "Washington will raise tariffs on Chinese electric "
              "vehicles to 25% from next month.", topics=("tariff",), hours=3)
    assert find_same_story(evs, [("s", soy)]) is None
