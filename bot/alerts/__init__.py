"""Alerts when things break: one message per incident (a feed, a chat target or the LLM failing)
and one when it recovers, never one per poll.

check reads what is failing from the store and opens and closes incidents, queuing their messages
through the outbox; message is the Alert every adapter renders; render holds its shared words."""

from bot.alerts.check import CHECK_LEASE, LLM_FAILING_FOR, AlertCheck, AlertDeps, CheckResult
from bot.alerts.message import Alert, alert_for
from bot.alerts.render import alert_detail, alert_headline, alert_label, alert_lines, render_alert_text

__all__ = [
    "Alert", "AlertCheck", "AlertDeps", "CHECK_LEASE", "CheckResult", "LLM_FAILING_FOR", "alert_detail", "alert_for",
    "alert_headline", "alert_label", "alert_lines", "render_alert_text",
]
