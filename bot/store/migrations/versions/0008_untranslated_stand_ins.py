"""Briefs stored before a brief recorded its stand-in languages (`untranslated`) get them, so an
outlet joining one of those stories still fills that language with its own text.

Only stories that can still take a source are read: made within the story window (48 hours), with a
day's margin for clocks. A language is a stand-in where its title ends as the extractive brief's
stand-in titles end; the endings are written out here, so that this migration does the same thing
whatever later code changes.

Downgrade takes the keys this release added to brief documents out again: the release before it
refuses a document with keys it does not know.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_STAND_IN_ENDINGS = {"en": ": Chinese-language report (untranslated)", "zh": "：英文报道（未翻译）"}
_JOINABLE_FOR = timedelta(hours=72)
_ADDED_KEYS = ("untranslated", "filled_from")

_briefs = sa.table("briefs", sa.column("id", sa.String), sa.column("doc", sa.JSON), sa.column("mode", sa.String),
                   sa.column("created", sa.DateTime(timezone=True)))


def _stand_ins(doc: dict) -> list[str]:
    titles = doc.get("title") or {}
    return [lang for lang, ending in _STAND_IN_ENDINGS.items() if str(titles.get(lang, "")).endswith(ending)]


def _rewrite(where, change) -> None:
    conn = op.get_bind()
    for brief_id, doc in conn.execute(sa.select(_briefs.c.id, _briefs.c.doc).where(where)).all():
        new_doc = change(doc)
        if new_doc is not None:
            conn.execute(sa.update(_briefs).where(_briefs.c.id == brief_id).values(doc=new_doc))


def upgrade() -> None:
    def with_stand_ins(doc: dict) -> dict | None:
        stand_ins = _stand_ins(doc)
        return {**doc, "untranslated": stand_ins} if stand_ins and "untranslated" not in doc else None

    since = datetime.now(timezone.utc) - _JOINABLE_FOR
    _rewrite(sa.and_(_briefs.c.mode == "extractive", _briefs.c.created >= since), with_stand_ins)


def downgrade() -> None:
    def without_added_keys(doc: dict) -> dict | None:
        if not any(key in doc for key in _ADDED_KEYS):
            return None
        return {key: value for key, value in doc.items() if key not in _ADDED_KEYS}

    as_text = sa.cast(_briefs.c.doc, sa.Text)
    _rewrite(sa.or_(*(as_text.like(f'%"{key}"%') for key in _ADDED_KEYS)), without_added_keys)
