"""The periodic alert check: read what is failing from the store, open and close incidents, and
queue one alert per incident and one recovery message through the outbox.

One worker checks at a time (a named lease); every state change is a conditional UPDATE with its
outbox rows in the same transaction, so restarts and several workers never repeat a message.
An alert never goes to a target that is itself failing: a chat target's own incident cannot make
another message to it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from bot.config import Settings
from bot.models import utcnow
from bot.store import Incident, Store
from bot.store.incidents import LLM_FAILING_KEY
from bot.summarise.calls import DailyBudget

log = logging.getLogger("briefbot.alerts")

CHECK_LEASE = "alerts:check"
CHECK_LEASE_TTL = timedelta(minutes=2)
# The LLM counts as failing once it has failed, with no answer since, for this long.
LLM_FAILING_FOR = timedelta(hours=1)
AT_ONCE = timedelta(0)
_TARGET = "target:"


@dataclass
class AlertDeps:
    current_settings: Callable[[], Settings]
    store: Store
    worker_id: str
    # A target's text as it may be shown (a webhook's token hidden).
    redact: Callable[[str], str]
    llm_enabled: bool


@dataclass
class Problem:
    """Something failing now, and how long it must last before it is an incident worth an alert."""

    key: str
    kind: str
    subject: str
    detail: str | None
    threshold: timedelta


@dataclass
class CheckResult:
    alerted: list[Incident] = field(default_factory=list)
    resolved: list[Incident] = field(default_factory=list)


def feed_problems(settings: Settings, store: Store, after: timedelta) -> list[Problem]:
    """Each polled feed that is switched off (HTTP 410: at once) or failing (after `after`)."""
    problems = []
    for state in store.troubled_feeds({f.name for f in settings.polled_feeds}):
        if state.disabled_reason:
            problems.append(Problem(f"feed:{state.name}", "feed-disabled", state.name, state.disabled_reason,
                                    AT_ONCE))
        else:
            fetches = f"{state.failures} failed fetch{'es' * (state.failures != 1)}"
            detail = f"{fetches} in a row; last error: {state.last_error or 'unknown'}"
            problems.append(Problem(f"feed:{state.name}", "feed-failing", state.name, detail, after))
    return problems


def target_problems(settings: Settings, store: Store, redact: Callable[[str], str]) -> list[Problem]:
    """Each configured target whose latest delivery failed permanently (revoked token, unknown channel)."""
    targets = [str(t) for t in settings.all_targets()]
    return [Problem(_TARGET + target, "target", redact(target), error, AT_ONCE)
            for target, error in store.failing_targets(targets).items()]


def llm_budget_problem(settings: Settings, store: Store, now: datetime) -> Problem | None:
    budget = DailyBudget(settings.llm.daily_token_budget, store)
    spent = budget.spent(now)
    if spent is None:
        return None
    day, used = spent
    return Problem("llm:budget", "llm-budget", "LLM", f"{used} of {budget.budget} tokens used on {day} (UTC)",
                   AT_ONCE)


def _resolution(incident: Incident, settings: Settings) -> str:
    if incident.kind.startswith("feed-"):
        polled = any(f.name == incident.subject and f.enabled for f in settings.feeds)
        if not polled:
            return "no longer polled (removed or disabled in feeds.yaml)"
        return "polled again from its new URL" if incident.kind == "feed-disabled" else "fetched again"
    if incident.kind == "target":
        configured = any(str(t) == incident.key[len(_TARGET):] for t in settings.all_targets())
        return "a message was delivered there again" if configured else "no longer in feeds.yaml"
    if incident.kind == "llm-budget":
        return "tokens are available again (a new UTC day or a larger budget)"
    return "the LLM answered again"


class AlertCheck:
    """One pass of the check; `run(now)` is the scheduler's job (tests pass `now`)."""

    def __init__(self, deps: AlertDeps):
        self.deps = deps

    def run(self, now: datetime | None = None) -> CheckResult | None:
        """None when alerts are not configured or another worker is checking."""
        settings = self.deps.current_settings()
        if settings.alerts is None:
            return None
        now = now or utcnow()
        store, owner = self.deps.store, self.deps.worker_id
        if not store.try_lease(CHECK_LEASE, owner, CHECK_LEASE_TTL, now=now):
            return None
        try:
            return self._check(settings, now)
        finally:
            store.release_lease(CHECK_LEASE, owner)

    def _problems(self, settings: Settings, now: datetime) -> dict[str, Problem]:
        assert settings.alerts is not None
        store = self.deps.store
        problems = feed_problems(settings, store, settings.alerts.after)
        problems += target_problems(settings, store, self.deps.redact)
        budget = llm_budget_problem(settings, store, now) if self.deps.llm_enabled else None
        problems += [budget] if budget else []
        return {p.key: p for p in problems}

    def _check(self, settings: Settings, now: datetime) -> CheckResult:
        assert settings.alerts is not None
        store = self.deps.store
        problems = self._problems(settings, now)
        for p in problems.values():
            store.observe_incident(p.key, p.kind, p.subject, p.detail, now)
        incidents = store.open_incidents()
        failing = {i.key[len(_TARGET):] for i in incidents if i.kind == "target"}
        alert_to = [str(t) for t in settings.alerts.to]
        result = CheckResult()
        for incident in incidents:
            if incident.key == LLM_FAILING_KEY:
                gone = not self.deps.llm_enabled or store.llm_answered_since(incident.last_seen_at)
                threshold = LLM_FAILING_FOR
            else:
                gone = incident.key not in problems
                threshold = problems[incident.key].threshold if not gone else AT_ONCE
            if gone:
                # Recoveries go to every alert target: one that was failing is told it delivers again.
                if store.resolve_incident(incident.id, _resolution(incident, settings), alert_to, now):
                    result.resolved.append(incident)
                    if incident.alerted_at is not None:
                        log.info("resolved: %s %s", incident.kind, incident.subject)
            elif incident.alerted_at is None and now - incident.started_at >= threshold:
                healthy = [t for t in alert_to if t not in failing]
                if store.mark_alerted(incident.id, healthy, now):
                    result.alerted.append(incident)
                    log.warning("alert: %s %s: %s (to %d target(s))", incident.kind, incident.subject,
                                incident.detail, len(healthy))
        return result
