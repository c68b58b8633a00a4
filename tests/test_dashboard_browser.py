"""The dashboard in a real browser: headless Chromium (Debian's chromium + chromium-driver) driven by
Selenium, against the bot's own HTTP server. A missing browser fails these tests; it is never a skip.

Each page is saved as a screenshot in $DASHBOARD_SCREENSHOTS (default: the test run's temporary
directory). `DASHBOARD_SCREENSHOTS=docs/dashboard .venv/bin/python -m pytest -q -p no:cacheprovider
tests/test_dashboard_browser.py` regenerates the README's screenshots."""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from feedgen import Entry, rss
from loopback import LoopbackServer, Reply
from test_dashboard_support import TOKEN, BotHttpServer, make_app, make_brief, save, seed, utc_now

from bot.models import Source

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
HOSTILE_IMG = "<img src=x onerror=alert(1)>"
HOSTILE_SCRIPT = "<script>window.__pwned = 1; alert(2)</script>"


def _executable(name: str, default: str) -> str:
    path = shutil.which(name) or (default if os.path.exists(default) else None)
    assert path, (f"{name} is not installed: the dashboard's browser tests need Debian's chromium and "
                  f"chromium-driver (apt-get install -y chromium chromium-driver; .ci/run does it)")
    return path


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    where = Path(os.environ.get("DASHBOARD_SCREENSHOTS") or tmp_path_factory.mktemp("dashboard-screenshots"))
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = _executable("chromium", CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1000", "--lang=en-US", "--hide-scrollbars"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(_executable("chromedriver", CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The bot's HTTP server with a token, over a store seeded with known stories, one failed
    delivery and one story whose every text is hostile markup."""
    tmp = tmp_path_factory.mktemp("dashboard-browser")
    app = make_app(tmp, f"sqlite:///{tmp}/briefbot.db", BRIEFBOT_WEB_TOKEN=TOKEN)
    now = utc_now()
    seeded = seed(app.store, now)
    hostile = make_brief(900, "tariff", now - timedelta(minutes=1), f"{HOSTILE_IMG} tariff {HOSTILE_SCRIPT}",
                         f"关税 {HOSTILE_IMG}")
    hostile.sources.append(Source(url="javascript:alert(3)", feed="wire-en", title=HOSTILE_SCRIPT))
    hostile.figures[0].label = {"en": HOSTILE_IMG, "zh": HOSTILE_SCRIPT}
    save(app.store, hostile)
    entries = [Entry("EU weighs tariff on Chinese magnets", "Brussels weighs a 25% tariff.", guid="s-1"),
               Entry("Rare earth prices climb", "NdPr rose 3%.", guid="s-2")]
    with LoopbackServer() as feeds, BotHttpServer(app) as server:
        feed_url = feeds.route("/metals.xml", Reply(200, rss(entries), {"Content-Type": "application/rss+xml"}))
        yield server, seeded, hostile, feed_url


@pytest.fixture
def operator(browser, site):
    """The browser holds an operator's session (logged in through the form)."""
    server = site[0]
    browser.get(server.base_url + "/")
    if browser.current_url.startswith(server.base_url + "/login"):
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        submit(browser, "login-button")
    assert browser.current_url == server.base_url + "/"
    return browser


def submit(driver, element_id: str) -> None:
    """Click a button or link and wait until the browser has loaded the page it leads to."""
    page = driver.find_element(By.TAG_NAME, "html")
    WebDriverWait(driver, 30).until(lambda d: _clicked(d, element_id))
    WebDriverWait(driver, 30).until(lambda d: _gone(page))
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")


# While Chromium swaps one document for the next, a node of either can be refused with this message
# rather than reported stale.
_SWAPPING = "does not belong to the document"


def _clicked(driver, element_id: str) -> bool:
    try:
        driver.find_element(By.ID, element_id).click()
    except StaleElementReferenceException:
        return False
    except WebDriverException as error:
        if _SWAPPING in str(error):
            return False
        raise
    return True


def _gone(element) -> bool:
    """Whether `element`'s document has been replaced."""
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as error:
        if _SWAPPING in str(error):
            return True
        raise
    return False


def no_alert(driver) -> bool:
    try:
        driver.switch_to.alert
    except NoAlertPresentException:
        return True
    return False


def shot(driver, where: Path, name: str) -> None:
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, max(700, min(int(height) + 40, 2400)))
    assert driver.save_screenshot(str(where / f"{name}.png"))
    driver.set_window_size(1280, 1000)


def test_log_in_and_read_the_feed_table(browser, site, screenshots):
    server, _, _, _ = site
    browser.get(server.base_url + "/")
    assert browser.current_url.startswith(server.base_url + "/login")
    shot(browser, screenshots, "login")
    browser.find_element(By.ID, "token").send_keys("wrong-token-000")
    submit(browser, "login-button")
    assert browser.find_element(By.ID, "login-error").is_displayed()
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    submit(browser, "login-button")
    assert browser.current_url == server.base_url + "/"
    rows = browser.find_elements(By.CSS_SELECTOR, "#feeds tbody tr")
    assert [r.find_element(By.CLASS_NAME, "feed-name").text for r in rows] == ["wire-en", "wire-zh", "quiet-feed"]
    assert all(r.find_element(By.CLASS_NAME, "feed-status").text == "never polled" for r in rows)
    assert browser.find_element(By.ID, "backlog-failed").text == "1"
    # The session cookie is out of reach of page scripts.
    assert "briefbot_session" not in browser.execute_script("return document.cookie")
    shot(browser, screenshots, "overview")


def test_chart_bars_match_the_stored_counts(operator, site):
    browser = operator
    server, seeded, hostile, _ = site
    browser.get(server.base_url + "/")
    bars = browser.find_elements(By.CSS_SELECTOR, "#chart rect.bar")
    assert len(bars) == 2 * 14
    expected = dict(seeded.per_day)
    key = ("tariff", hostile.created.date().isoformat())
    expected[key] = expected.get(key, 0) + 1
    shown = {(b.get_attribute("data-topic"), b.get_attribute("data-day")): b for b in bars}
    heights = {}
    for (topic, day), bar in shown.items():
        count = int(bar.get_attribute("data-count"))
        assert count == expected.get((topic, day), 0), (topic, day)
        heights[count] = heights.get(count, set()) | {round(float(bar.get_attribute("height")), 1)}
        if count == 0:
            assert float(bar.get_attribute("height")) == 0
    # One scale for every bar: equal counts draw equal heights, and height grows with the count.
    assert all(len(h) == 1 for h in heights.values())
    ordered = [heights[c].pop() for c in sorted(heights)]
    assert ordered == sorted(ordered) and len(set(ordered)) == len(ordered)


def test_search_briefs_in_chinese(operator, site, screenshots):
    browser = operator
    server, seeded, _, _ = site
    browser.get(server.base_url + "/briefs")
    browser.find_element(By.ID, "q").send_keys("稀土出口")
    submit(browser, "search-button")
    ids = [a.get_attribute("id").removeprefix("brief-") for a in browser.find_elements(By.CSS_SELECTOR, "article.brief")]
    assert ids and set(ids) == {b.id for b in seeded.briefs if "稀土出口" in b.title["zh"]}
    assert "q=%E7%A8%80%E5%9C%9F" in browser.current_url
    shot(browser, screenshots, "briefs")


def test_a_brief_page_shows_sources_and_deliveries(operator, site, screenshots):
    browser = operator
    server, seeded, _, _ = site
    browser.get(f"{server.base_url}/briefs/{seeded.failed_brief}")
    statuses = sorted(td.text for td in browser.find_elements(By.CSS_SELECTOR, "#deliveries td.status"))
    assert statuses == ["failed", "sent"]
    assert browser.find_elements(By.CSS_SELECTOR, "#sources tbody tr")
    shot(browser, screenshots, "brief")


def test_retry_a_failed_delivery(operator, site, screenshots):
    browser = operator
    server, seeded, _, _ = site
    browser.get(server.base_url + "/deliveries?status=failed")
    shot(browser, screenshots, "deliveries")
    submit(browser, f"retry-{seeded.failed_id}")
    assert f"retried={seeded.failed_id}" in browser.current_url
    assert str(seeded.failed_id) in browser.find_element(By.ID, "notice").text
    assert [r.id for r in server.app.store.outbox_rows(status="pending")] == [seeded.failed_id]
    assert not browser.find_elements(By.CSS_SELECTOR, "button.retry")


def test_hostile_titles_render_as_text_and_run_nothing(operator, site):
    browser = operator
    server, _, hostile, _ = site
    for path in ("/briefs?topic=tariff", f"/briefs/{hostile.id}"):
        browser.get(server.base_url + path)
        card = browser.find_element(By.ID, f"brief-{hostile.id}")
        assert HOSTILE_IMG in card.text and HOSTILE_SCRIPT in card.text
        assert not card.find_elements(By.TAG_NAME, "img") and not card.find_elements(By.TAG_NAME, "script")
        assert browser.find_elements(By.TAG_NAME, "script") == []
        assert browser.execute_script("return window.__pwned === undefined")
        assert no_alert(browser)
        hrefs = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "a")]
        assert not any(h and h.startswith("javascript:") for h in hrefs)


def test_digests_page_shows_the_next_digest(operator, site, screenshots):
    browser = operator
    server, _, _, _ = site
    browser.get(server.base_url + "/digests")
    preview = browser.find_element(By.ID, "digest-preview-morning")
    assert "morning" in preview.text and preview.find_elements(By.CSS_SELECTOR, "article.brief")
    shot(browser, screenshots, "digests")


def test_add_and_remove_a_subscription(operator, site, screenshots):
    browser = operator
    server, _, _, feed_url = site
    browser.get(server.base_url + "/subscriptions")
    names = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#subscription-feeds td.sub-name")]
    assert names == ["wire-en", "wire-zh", "quiet-feed"]
    form = browser.find_element(By.ID, "subscribe-form")
    form.find_element(By.ID, "sub-url").send_keys(feed_url)
    form.find_element(By.ID, "sub-topics").send_keys("tariff")
    submit(browser, "subscribe-button")
    assert "Subscribed to" in browser.find_element(By.ID, "notice").text
    (row,) = server.app.store.subscriptions()
    chat_rows = browser.find_elements(By.CSS_SELECTOR, "#subscription-feeds tr.origin-chat td.sub-name")
    assert [td.text for td in chat_rows] == [row.name]
    followed = [(r.find_element(By.CLASS_NAME, "follow-topic").text, r.find_element(By.CLASS_NAME, "follow-target").text)
                for r in browser.find_elements(By.CSS_SELECTOR, "#subscription-follows tr.origin-chat")]
    assert [topic for topic, _ in followed] == ["tariff"]
    shot(browser, screenshots, "subscriptions")
    submit(browser, f"unsubscribe-{row.name}")
    assert "Unsubscribed" in browser.find_element(By.ID, "notice").text
    assert server.app.store.subscriptions() == []
    assert not browser.find_elements(By.CSS_SELECTOR, "#subscription-feeds tr.origin-chat")
    # The follow the subscription made stays until it is removed on its own.
    (button,) = browser.find_elements(By.CSS_SELECTOR, "#subscription-follows tr.origin-chat button.unfollow")
    submit(browser, button.get_attribute("id"))
    assert "Unfollowed tariff" in browser.find_element(By.ID, "notice").text
    assert server.app.store.follows() == []


def test_switch_the_interface_to_chinese_and_back(operator, site, screenshots):
    browser = operator
    server, _, _, _ = site
    browser.get(server.base_url + "/briefs")
    submit(browser, "lang-switch")
    assert browser.current_url == server.base_url + "/briefs"
    assert browser.find_element(By.ID, "nav-briefs").text == "简报"
    assert browser.find_element(By.ID, "search-button").text == "搜索"
    browser.get(server.base_url + "/")
    shot(browser, screenshots, "overview-zh")
    submit(browser, "lang-switch")
    assert browser.find_element(By.ID, "nav-briefs").text == "Briefs"
