"""Who may use the dashboard: the web token, the session cookie that a login gives, and the CSRF
token every form carries. Pure functions over strings; the server applies them to requests.

Sessions are stateless (signed with a key derived from BRIEFBOT_WEB_TOKEN), so any worker serving
the dashboard against the shared database accepts a session another one issued, and changing the
token ends every session."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from dataclasses import dataclass, field

SESSION_COOKIE = "briefbot_session"
LANG_COOKIE = "briefbot_lang"
SESSION_SECONDS = 12 * 3600
# A visitor who has not logged in yet (or anyone, on a loopback dashboard without a token).
GUEST, OPERATOR = "guest", "operator"


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[] ")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Access:
    """The dashboard's access rule: with a token, operators log in or send it as a Bearer token;
    without one, the dashboard is served only on a loopback address, to anyone who can reach it."""

    token: str | None
    bind: str
    # Signs sessions and CSRF tokens: from the token, else random for this process.
    key: bytes = field(default=b"", repr=False)

    @classmethod
    def from_token(cls, token: str | None, bind: str) -> "Access":
        seed = token.encode("utf-8") if token else secrets.token_bytes(32)
        return cls(token=token, bind=bind, key=hashlib.sha256(b"briefbot-dashboard\x00" + seed).digest())

    @property
    def enabled(self) -> bool:
        return bool(self.token) or is_loopback(self.bind)

    def describe(self) -> str:
        """The log line saying whether the dashboard is on, and why."""
        if self.token:
            return "dashboard on: operators log in with BRIEFBOT_WEB_TOKEN (or send it as a Bearer token)"
        if is_loopback(self.bind):
            return (f"dashboard on without a login: BRIEFBOT_WEB_TOKEN is not set and the server is bound to "
                    f"loopback ({self.bind})")
        return (f"dashboard off: BRIEFBOT_WEB_TOKEN is not set and the server is bound to {self.bind}, not "
                f"loopback; set BRIEFBOT_WEB_TOKEN, or BRIEFBOT_BIND=127.0.0.1")

    # ------------------------------------------------------------------ credentials
    def bearer_ok(self, header: str | None) -> bool:
        if not self.token or not header or not header.startswith("Bearer "):
            return False
        return hmac.compare_digest(header[7:].strip().encode("utf-8"), self.token.encode("utf-8"))

    def token_ok(self, offered: str) -> bool:
        return bool(self.token) and hmac.compare_digest(offered.strip().encode("utf-8"), self.token.encode("utf-8"))

    def _sign(self, text: str) -> str:
        return hmac.new(self.key, text.encode("utf-8"), hashlib.sha256).hexdigest()

    def new_session(self, role: str, now: float | None = None) -> str:
        expires = int((now or time.time()) + SESSION_SECONDS)
        body = f"{role}.{secrets.token_hex(16)}.{expires}"
        return f"{body}.{self._sign(body)}"

    def read_session(self, cookie: str | None, now: float | None = None) -> tuple[str, str] | None:
        """(role, session id) of a cookie this dashboard signed and that has not expired, else None."""
        parts = (cookie or "").split(".")
        if len(parts) != 4 or parts[0] not in (GUEST, OPERATOR) or not parts[2].isdigit():
            return None
        body = ".".join(parts[:3])
        if not hmac.compare_digest(parts[3], self._sign(body)) or int(parts[2]) < (now or time.time()):
            return None
        return parts[0], parts[1]

    def csrf_token(self, session_id: str) -> str:
        return self._sign(f"csrf.{session_id}")[:40]

    def csrf_ok(self, session_id: str, offered: str | None) -> bool:
        return bool(offered) and hmac.compare_digest(offered.encode("utf-8"), self.csrf_token(session_id).encode("utf-8"))

    def seal(self, text: str) -> str:
        """A mark that this dashboard wrote `text` (a message carried through a redirect)."""
        return self._sign(f"seal.{text}")[:32]

    def seal_ok(self, text: str, offered: str) -> bool:
        return bool(text) and hmac.compare_digest(offered.encode("utf-8"), self.seal(text).encode("utf-8"))

    def is_operator(self, role: str | None) -> bool:
        """A session's holder may use the dashboard: logged in, or anyone when no token is set."""
        if role is None:
            return False
        return role == OPERATOR or not self.token
