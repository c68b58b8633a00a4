"""Same-story decisions: merge other outlets' versions, never two different stories."""

import json
import random
from datetime import datetime, timedelta, timezone

import pytest

from bot.analyse.numbers import find_numbers
from bot.analyse.stories import (
    SAME_STORY,
    StoryIndex,
    StorySignature,
    entities_in,
    find_same_story,
    make_signature,
    similarity,
    story_numbers,
)

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=timezone.utc)


def sig(title: str, text: str, lang: str = "en", topics=("rare-earth",), hours: float = 0):
    return make_signature(title, text, lang, list(topics), story_numbers(find_numbers(title + "\n" + text)),
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


# --------------------------------------------------------------------------- the story index

def _random_signature(rng: random.Random) -> StorySignature:
    """A signature from a small vocabulary, so that many pairs share figures, words and entities."""
    lang = rng.choice(["en", "en", "zh"])
    vocab = (["lynas", "gallium", "smelters", "baotou", "quota", "magnet", "licences", "rare", "earth", "china",
              "tariffs", "25", "90"] if lang == "en" else ["稀土", "出口", "镓出", "口管", "管制", "包头", "海关", "滞留"])
    values = [(25.0, "%"), (90.0, "day"), (1200.0, "t"), (615000.0, "CNY/t"), (12.5, "%"), (3.2e9, "USD")]
    numbers = set()
    for _ in range(rng.choice([0, 0, 1, 2, 3])):
        value, unit = rng.choice(values)
        # Now and then a value within similarity()'s tolerance of a listed one, but not equal to it.
        numbers.add((value * (1 + rng.choice([0, 0, 0, 4e-10, -7e-10])), unit))
    published = NOW - timedelta(hours=rng.uniform(0, 60))
    return StorySignature(lang=lang, topics=sorted(rng.sample(["rare-earth", "tariff"], rng.choice([1, 2]))),
                          title_tokens=sorted(rng.sample(vocab, rng.randint(0, 6))),
                          entities=sorted(rng.sample(["china", "us", "lynas", "mofcom", "name:baotou", "gallium",
                                                      "customs", "eu"], rng.randint(0, 5))),
                          numbers=sorted(numbers), published=published.isoformat())


def _plain_candidates(sig: StorySignature,
                      stories: list[tuple[str, StorySignature]]) -> list[tuple[str, StorySignature]]:
    """What an index of shared figures and shared title tokens offers: an exact shared figure or
    two shared title tokens (the comparison set StoryIndex must reproduce)."""
    return [(sid, other) for sid, other in sorted(stories)
            if set(sig.numbers) & set(other.numbers) or len(set(sig.title_tokens) & set(other.title_tokens)) >= 2]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_index_offers_every_story_similarity_would_merge(seed):
    rng = random.Random(seed)
    index, stories, merges = StoryIndex(), [], 0
    for i in range(400):
        sig = _random_signature(rng)
        plain = _plain_candidates(sig, stories)
        offered = set(index.candidates(sig))
        for sid, other in plain:
            if similarity(sig, other) >= SAME_STORY:
                assert sid in offered, (sig, other)
        assert offered <= {sid for sid, _ in plain}
        match = index.find_same_story(sig)
        assert match == find_same_story(sig, plain)
        if match is None:
            sid = f"s{rng.randrange(10**6):06d}-{i}"  # ids not in insertion order: ties go to the lowest id
            index.add(sid, sig)
            stories.append((sid, sig))
        else:
            merges += 1
    assert merges > 20 and len(index) == len(stories)


def test_figure_within_tolerance_still_finds_the_story():
    # Two renderings of one figure within similarity()'s tolerance (1e-9 relative), on either side
    # of a rounding boundary of the index's figure buckets (8 significant digits).
    first = StorySignature(lang="en", topics=["tariff"], title_tokens=["gallium", "lynas"],
                           entities=["gallium", "lynas"], numbers=[(1_000_000_049.6, "USD")], published=NOW.isoformat(),
                           title_entities=["gallium", "lynas"])
    second = StorySignature(lang="zh", topics=["tariff"], title_tokens=["包头", "镓出"], entities=["gallium", "lynas"],
                            numbers=[(1_000_000_050.4, "USD")], published=NOW.isoformat())
    assert similarity(second, first) >= SAME_STORY
    index = StoryIndex()
    index.add("a", first)
    assert index.find_same_story(second) is None  # a plain index would not offer it: no exact figure or words
    third = StorySignature(lang="en", topics=["tariff"], title_tokens=["gallium", "lynas", "quota"],
                           entities=["gallium", "lynas"], numbers=[(1_000_000_050.4, "USD")], published=NOW.isoformat())
    assert index.find_same_story(third) == "a"


def test_index_forgets_evicted_stories_and_loads_stored_signatures():
    stored = MAGNETS.to_dict()
    assert set(stored) == {"lang", "topics", "title_tokens", "entities", "numbers", "published", "title_entities",
                           "feed"}
    loaded = StorySignature.from_dict(json.loads(json.dumps(stored)))  # as read back from the database
    index = StoryIndex()
    index.add("m", loaded)
    other = sig("Beijing grants magnet permits to a dozen EU companies",
                "Beijing granted export licences to 12 European firms; NdPr oxide gained 4.5% to 615,000 yuan "
                "per tonne.", hours=2)
    assert index.find_same_story(other) == "m"
    index.evict_published_before(NOW + timedelta(hours=1))
    assert "m" not in index and len(index) == 0
    assert index.find_same_story(other) is None and index.candidates(other) == []


def test_entity_names_need_word_boundaries_except_in_chinese():
    assert entities_in("The U.S.-China talks; MP材料 and 稀土") >= {"us", "china", "mp-materials", "rare-earth"}
    assert not entities_in("Chinas tariffsx and euro bonds") & {"china", "tariff", "eu"}
    assert "mofcom" in entities_in("the Commerce Ministry said") and "mofcom" not in entities_in("ecommerce ministry")
