"""Schema creation/migration at start-up."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.store.schema import metadata

if TYPE_CHECKING:
    from bot.store import Store


def upgrade(store: "Store") -> None:
    metadata.create_all(store.engine)
