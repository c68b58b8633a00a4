"""The platform-neutral words of an alert: a headline per language and one detail line.

Each adapter adds only its own markup, so an alert says the same on every platform."""

from __future__ import annotations

from datetime import timedelta

from bot.alerts.message import Alert


def _hours(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:.0f}" if hours >= 10 else f"{hours:.1f}".rstrip("0").rstrip(".")


def _opened_en(alert: Alert) -> str:
    since = f"{alert.since:%Y-%m-%d %H:%M} UTC"
    hours = _hours(alert.at - alert.since)
    return {
        "feed-failing": f"Feed {alert.subject} has been failing since {since} ({hours} h)",
        "feed-disabled": f"Feed {alert.subject} is switched off and no longer polled",
        "target": f"Posting to {alert.subject} fails; its messages are not delivered",
        "llm-failing": f"The LLM has been failing since {since} ({hours} h); briefs are extractive meanwhile",
        "llm-budget": "The LLM's daily token budget is used up; briefs are extractive until the next UTC day",
    }.get(alert.kind, f"{alert.subject} is failing")


def _opened_zh(alert: Alert) -> str:
    since = f"{alert.since:%Y-%m-%d %H:%M} UTC"
    hours = _hours(alert.at - alert.since)
    return {
        "feed-failing": f"订阅源 {alert.subject} 自 {since} 起持续抓取失败（{hours} 小时）",
        "feed-disabled": f"订阅源 {alert.subject} 已停用，不再抓取",
        "target": f"向 {alert.subject} 发送失败，消息未送达",
        "llm-failing": f"LLM 自 {since} 起持续失败（{hours} 小时），简报暂为摘录式",
        "llm-budget": "LLM 每日 token 预算已用完，下一个 UTC 日之前简报为摘录式",
    }.get(alert.kind, f"{alert.subject} 出现故障")


def _resolved_en(alert: Alert) -> str:
    lasted = f" after {_hours(alert.at - alert.since)} h"
    return {
        "feed-failing": f"Feed {alert.subject} is back{lasted}",
        "feed-disabled": f"Feed {alert.subject} is back{lasted}",
        "target": f"Posting to {alert.subject} works again{lasted}",
        "llm-failing": f"The LLM answers again{lasted}",
        "llm-budget": "The LLM's daily token budget is available again",
    }.get(alert.kind, f"{alert.subject} recovered{lasted}")


def _resolved_zh(alert: Alert) -> str:
    lasted = f"（历时 {_hours(alert.at - alert.since)} 小时）"
    return {
        "feed-failing": f"订阅源 {alert.subject} 已恢复{lasted}",
        "feed-disabled": f"订阅源 {alert.subject} 已恢复{lasted}",
        "target": f"向 {alert.subject} 发送已恢复{lasted}",
        "llm-failing": f"LLM 已恢复响应{lasted}",
        "llm-budget": "LLM 每日 token 预算已恢复",
    }.get(alert.kind, f"{alert.subject} 已恢复{lasted}")


def alert_label(alert: Alert, lang: str) -> str:
    """"Alert" / "告警", or "Resolved" / "已恢复"."""
    if alert.phase == "open":
        return "告警" if lang == "zh" else "Alert"
    return "已恢复" if lang == "zh" else "Resolved"


def alert_headline(alert: Alert, lang: str) -> str:
    if alert.phase == "open":
        return _opened_zh(alert) if lang == "zh" else _opened_en(alert)
    return _resolved_zh(alert) if lang == "zh" else _resolved_en(alert)


def alert_detail(alert: Alert) -> str:
    """The last error of an open incident, or what ended it. Empty when there is none."""
    return alert.detail.strip() if alert.detail else ""


def alert_lines(alert: Alert, languages: list[str]) -> list[str]:
    """The headline in each language, then the detail line (when there is one)."""
    lines = [f"{alert_label(alert, lang)}: {alert_headline(alert, lang)}" if lang != "zh"
             else f"{alert_label(alert, lang)}：{alert_headline(alert, lang)}" for lang in languages]
    detail = alert_detail(alert)
    return lines + ([detail] if detail else [])


def render_alert_text(alert: Alert, languages: list[str]) -> str:
    """The plain-text form (console, logs)."""
    return "\n".join(["─" * 72, *alert_lines(alert, languages)])
