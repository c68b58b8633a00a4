"""The dashboard's own words in English and Chinese (feed text and briefs are shown as stored)."""

from __future__ import annotations

LANGUAGES = ("en", "zh")

_WORDS: dict[str, tuple[str, str]] = {
    "overview": ("Overview", "概览"),
    "briefs": ("Briefs", "简报"),
    "deliveries": ("Deliveries", "投递"),
    "digests": ("Digests", "摘要"),
    "subscriptions": ("Subscriptions", "订阅"),
    "logout": ("Log out", "退出"),
    "login": ("Log in", "登录"),
    "login_title": ("briefbot dashboard", "briefbot 控制台"),
    "token": ("Web token", "访问令牌"),
    "login_failed": ("That token is not the dashboard's token.", "令牌不正确。"),
    "feeds": ("Feeds", "订阅源"),
    "feed": ("Feed", "订阅源"),
    "status": ("Status", "状态"),
    "last_fetch": ("Last fetch", "上次抓取"),
    "next_poll": ("Next poll", "下次轮询"),
    "failures": ("Failures", "连续失败"),
    "last_error": ("Last error", "最近错误"),
    "items": ("Items", "条目"),
    "backlog": ("Outbox backlog", "待投递"),
    "pending": ("pending", "待发送"),
    "failed": ("failed", "失败"),
    "sent": ("sent", "已发送"),
    "llm_today": ("LLM today (UTC)", "今日模型用量（UTC）"),
    "calls": ("Calls", "调用"),
    "tokens": ("Tokens", "令牌数"),
    "cost": ("Estimated cost", "估算费用"),
    "chart_title": ("Stories per topic per day, last 14 days (UTC)", "近14天每日各主题新闻数（UTC）"),
    "search": ("Search", "搜索"),
    "search_hint": ("words in English or Chinese", "英文或中文关键词"),
    "topic": ("Topic", "主题"),
    "all_topics": ("All topics", "全部主题"),
    "no_briefs": ("No briefs match.", "没有匹配的简报。"),
    "older": ("Older briefs →", "更早的简报 →"),
    "figures": ("Key figures", "关键数字"),
    "sources": ("Sources", "来源"),
    "published": ("Published", "发布时间"),
    "created": ("Created", "创建时间"),
    "target": ("Target", "目标"),
    "kind": ("Kind", "类型"),
    "attempts": ("Attempts", "尝试次数"),
    "message": ("Message", "消息"),
    "follow_ups": ("Follow-ups", "后续报道"),
    "no_follow_ups": ("No follow-ups.", "暂无后续报道。"),
    "no_deliveries": ("No deliveries.", "没有投递记录。"),
    "retry": ("Retry", "重试"),
    "retried": ("Delivery {id} is queued again.", "投递 {id} 已重新排队。"),
    "not_failed": ("Delivery {id} has not failed; nothing to retry.", "投递 {id} 未失败，无需重试。"),
    "filter": ("Filter", "筛选"),
    "any": ("any", "全部"),
    "since": ("Queued within", "排队时间范围"),
    "past_runs": ("Past runs", "历史运行"),
    "next_digest": ("Next issue of each digest (preview)", "各摘要的下一期（预览）"),
    "scheduled_for": ("Scheduled for", "计划时间"),
    "stories": ("Stories", "新闻数"),
    "no_digest": ("No digest is configured in feeds.yaml.", "feeds.yaml 中未配置摘要。"),
    "no_runs": ("No digest has run yet.", "尚无摘要运行记录。"),
    "name": ("Name", "名称"),
    "origin": ("From", "来源"),
    "from_file": ("feeds.yaml", "feeds.yaml"),
    "from_chat": ("chat", "聊天"),
    "follows": ("Follows", "关注"),
    "channel": ("Channel", "频道"),
    "add_feed": ("Add a feed", "添加订阅源"),
    "remove": ("Remove", "移除"),
    "add": ("Add", "添加"),
    "follow": ("Follow", "关注"),
    "url": ("Feed URL", "订阅源地址"),
    "topics_opt": ("Topics (optional, space-separated)", "主题（可选，空格分隔）"),
    "new_target": ("or another", "或其他目标"),
    "language": ("中文", "English"),
}


def words(lang: str) -> dict[str, str]:
    """Every interface word in `lang` (English for any other value)."""
    index = 1 if lang == "zh" else 0
    return {key: pair[index] for key, pair in _WORDS.items()}


def pick_language(query: str | None, cookie: str | None, accept: str | None) -> str:
    """The interface language: ?lang=, else the cookie the switch set, else the browser's first choice."""
    for choice in (query, cookie):
        if choice in LANGUAGES:
            return choice
    first = (accept or "").split(",")[0].strip().lower()
    return "zh" if first.startswith("zh") else "en"
