"""The benchmark code keeps working: every benchmark runs at tiny sizes and produces its figures.

Nothing here asserts speed (machines vary); it asserts that each benchmark measured what it claims
to (items really briefed, 304s really served, LLM calls really counted, posts really arrived,
queries really answered, each contender really polled every feed), that the figures have their
units and plausible values, and that the report renders all of it.
"""

from __future__ import annotations

import math

import pytest

from bench import fastpaths, p1_cold_poll, p3_llm_economy, p4_latency, p5_query, p6_memory, p7_alternatives
from bench.common import Result, machine, percentile
from bench.corpus import VARIANTS, make_corpus, render_feed
from bench.run import render

pytestmark = pytest.mark.timeout(240)

P7_FEEDS, P7_ITEMS = 18, 3  # 18 feeds: every third of them mixed, each of the six forms once


def _quiet(*_a, **_k) -> None:
    pass


def test_percentile_is_nearest_rank():
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50) == 3.0
    assert percentile(list(map(float, range(1, 21))), 95) == 19.0
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))


def test_mixed_corpus_carries_the_same_entries_through_feedparser():
    from bot.ingest.parse import parse_feed

    clean, mixed = make_corpus(P7_FEEDS, P7_ITEMS), make_corpus(P7_FEEDS, P7_ITEMS, mixed=True)
    assert sorted(f.variant for f in mixed if f.variant) == sorted(VARIANTS)
    assert p7_alternatives.feedparser_share(clean) == 0.0
    assert p7_alternatives.feedparser_share(mixed) == pytest.approx(1 / 6)  # DOCTYPE, mislabelled, broken
    for c, m in zip(clean, mixed):
        a = parse_feed(render_feed(c), c.content_type, f"http://bench.example{c.path}").entries
        b = parse_feed(render_feed(m), m.content_type, f"http://bench.example{m.path}").entries
        # The same news in another form: titles, links, text and dates survive (ids follow the format).
        assert [(e.title, e.link, e.text, e.published) for e in a] == \
               [(e.title, e.link, e.text, e.published) for e in b], m.variant


def test_poll_benchmarks_measure_cold_and_304_polls(tmp_path):
    results = p1_cold_poll.run(n_feeds=6, items=3, latency_ms=20, hosts=3, profile=True, profile_feeds=3,
                               workdir=tmp_path, log=_quiet)
    by_key = {r.key: r for r in results}
    assert set(by_key) == {"P1", "P1-cpu", "P2"}
    p1 = by_key["P1"]
    assert p1.data["latency_ms"] == 20
    assert p1.data["naive"]["entries"] == 18  # the baseline really parsed every entry
    cold = p1.data["cold"]
    assert cold["outcomes"] == {"ok": 6}
    assert cold["briefs"] + cold["merged"] + cold["irrelevant"] + cold["old"] == 18
    assert cold["wall"] > 0 and cold["cpu"] > 0 and cold["cpu"] >= cold["main_cpu"] > 0
    assert p1.figure.endswith(" s") and p1.ratio.endswith(("× faster", "× slower"))
    assert p1.target == "≥ 15× faster" and isinstance(p1.passed, bool)
    assert by_key["P1-cpu"].passed is None  # informational: shows the CPU bound
    warm = by_key["P2"].data["warm"]
    assert warm["outcomes"] == {"not-modified": 6}  # the server answered 304 to every conditional GET
    assert warm["cpu"] > 0 and warm["wall"] > 0
    assert "ms CPU/feed" in by_key["P2"].figure
    profile = p1.data["profile"]
    assert profile["feeds"] == 3 and sum(profile["categories"].values()) > 0 and profile["top"]


def test_llm_economy_counts_one_call_per_story(tmp_path):
    (result,) = p3_llm_economy.run(workdir=tmp_path, log=_quiet)
    data = result.data
    stories = len(p3_llm_economy.STORIES)
    assert data["naive_calls"] == 3 * stories  # one per item
    assert data["errors"] == [] and data["briefs"] == stories
    # Three outlets of a story make one brief and one LLM call.
    assert data["bot_calls"] == stories and result.figure.startswith("1.00 calls/story")
    assert 0 < data["bot_tokens"] and 0 < data["naive_tokens"]


def test_latency_benchmark_times_items_into_slack(tmp_path):
    # Items appear before the bot's first poll, so one poll sees them all (no 30 s wait in CI).
    (result,) = p4_latency.run(interval=30, n_items=4, n_feeds=2, warmup=0.0, spread=0.5, workdir=tmp_path,
                               log=_quiet)
    assert result.data["missing"] == [], result.details
    latencies = result.data["latencies"]
    assert len(latencies) == 4 and all(lat > 0 for lat in latencies)
    assert len(result.data["pipeline"]) == 4


def test_query_benchmark_on_sqlite_and_postgres(tmp_path):
    results = p5_query.run(n=600, rounds=2, naive_rounds=1, postgres=True, workdir=tmp_path, log=_quiet)
    assert [r.key for r in results] == ["P5-sqlite", "P5-pg"]
    for r in results:
        assert r.data["n"] == 600 and r.data["queries"] == 2 * len(p5_query.TOPIC_SHARES)
        assert r.data["p50"] > 0 and r.data["p99"] >= r.data["p50"]
        assert r.data["naive_queries"] == len(p5_query.TOPIC_SHARES)


def test_memory_benchmark_reads_peak_memory_of_run(tmp_path):
    (result,) = p6_memory.run(n_feeds=4, items=3, interval=30, duration=6, hosts=2, workdir=tmp_path, log=_quiet)
    assert result.data["peak_kb"] > 0 and result.data["baseline_kb"] > 0
    assert result.data["requests"]["ok"] >= 4  # the running bot fetched every feed
    assert result.data["samples"]
    assert result.figure.endswith("MiB (bot + parser worker, Pss)") and result.target == "≤ 100 MiB"


def test_fast_paths_are_measured_kept_and_removed(tmp_path):
    (result,) = fastpaths.run(n_feeds=6, items=3, workdir=tmp_path, log=_quiet)
    data = result.data
    assert result.key == "FP" and data["n_feeds"] == 6 and data["poll_cpu"] > 0
    assert len(data["kept"]) == 3 and all(k["with"] > 0 and k["without"] > 0 for k in data["kept"])
    # Every removed fast path was timed before and after its removal, on inputs the corpus really produced.
    assert [r["label"].split(" ")[0] for r in data["removed"]] == ["regex", "boilerplate", "item", "join_url", "story"]
    assert all(r["calls"] > 0 and r["before"] > 0 and r["now"] > 0 for r in data["removed"])
    assert set(data["shares"]) == {r["label"] for r in data["kept"] + data["removed"]}
    text = render([result], {"machine": machine(), "when": "now", "command": "x", "quick": True, "timings": {}})
    assert "## Fast paths: kept and removed (FP)" in text and text.count("| removed: ") == 5


@pytest.fixture(scope="module")
def p7_results(tmp_path_factory) -> list[Result]:
    return p7_alternatives.run(n_feeds=P7_FEEDS, items=P7_ITEMS, latency_ms=10, hosts=3,
                               workdir=tmp_path_factory.mktemp("p7"), log=_quiet)


def test_side_by_side_polls_every_feed_with_each_contender(p7_results):
    by_key = {r.key: r for r in p7_results}
    assert set(by_key) == {"P7-clean", "P7-clean-304", "P7-mixed", "P7-mixed-304"}
    entries = P7_FEEDS * P7_ITEMS
    for corpus, share in (("clean", 0.0), ("mixed", 1 / 6)):
        result = by_key[f"P7-{corpus}"]
        info = result.data
        assert info["feedparser_share"] == pytest.approx(share)
        naive, reader, bot = (info["sides"][s] for s in ("naive", "reader", "briefbot"))
        assert naive["phases"][0]["entries"] == entries and len(naive["phases"]) == 1
        assert bot["phases"][0]["outcomes"] == {"ok": P7_FEEDS}
        assert bot["phases"][1]["outcomes"] == {"not-modified": P7_FEEDS}
        for side in (reader, bot):
            assert side["server"]["not_modified"] == P7_FEEDS - len(side.get("refused", []))
        # reader stores what its parser accepts; every feed it refused is one of the mixed forms.
        assert reader["phases"][0]["entries"] == entries - P7_ITEMS * len(reader["refused"])
        assert corpus == "mixed" or reader["refused"] == []
        for side in (naive, reader, bot):
            assert all(p["wall"] > 0 and p["cpu"] > 0 for p in side["phases"])
            assert side["peak_kb"] > 0 and side["peak_pss_kb"] > 0 and side["processes"] >= 1
        assert result.target == "≥ 3× faster than reader" and isinstance(result.passed, bool)
        assert "faster than reader" in result.ratio and "faster than naive" in result.ratio
        assert "ms CPU/feed" in by_key[f"P7-{corpus}-304"].figure


def test_report_renders_every_result(p7_results):
    results = [Result(key="P1", name="P1 cold poll", figure="1.00 s", baseline="2.00 s (naive)", ratio="2.0× faster",
                      target="≥ 15× faster", passed=False, details=["a | detail"]),
               Result(key="P3", name="P3 LLM", figure="1.00 calls/story", baseline="3.00", ratio="3.0×",
                      target="≤ 1.0", passed=True), *p7_results]
    meta = {"machine": machine(), "when": "now", "command": "python -m bench.run --quick", "quick": True,
            "timings": {"P1": 1.0}}
    text = render(results, meta)
    assert "| P1 | P1 cold poll | 1.00 s | 2.00 s (naive) | 2.0× faster | ≥ 15× faster | **FAIL** |" in text
    assert "**PASS**" in text and "a \\| detail" not in text.split("## Details")[0]
    assert meta["machine"]["python"] in text and "quick mode" in text
    assert "## What users would run instead (P7)" in text and "**mixed corpus**" in text
    assert text.count("| reader |") == 2 and text.count("| briefbot |") == 2
    # Which phase of a shared machine the run was measured in: a positive CPU time, rendered.
    assert meta["machine"]["speed_check_s"] > 0 and f"took {meta['machine']['speed_check_s']:.2f} s" in text
