"""Secrets kept out of everything briefbot shows or logs: the values it knows (tokens and keys from
the environment), and text shaped like a token even when its value is unknown (a token an API
echoes in an error, a webhook address)."""

from __future__ import annotations

import re
from typing import Iterable

__all__ = ["redact"]

# Each keeps its group 1 (what kind of secret it was) and hides the rest.
_TOKEN_PATTERNS = [
    re.compile(r"(/api(?:/v\d+)?/webhooks/\d+/)[\w.-]+"),
    re.compile(r"\b(xox[abposr]-)[\w-]+"),
    re.compile(r"\b(xapp-)[\w-]+"),
    re.compile(r"\b(sk-)[\w-]{8,}"),
    re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?(?:bot|bearer)?\s*)[\w.\-]+"),
]


def redact(text: str, secrets: Iterable[str] = (), mask: str = "***") -> str:
    """`text` with every known secret and every token-shaped word replaced by `mask`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, mask)
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + mask, text)
    return text
