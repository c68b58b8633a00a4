"""The feed comparison tool: briefbot's reading of a directory of feeds against plain feedparser's."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tools.compare_feeds import main, pair_entries
from tools.feed_files import declared_headers, feed_files

COMPARE = Path(__file__).parent / "fixtures" / "feeds" / "compare"


def run(*args: str) -> str:
    out = io.StringIO()
    assert main([*args], out=out) == 0
    return out.getvalue()


def test_agreement_figures_and_the_divergence_of_an_empty_link():
    lines = run(str(COMPARE)).splitlines()
    # agree.xml (3, one untitled), http_empty_href.xml (2), the Go file's inline feed (1), refused.xml (1),
    # garbage.xml (none); jsonfeed.json is read by briefbot only (feedparser has no JSON Feed reader).
    assert lines[0] == (f"{COMPARE}: 6 documents, 7 feedparser entries, 6 paired (1 untitled, headlined from their "
                        f"text), 1 lost, 1 only briefbot's")
    figures = {line.split()[0]: line.split()[1:4] for line in lines[1:7]}
    assert figures == {"title": ["6", "/", "6"], "link": ["5", "/", "6"], "id": ["6", "/", "6"],
                       "published": ["6", "/", "6"], "text": ["6", "/", "6"], "all": ["5", "/", "6"]}
    # An empty href is the feed's own address to feedparser (Content-Location from the Header: line),
    # and no link to briefbot.
    assert "  DIFF http_empty_href.xml link: briefbot='' feedparser='https://desk.example/feed.atom'" in lines
    # A document briefbot refuses (an entity declaration) is reported, and its entry counted lost.
    assert any(line.startswith("  UNREADABLE by briefbot: refused.xml: FeedParseError:") for line in lines)
    assert any(line.startswith("  LOST refused.xml: title='Tariff note from the &desk;'") for line in lines)


def test_json_output_carries_the_same_figures():
    (report,) = [json.loads(line) for line in run("--json", str(COMPARE)).splitlines()]
    assert (report["files"], report["feedparser_entries"], report["paired"], report["headlines_made"]) == (6, 7, 6, 1)
    assert report["only_briefbot"] == 1
    assert report["agree"] == {"title": 6, "link": 5, "id": 6, "published": 6, "text": 6, "all": 5}
    assert report["share"]["link"] == 0.8333
    assert report["divergences"] == [{"file": "http_empty_href.xml", "field": "link", "briefbot": "",
                                      "feedparser": "https://desk.example/feed.atom"}]
    assert [entry["file"] for entry in report["lost"]] == ["refused.xml"]


def test_header_lines_and_inline_go_feeds_are_read():
    documents = {d.name: d for d in feed_files(COMPARE)}
    assert sorted(documents) == ["agree.xml", "garbage.xml", "http_empty_href.xml", "inline_test.go#2", "jsonfeed.json",
                                 "refused.xml"]
    served = documents["http_empty_href.xml"]
    assert (served.content_type, served.url) == ("application/atom+xml", "https://desk.example/feed.atom")
    assert documents["agree.xml"].content_type is None  # a local file: no headers
    assert documents["inline_test.go#2"].body.startswith(b'<?xml version="1.0"')
    # feedparser's tests serve a file named http_* as text/xml unless a Header: line says otherwise.
    assert declared_headers("http_default.xml", b"<rss/>") == {"content-type": "text/xml"}
    assert declared_headers("local.xml", b"<!--\nHeader:   X-Foo: bar\n-->") == {"x-foo": "bar"}


def test_pairing_by_id_then_link_then_title_then_order():
    theirs = [{"title": "A", "link": "l1", "id": "i1", "text": ""}, {"title": "B", "link": "l2", "id": "", "text": ""},
              {"title": "C", "link": "", "id": "", "text": "c"}, {"title": "", "link": "", "id": "", "text": ""},
              {"title": "D", "link": "", "id": "", "text": "d"}]
    ours = [{"title": "C", "link": "", "id": "", "text": "c"}, {"title": "B?", "link": "l2", "id": "", "text": ""},
            {"title": "A?", "link": "", "id": "i1", "text": ""}]
    pairs, lost = pair_entries(theirs, ours)
    assert [(t["title"], o["title"]) for t, o in pairs] == [("A", "A?"), ("B", "B?"), ("C", "C")]
    assert [t["title"] for t in lost] == ["D"]  # the entry with neither title nor text is not counted


def test_a_missing_directory_is_one_clear_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["/nonexistent/feeds"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("no such file or directory: /nonexistent/feeds")


def test_several_directories_end_with_their_total():
    lines = run(str(COMPARE), str(COMPARE)).splitlines()
    total = lines.index("total: 12 documents, 14 feedparser entries, 12 paired (2 untitled, headlined from their text), "
                        "2 lost, 2 only briefbot's")
    assert lines[total + 1:] == ["  title          12 / 12     100.00%", "  link           10 / 12      83.33%",
                                 "  id             12 / 12     100.00%", "  published      12 / 12     100.00%",
                                 "  text           12 / 12     100.00%", "  all            10 / 12      83.33%"]


def test_a_file_that_cannot_be_read_is_reported(tmp_path):
    (tmp_path / "feed.xml").write_bytes((COMPARE / "agree.xml").read_bytes())
    (tmp_path / "dangling.xml").symlink_to(tmp_path / "gone.xml")
    lines = run(str(tmp_path)).splitlines()
    assert lines[0].startswith(f"{tmp_path}: 2 documents, 3 feedparser entries, 3 paired")
    assert "  UNREADABLE by either: dangling.xml: cannot read the file: No such file or directory" in lines
