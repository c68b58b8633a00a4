"""Where the tests find real-world input: the fixture and sample feeds, and the seed pages when this
checkout has them."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

TESTS = Path(__file__).parent
ROOT = TESTS.parent
FIXTURES = TESTS / "fixtures"
FEED_FIXTURES = FIXTURES / "feeds"
SAMPLE_FEEDS = ROOT / "bot" / "samples" / "feeds"
# Real news pages, kept beside the checkout (../shared/seeds from the repository root). A checkout
# without them still runs every other corpus; a test that needs them calls require_seed_pages().
SEEDS = Path(__file__).resolve().parents[1].parent / "shared" / "seeds"


def feed_files() -> list[Path]:
    return sorted(FEED_FIXTURES.iterdir()) + sorted(SAMPLE_FEEDS.iterdir())


def seed_pages() -> list[Path]:
    """The seed pages, or none when this checkout has no seeds folder (for tests that also read other corpora)."""
    return sorted(SEEDS.glob("*")) if SEEDS.is_dir() else []


def require_seed_pages() -> list[Path]:
    """The seed pages, for a test that has nothing else to check: skips it, saying why, when they are absent."""
    import pytest

    pages = seed_pages()
    if not pages:
        pytest.skip(f"no seed pages at {SEEDS} (../shared/seeds from the repository root); CI provides them")
    return pages


def parsed_entries(paths: Iterable[Path]) -> Iterator:
    """The entries of every feed file that parse_feed reads (files it refuses are skipped)."""
    from bot.ingest.parse import FeedParseError, parse_feed

    for path in paths:
        content_type = {".atom": "application/atom+xml", ".rdf": "application/rdf+xml"}.get(path.suffix)
        try:
            feed = parse_feed(path.read_bytes(), content_type, "https://wire.example/feed")
        except FeedParseError:
            continue
        yield from feed.entries
