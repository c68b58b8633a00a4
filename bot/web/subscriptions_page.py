"""The subscriptions page: feeds and the routes that send topics to channels, from feeds.yaml."""

from __future__ import annotations

from bot.web.deps import DashboardDeps


class SubscriptionsPage:
    def __init__(self, deps: DashboardDeps):
        self.deps = deps

    def view(self) -> dict:
        settings = self.deps.settings()
        feeds = [{"name": f.name, "topics": f.topics or list(settings.topics), "every": f.every,
                  "origin": "file", "removable": False, "enabled": f.enabled} for f in settings.feeds]
        follows = [{"name": r.name, "topics": r.topics or list(settings.topics),
                    "targets": [self.deps.show_target(str(t)) for t in r.to], "origin": "file", "removable": False}
                   for r in settings.routes]
        return {"feeds": feeds, "follows": follows, "editable": False}

    async def change(self, form) -> str:
        return "Subscriptions are changed in feeds.yaml."
