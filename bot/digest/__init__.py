"""The on-call digest: the window's top stories per topic, bilingual, posted once per scheduled day.

build chooses and ranks the stories, render holds the text every renderer shares, overview adds the
optional grounded LLM overview, schedule runs digests on their cron and claims each run once.
"""

from bot.digest.build import build_digest, importance, rank_briefs
from bot.digest.overview import add_overview
from bot.digest.render import (
    StoryParts,
    digest_held_lines,
    digest_languages,
    digest_titles,
    feed_health_line,
    feed_health_lines,
    held_back_line,
    nothing_new_line,
    notice_lines,
    overview_paragraphs,
    render_digest_text,
    section_headline,
    section_headlines,
    section_label,
    story_line,
    story_parts,
    window_hours,
    window_line,
)
from bot.digest.schedule import (
    BUILD_LEASE,
    DigestDeps,
    Enqueue,
    add_digest_jobs,
    catch_up_digests,
    digest_run_id,
    run_digest,
    scheduled_fire_time,
)

__all__ = [
    "BUILD_LEASE",
    "DigestDeps",
    "Enqueue",
    "StoryParts",
    "add_digest_jobs",
    "add_overview",
    "build_digest",
    "catch_up_digests",
    "digest_held_lines",
    "digest_languages",
    "digest_run_id",
    "digest_titles",
    "feed_health_line",
    "feed_health_lines",
    "importance",
    "held_back_line",
    "nothing_new_line",
    "notice_lines",
    "overview_paragraphs",
    "rank_briefs",
    "render_digest_text",
    "run_digest",
    "scheduled_fire_time",
    "section_headline",
    "section_headlines",
    "section_label",
    "story_line",
    "story_parts",
    "window_hours",
    "window_line",
]
