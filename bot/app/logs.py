"""Logging: readable lines on a terminal, JSON lines otherwise, secrets always redacted."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

from bot.config.redact import redact

_CONTEXT_FIELDS = ("feed", "target", "brief_id", "digest", "error_kind", "url")


class RedactingFilter(logging.Filter):
    def __init__(self, secrets: list[str] | None = None):
        super().__init__()
        self.secrets = [s for s in (secrets or []) if s]

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if record.exc_info:
            # Render the traceback now so it is redacted too.
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in _CONTEXT_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                out[key] = value
        if record.exc_text:
            out["exc"] = record.exc_text
        return json.dumps(out, ensure_ascii=False)


def setup_logging(level: str = "INFO", secrets: list[str] | None = None, json_logs: bool | None = None,
                  stream=None, quiet_loggers: tuple[str, ...] = ()) -> None:
    """`quiet_loggers`: more library loggers to keep at WARNING (the adapters name theirs)."""
    stream = stream or sys.stderr
    if json_logs is None:
        json_logs = not (hasattr(stream, "isatty") and stream.isatty())
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if json_logs else
                         logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Library chatter (every HTTP request) drowns the bot's own story at INFO.
    for noisy in ("httpx", "httpcore", "apscheduler", "aiohttp.access", "openai", "trafilatura", "asyncio",
                  "alembic", *quiet_loggers):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
