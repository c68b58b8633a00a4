"""Where the fast-path equivalence tests find real-world input: the fixture and sample feeds, the
string constants of the bot's and the tests' own code, and the seed pages when this checkout has them."""

from __future__ import annotations

import ast
import re
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


def string_constants(skip: str) -> list[str]:
    """Every non-blank string constant in the tests' and the bot's Python files, but the file named `skip`."""
    out = []
    for path in sorted([*(ROOT / "tests").rglob("*.py"), *(ROOT / "bot").rglob("*.py")]):
        if path.name == skip:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        out.extend(node.value for node in ast.walk(tree)
                   if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.strip())
    return out


# Entry and feed bodies in a feed file, found by regex (whatever a parser makes of the file).
BODY_RE = re.compile(
    r"<(description|summary|content|content:encoded|title)\b[^>]*>(.*?)</\1>", re.DOTALL | re.IGNORECASE)
CDATA_RE = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.DOTALL)


def decode_page(raw: bytes) -> str:
    """A page's text: UTF-8, else GB18030 (the Chinese seed pages), else Latin-1."""
    for encoding in ("utf-8", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            pass
    return raw.decode("latin-1")
