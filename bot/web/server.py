"""The dashboard's HTTP side: routes, login, sessions, CSRF and security headers (aiohttp).

Imported only when a server starts. Pages are read and rendered in a worker thread, so the event
loop (which also runs the bot's polls and deliveries) is never held by a page."""

from __future__ import annotations

import asyncio
import logging
from importlib import resources
from typing import Awaitable, Callable
from urllib.parse import quote, urlsplit

import jinja2
from aiohttp import web

from bot.web import pages
from bot.web.access import GUEST, LANG_COOKIE, OPERATOR, SESSION_COOKIE, SESSION_SECONDS, Access, is_loopback
from bot.web.deps import DashboardDeps
from bot.web.i18n import LANGUAGES, pick_language, words
from bot.web.subscriptions_page import SubscriptionsPage
from bot.web.throttle import FailedLogins

log = logging.getLogger("briefbot.dashboard")

# No script at all; styles and images only from this server; no framing; forms post only here.
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_SESSION_KEY = web.RequestKey("dashboard_session", tuple)
_FORM_KEY = web.RequestKey("dashboard_form", object)


def redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, **SECURITY_HEADERS})


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def _web_url(value: str) -> str:
    """A link target from a feed: http(s) only, so no `javascript:` or `data:` link is ever drawn."""
    return pages.web_link(value) or "#"


def template_env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("bot.web", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = _when
    env.filters["web_url"] = _web_url
    return env


def local_path(value: str | None) -> str:
    """A path on this server to go back to; anything else (another host, a scheme) is the overview."""
    value = value or "/"
    parts = urlsplit(value)
    if not value.startswith("/") or value.startswith("//") or "\\" in value or parts.scheme or parts.netloc:
        return "/"
    return value


class Dashboard:
    def __init__(self, deps: DashboardDeps, access: Access):
        self.deps = deps
        self.access = access
        self.failed_logins = FailedLogins()
        self.jinja = template_env()
        self.css = resources.files("bot.web").joinpath("static/dashboard.css").read_bytes()
        self.subscriptions = SubscriptionsPage(deps)
        self.preview = pages.DigestPreview()

    # ------------------------------------------------------------------ plumbing
    def add_routes(self, router: web.UrlDispatcher) -> None:
        page, write = self._page_guard, self._write_guard
        router.add_get("/", page(self.overview))
        router.add_get("/briefs", page(self.briefs))
        router.add_get("/briefs/{brief_id}", page(self.brief))
        router.add_get("/deliveries", page(self.deliveries))
        router.add_post("/deliveries/{row_id:\\d+}/retry", write(self.retry))
        router.add_get("/digests", page(self.digests))
        router.add_get("/subscriptions", page(self.subscriptions_view))
        router.add_post("/subscriptions", write(self.subscriptions_change))
        router.add_get("/login", self._open(self.login_form))
        router.add_post("/login", self._open(self.login))
        router.add_post("/logout", write(self.logout))
        router.add_get("/lang/{lang}", self._open(self.switch_language))
        router.add_get("/static/dashboard.css", self.stylesheet)

    def _session(self, request: web.Request) -> tuple[str, str] | None:
        return self.access.read_session(request.cookies.get(SESSION_COOKIE))

    def _host_ok(self, request: web.Request) -> bool:
        # Without a token, only loopback names may be asked for: a page elsewhere cannot rebind its
        # own host name to 127.0.0.1 and read the dashboard.
        return bool(self.access.token) or is_loopback(request.url.host or "")

    def _open(self, handler: Handler) -> Handler:
        """Pages anyone may open (login, language): a guest session is issued for their forms."""
        async def guarded(request: web.Request) -> web.StreamResponse:
            if not self._host_ok(request):
                return self._plain(403, "This dashboard answers only on a loopback address.")
            session = self._session(request)
            fresh = None
            if session is None:
                fresh = self.access.new_session(GUEST)
                session = self.access.read_session(fresh)
            request[_SESSION_KEY] = session
            response = await handler(request)
            if fresh is not None:
                self._set_session(request, response, fresh)
            return self._secured(response)
        return guarded

    def _authorised(self, request: web.Request) -> bool | None:
        """True for an operator; False for a wrong Bearer token; None with no credentials at all."""
        auth = request.headers.get("Authorization")
        if auth is not None:
            return self._token_tried(request, self.access.bearer_ok(auth))
        session = request.get(_SESSION_KEY)
        return True if session and self.access.is_operator(session[0]) else None

    def _page_guard(self, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            if "Authorization" in request.headers and (refused := self._throttled(request)):
                return refused
            verdict = self._authorised(request)
            if verdict:
                return await handler(request)
            if verdict is None and request.method == "GET":  # a person without a session: log in first
                return redirect(f"/login?next={quote(request.path_qs, safe='')}")
            return self._plain(401, "Log in, or send Authorization: Bearer <BRIEFBOT_WEB_TOKEN>.",
                               {"WWW-Authenticate": 'Bearer realm="briefbot"'})
        return self._open(guarded)

    def _write_guard(self, handler: Handler) -> Handler:
        """A change: an operator, and a form carrying this session's CSRF token (a Bearer request
        carries none: a browser never adds that header on its own)."""
        async def checked(request: web.Request) -> web.StreamResponse:
            form = await request.post()
            request[_FORM_KEY] = form
            if not self.access.bearer_ok(request.headers.get("Authorization")):
                session = request[_SESSION_KEY]
                if not self.access.csrf_ok(session[1], form.get("csrf")):
                    return self._plain(403, "The form's CSRF token is missing or wrong: reload the page and try again.")
            return await handler(request)
        return self._page_guard(checked)

    def _set_session(self, request: web.Request, response: web.StreamResponse, value: str) -> None:
        response.set_cookie(SESSION_COOKIE, value, max_age=SESSION_SECONDS, path="/", httponly=True,
                            samesite="Strict", secure=request.secure)

    def _secured(self, response: web.StreamResponse) -> web.StreamResponse:
        response.headers.update(SECURITY_HEADERS)
        return response

    def _plain(self, status: int, text: str, headers: dict | None = None) -> web.Response:
        return self._secured(web.Response(status=status, text=text + "\n", headers=headers))

    def _lang(self, request: web.Request) -> str:
        return pick_language(request.query.get("lang"), request.cookies.get(LANG_COOKIE),
                             request.headers.get("Accept-Language"))

    async def render(self, request: web.Request, template: str, build: Callable[[], dict],
                     status: int = 200) -> web.Response:
        lang = self._lang(request)
        session = request[_SESSION_KEY]
        common = {"t": words(lang), "lang": lang, "csrf": self.access.csrf_token(session[1]),
                  "path": request.path, "here": request.path_qs, "other_lang": "en" if lang == "zh" else "zh",
                  "logged_in": session[0] == OPERATOR, "notice": None}

        def work() -> str | None:
            context = build()
            if context is None:
                return None
            return self.jinja.get_template(template).render({**common, **context})

        html = await asyncio.to_thread(work)
        if html is None:
            return self._plain(404, "Not found.")
        return web.Response(status=status, text=html, content_type="text/html", charset="utf-8")

    # ------------------------------------------------------------------ pages
    async def overview(self, request: web.Request) -> web.Response:
        return await self.render(request, "overview.html", lambda: pages.overview(self.deps))

    async def briefs(self, request: web.Request) -> web.Response:
        query = request.query
        q, topic, before = query.get("q", "")[:2000], query.get("topic", ""), query.get("before", "")[:64]
        return await self.render(request, "briefs.html", lambda: pages.brief_list(self.deps, q, topic, before))

    async def brief(self, request: web.Request) -> web.Response:
        brief_id = request.match_info["brief_id"]
        return await self.render(request, "brief.html", lambda: pages.brief_page(self.deps, brief_id))

    async def deliveries(self, request: web.Request) -> web.Response:
        q = request.query
        notice = None
        if q.get("retried", "").isdigit():
            notice = words(self._lang(request))["retried"].format(id=q["retried"])
        elif q.get("not_failed", "").isdigit():
            notice = words(self._lang(request))["not_failed"].format(id=q["not_failed"])

        def build() -> dict:
            return {**pages.delivery_list(self.deps, q.get("status", ""), q.get("target", ""), q.get("since", "")),
                    "notice": notice}
        return await self.render(request, "deliveries.html", build)

    async def retry(self, request: web.Request) -> web.StreamResponse:
        row_id = int(request.match_info["row_id"])
        retried = await asyncio.to_thread(pages.retry_delivery, self.deps, row_id)
        log.info("dashboard: delivery %d %s", row_id, "queued again" if retried else "not retried (not failed)")
        back = local_path(request[_FORM_KEY].get("next"))
        sep = "&" if "?" in back else "?"
        return redirect(f"{back}{sep}{'retried' if retried else 'not_failed'}={row_id}")

    async def digests(self, request: web.Request) -> web.Response:
        return await self.render(request, "digests.html", lambda: pages.digests(self.deps, self.preview))

    async def subscriptions_view(self, request: web.Request) -> web.Response:
        # The answer to the change just made comes back sealed: a link cannot put words on the page.
        message = request.query.get("done", "")
        shown = message if self.access.seal_ok(message, request.query.get("seal", "")) else None
        return await self.render(request, "subscriptions.html", lambda: {**self.subscriptions.view(), "notice": shown})

    async def subscriptions_change(self, request: web.Request) -> web.StreamResponse:
        message = (await self.subscriptions.change(request[_FORM_KEY]))[:300]
        log.info("dashboard: subscriptions %s: %s", request[_FORM_KEY].get("action", "")[:20], message)
        return redirect(f"/subscriptions?done={quote(message, safe='')}&seal={self.access.seal(message)}")

    # ------------------------------------------------------------------ login, language, style
    async def login_form(self, request: web.Request, failed: bool = False) -> web.Response:
        if not self.access.token:
            return redirect("/")
        next_path = local_path(request.query.get("next") or (await request.post()).get("next"))
        return await self.render(request, "login.html", lambda: {"failed": failed, "next": next_path},
                                 status=403 if failed else 200)

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        if not self.access.token:
            return redirect("/")
        if not self.access.csrf_ok(request[_SESSION_KEY][1], form.get("csrf")):
            return self._plain(403, "The form's CSRF token is missing or wrong: reload the page and try again.")
        if refused := self._throttled(request):
            return refused
        if not self._token_tried(request, self.access.token_ok(str(form.get("token", "")))):
            log.warning("dashboard: a login with a wrong token from %s", request.remote)
            return await self.login_form(request, failed=True)
        response = redirect(local_path(form.get("next")))
        # A new session id on login: one fixed before it (by anyone) is worth nothing after.
        self._set_session(request, response, self.access.new_session(OPERATOR))
        return response

    def _token_tried(self, request: web.Request, right: bool) -> bool:
        """Count a token offered from the request's address; a right one clears the count."""
        address = request.remote or "?"
        if right:
            self.failed_logins.succeeded(address)
        else:
            self.failed_logins.failed(address)
        return right

    def _throttled(self, request: web.Request) -> web.Response | None:
        """429 for an address that offered too many wrong tokens lately, before its next try is read."""
        wait = self.failed_logins.wait_seconds(request.remote or "?")
        if not wait:
            return None
        return self._plain(429, f"Too many wrong tokens from this address; try again in {wait // 60 + 1} minutes.",
                           {"Retry-After": str(wait)})

    async def logout(self, request: web.Request) -> web.StreamResponse:
        response = redirect("/login" if self.access.token else "/")
        response.del_cookie(SESSION_COOKIE, path="/")
        return self._secured(response)

    async def switch_language(self, request: web.Request) -> web.StreamResponse:
        lang = request.match_info["lang"]
        response = redirect(local_path(request.query.get("next")))
        if lang in LANGUAGES:
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, path="/", samesite="Strict",
                                httponly=True, secure=request.secure)
        return response

    async def stylesheet(self, _request: web.Request) -> web.Response:
        response = web.Response(body=self.css, content_type="text/css", charset="utf-8")
        response.headers.update(SECURITY_HEADERS)
        response.headers["Cache-Control"] = "max-age=3600"
        return response


def add_dashboard(web_app: web.Application, deps: DashboardDeps) -> bool:
    """Mount the dashboard's routes when its access rule allows it; log which, either way."""
    access = deps.access()
    if not access.enabled:
        log.warning(access.describe())
        return False
    Dashboard(deps, access).add_routes(web_app.router)
    log.info(access.describe())
    return True


def dashboard_app(deps: DashboardDeps) -> web.Application:
    web_app = web.Application()
    add_dashboard(web_app, deps)
    return web_app

