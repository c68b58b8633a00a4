"""The subscriptions page: every feed and follow, from feeds.yaml and from chat, changed through the
same service as `/brief subscribe|unsubscribe|follow|unfollow` (its validation: the SSRF guard, one
trial read of the feed, known topics; feeds.yaml's own feeds and routes are not removable here).
Dashboard users are operators, who may do what a chat admin may.

A target is never written into the page as it is stored (a webhook URL carries its token): forms
name it by an opaque id, resolved here against the targets the bot knows."""

from __future__ import annotations

import hashlib

from bot.subscriptions import FROM_CHAT, Change
from bot.subscriptions.merge import is_chat_route
from bot.web.deps import DashboardDeps

ACTOR = "dashboard"
ACTIONS = ("subscribe", "unsubscribe", "follow", "unfollow")


def target_id(target: str) -> str:
    return hashlib.sha256(target.encode("utf-8")).hexdigest()[:16]


class SubscriptionsPage:
    def __init__(self, deps: DashboardDeps):
        self.deps = deps

    def _known_targets(self) -> list[str]:
        """Every target the bot posts to: feeds.yaml's routes and digests, and chat follows."""
        targets = [str(t) for t in self.deps.settings().all_targets()]
        targets += [row.target for row in self.deps.store.follows()]
        return list(dict.fromkeys(targets))

    def view(self) -> dict:
        service = self.deps.subscriptions()
        feeds = [{"name": f.name, "topics": list(f.topics), "status": f.status, "failures": f.failures,
                  "problem": self.deps.scrub(f.problem), "origin": "chat" if f.origin == FROM_CHAT else "file",
                  "by": f.created_by or "", "removable": f.origin == FROM_CHAT} for f in service.feeds()]
        settings = self.deps.settings()
        follows = [{"topic": topic, "target": self.deps.show_target(str(target)), "origin": "file", "by": route.name,
                    "target_id": ""}
                   for route in settings.routes if not is_chat_route(route.name) for target in route.to
                   for topic in (route.topics if route.topics is not None else list(settings.topics))]
        follows += [{"topic": row.topic, "target": self.deps.show_target(row.target), "origin": "chat",
                     "by": row.created_by, "target_id": target_id(row.target)} for row in self.deps.store.follows()]
        channels = [(target_id(t), self.deps.show_target(t)) for t in self._known_targets()]
        topics = [(name, settings.topic_label(name, "en"), settings.topic_label(name, "zh")) for name in settings.topics]
        return {"feeds": feeds, "follows": follows, "channels": channels, "topics": topics, "editable": True}

    def _target(self, form) -> tuple[object | None, str | None]:
        """The target a form names: a new one typed as in feeds.yaml, else a known one by its id."""
        typed = str(form.get("to") or "").strip()
        if typed:
            try:
                return self.deps.parse_target(typed), None
            except ValueError as exc:
                return None, f"Target: {exc}"
        wanted = str(form.get("target") or "")
        for text in self._known_targets():
            if target_id(text) == wanted:
                return self.deps.parse_target(text), None
        return None, "Choose where the briefs go, or type a target as feeds.yaml writes it (kind:address)."

    async def change(self, form) -> str:
        """Apply one form; the one-line answer the chat verb would give."""
        action = str(form.get("action") or "")
        if action not in ACTIONS:
            return f"Unknown action {action[:40]!r}."
        service = self.deps.subscriptions()
        if action == "unsubscribe":
            return self._said(service.unsubscribe(str(form.get("name") or ""), ACTOR))
        target, problem = self._target(form)
        if target is None:
            return problem or "No target."
        if action == "subscribe":
            topics = str(form.get("topics") or "").split()
            return self._said(await service.subscribe(str(form.get("url") or ""), topics, target, ACTOR))
        act = service.follow if action == "follow" else service.unfollow
        return self._said(act(str(form.get("topic") or ""), target, ACTOR))

    def _said(self, change: Change) -> str:
        return self.deps.scrub(change.message) or ""
