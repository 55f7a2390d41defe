"""The embed (static/realtime/embed.js) on a page of another origin, in a real Chromium:
a host page served by examples/embed_host.py from its own port, the realtime server on
another, tokens minted by the host's backend with the shared secret.

Sync tests on purpose: Playwright's sync API cannot run inside pytest-asyncio's loop.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.tokens import mint

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOT = Path(__file__).resolve().parent.parent.parent / "docs" / "screenshots" / "embed-widget.png"


def new_user() -> str:
    return "e" + uuid.uuid4().hex[:10]


def notify(server: Any, user_id: str, title: str, body: str = "") -> None:
    reply = httpx.post(
        f"{server.http}/api/streams/user:{user_id}/messages",
        json={"data": {"title": title, "body": body}},
        headers={"Authorization": "Bearer " + mint(sub="backend", pubs=["user:*"])},
    )
    assert reply.status_code == 201, reply.text


def notify_for_a_while(server: Any, user_id: str, prefix: str, count: int) -> list[str]:
    """`count` notifications half a second apart (titles prefix00, prefix01, ...)."""
    sent = []
    for n in range(count):
        sent.append(f"{prefix}{n:02d}")
        notify(server, user_id, sent[-1])
        time.sleep(0.5)
    return sent


def widget(page: Any, index: int = 0) -> Any:
    return page.locator("rt-feed").nth(index)


def open_host(person: Any, url: str, count: int = 1) -> None:
    person.page.goto(url)
    for index in range(count):
        expect(widget(person.page, index).locator(".feed")).to_have_attribute("data-state", "connected")


def titles(page: Any, index: int = 0) -> Any:
    return widget(page, index).locator(".item .title")


def test_widget_on_another_origin_shows_a_published_notification(start_server, embed_host, people) -> None:
    server = start_server("uvicorn")
    user = new_user()
    host = embed_host(server, user)
    assert host.url.rsplit(":", 1)[1] != str(server.port)  # another origin
    person = people(host.url)
    open_host(person, host.url + "/")

    # Publish over the HTTP API; the page notes when the count changes (its own clock).
    person.page.evaluate(
        """() => {
      const count = document.querySelector("rt-feed").shadowRoot.querySelector(".count");
      new MutationObserver(() => { window.shownAt ??= performance.timeOrigin + performance.now(); })
        .observe(count, { childList: true, characterData: true, subtree: true, attributes: true });
    }"""
    )
    sent_at = time.time() * 1000
    notify(server, user, "Your order has shipped", "Arriving on Thursday")
    expect(widget(person.page).locator(".count")).to_have_text("1", timeout=5000)
    latency = person.page.evaluate("() => window.shownAt") - sent_at
    print(f"\nembed latency, HTTP publish -> shown on the other origin: {latency:.1f} ms")
    assert 0 < latency < 5000

    # The host's own backend sends one too (the demo's button).
    person.page.click("button[type=submit]")
    expect(widget(person.page).locator(".count")).to_have_text("2")
    widget(person.page).locator(".bell").click()
    expect(titles(person.page)).to_have_text(["Hello #1", "Your order has shipped"])
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    person.page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 10_000

    # Marking read works across origins with the bearer token.
    # The count hides at once; the position is stored by the POST the click sends.
    with person.page.expect_response(lambda r: r.url.endswith(f"/api/feed/{user}/read") and r.request.method == "POST") as marked:
        widget(person.page).locator(".mark").click()
    expect(widget(person.page).locator(".count")).to_be_hidden()
    assert marked.value.ok, marked.value.status
    read = httpx.get(f"{server.http}/api/feed/{user}/read", headers={"Authorization": "Bearer " + mint(sub=user)})
    assert read.json()["seq"] >= 2
    assert person.errors == []


def test_a_classic_script_tag_shows_notifications_published_over_the_api(start_server, embed_host, people) -> None:
    """The tag as host sites paste it, without type="module", on a page of another origin:
    alone, then twice beside a module tag, each tag with one widget right after it."""
    server = start_server("uvicorn")
    user = new_user()
    host = embed_host(server, user)
    src = f"{server.http}/static/realtime/embed.js"
    fixed = mint(subs=[f"user:{user}"])
    host.config.pages["/classic"] = f"<!doctype html><title>classic</title><p>host</p>{host.config.embed_tag(classic=True)}"
    host.config.pages["/mixed"] = (
        "<!doctype html><title>mixed</title>"
        f'<p id="a">token URL</p>{host.config.embed_tag(classic=True)}'
        f'<p id="b">fixed token</p><script src="{src}" data-token="{fixed}" data-user="{user}"></script>'
        f'<p id="c">module</p>{host.config.embed_tag()}'
    )
    person = people(host.url)
    open_host(person, host.url + "/classic")
    assert person.page.evaluate("() => document.querySelector('script[src]').type") == ""
    notify(server, user, "Shipped", "Arriving on Thursday")
    expect(widget(person.page).locator(".count")).to_have_text("1")
    widget(person.page).locator(".bell").click()
    expect(titles(person.page)).to_have_text(["Shipped"])
    expect(widget(person.page).locator(".item .body")).to_have_text(["Arriving on Thursday"])

    open_host(person, host.url + "/mixed", count=3)
    kinds = person.page.evaluate(
        """() => [...document.querySelectorAll("script[src$='/realtime/embed.js']")]
          .map((s) => [s.type, s.previousElementSibling.id, s.nextElementSibling.localName])"""
    )
    assert kinds == [["", "a", "rt-feed"], ["", "b", "rt-feed"], ["module", "c", "rt-feed"]]
    notify(server, user, "Delivered")
    for index in range(3):
        expect(widget(person.page, index).locator(".count")).to_have_text("2")
    widget(person.page, 1).locator(".bell").click()
    expect(titles(person.page, 1)).to_have_text(["Delivered", "Shipped"])
    assert person.page.locator("rt-feed").count() == 3  # nothing drawn twice

    # A classic tag the page adds from its own script later gets its widget too.
    person.page.evaluate(
        """src => {
      const tag = Object.assign(document.createElement("script"), { src });
      tag.dataset.tokenUrl = "/token";
      tag.dataset.user = document.querySelector("script[data-user]").dataset.user;
      document.body.append(tag);
    }""",
        src,
    )
    expect(person.page.locator("rt-feed")).to_have_count(4)
    expect(widget(person.page, 3).locator(".count")).to_have_text("2")
    assert person.errors == []


def test_the_classic_tag_works_under_a_strict_policy_of_the_host_page(start_server, embed_host, people) -> None:
    """A host page whose own CSP allows the realtime server for scripts and connections and
    nothing inline: the widget needs no more (its styles are a constructed sheet)."""
    server = start_server("uvicorn")
    user = new_user()
    host = embed_host(server, user)
    ws = server.http.replace("http://", "ws://")
    policy = f"default-src 'none'; script-src {server.http}; connect-src 'self' {server.http} {ws}; style-src 'none'"
    host.config.pages["/strict"] = (
        f'<!doctype html><meta http-equiv="Content-Security-Policy" content="{policy}"><title>strict</title>'
        f"<p>host</p>{host.config.embed_tag(classic=True)}"
    )
    person = people(host.url)
    seen: list[str] = []
    person.page.expose_function("reportViolation", lambda directive: seen.append(directive))
    person.page.add_init_script(
        'document.addEventListener("securitypolicyviolation", (e) => window.reportViolation(e.effectiveDirective));'
    )
    open_host(person, host.url + "/strict")
    notify(server, user, "Strict")
    expect(widget(person.page).locator(".count")).to_have_text("1")
    assert widget(person.page).locator(".bell").evaluate("el => getComputedStyle(el).borderRadius") == "999px"
    person.page.wait_for_timeout(300)
    assert seen == []
    assert person.errors == []


def test_notifications_sent_while_offline_appear_once_each(start_server, embed_host, people) -> None:
    server = start_server("uvicorn")
    user = new_user()
    host = embed_host(server, user)
    person = people(host.url)
    open_host(person, host.url + "/")
    notify(server, user, "before")
    expect(widget(person.page).locator(".count")).to_have_text("1")

    person.context.set_offline(True)
    expect(widget(person.page).locator(".feed")).not_to_have_attribute("data-state", "connected")
    away = [f"while away {n}" for n in range(1, 5)]
    for title in away:
        notify(server, user, title)
    person.context.set_offline(False)
    expect(widget(person.page).locator(".feed")).to_have_attribute("data-state", "connected")
    expect(widget(person.page).locator(".count")).to_have_text("5")
    widget(person.page).locator(".bell").click()
    expect(titles(person.page)).to_have_text([*reversed(away), "before"])
    assert person.errors == []


def test_a_token_for_one_user_cannot_read_another_users_feed(start_server, embed_host, people) -> None:
    server = start_server("uvicorn")
    mine, theirs = new_user(), new_user()
    host = embed_host(server, mine)
    # Two widgets, both with tokens for `mine`: one on its own feed, one pointed at `theirs`.
    host.config.pages["/two"] = (
        "<!doctype html><title>two</title>"
        f'<p>own</p>{host.config.embed_tag()}<p>other</p>{host.config.embed_tag(user=theirs)}'
    )
    person = people(host.url)
    person.page.goto(host.url + "/two")
    expect(widget(person.page, 0).locator(".feed")).to_have_attribute("data-state", "connected")
    refused = widget(person.page, 1)
    expect(refused.locator(".feed")).to_have_attribute("data-state", "error")
    expect(refused.locator(".status")).to_contain_text("may not read")

    notify(server, theirs, "private to the other user")
    notify(server, mine, "for me")  # published after: once it shows, the other had its chance
    expect(widget(person.page, 0).locator(".count")).to_have_text("1")
    refused.locator(".bell").click()
    expect(refused.locator(".item")).to_have_count(0)
    expect(refused.locator(".count")).to_be_hidden()
    assert "private to the other user" not in person.page.content()
    assert person.page.evaluate("() => document.querySelectorAll('rt-feed')[1].shadowRoot.textContent").count("private") == 0


def test_without_a_token_the_widget_shows_an_error_and_does_not_connect(start_server, embed_host, people) -> None:
    server = start_server("uvicorn")
    host = embed_host(server, new_user())
    src = f"{server.http}/static/realtime/embed.js"
    host.config.pages["/broken"] = f'<!doctype html><script type="module" src="{src}" data-token-url="/no-such-endpoint"></script>'
    host.config.pages["/none"] = f'<!doctype html><script type="module" src="{src}"></script>'
    person = people(host.url)
    sockets: list[str] = []
    person.page.on("websocket", lambda ws: sockets.append(ws.url))
    person.page.goto(host.url + "/broken")
    expect(widget(person.page).locator(".feed")).to_have_attribute("data-state", "error")
    expect(widget(person.page).locator(".status")).to_contain_text("Could not get a token")
    person.page.goto(host.url + "/none")
    expect(widget(person.page).locator(".feed")).to_have_attribute("data-state", "error")
    expect(widget(person.page).locator(".status")).to_contain_text("No token")
    assert sockets == []


STYLE_PROPS = ["color", "font-size", "font-family", "display", "background-color", "padding-top", "width", "height", "visibility"]
HOST_BODY = """
<h1>Host title</h1>
<p class="lead">A paragraph of the host.</p>
<div class="box"><button>Host button</button></div>
<span>inline</span>
"""
HOSTILE = """<style>
* { color: red !important; font-size: 40px; font-family: monospace !important; padding: 13px; }
div { display: none }
button, span, ul, li, a { background: lime !important; display: block !important; width: 300px !important; }
.feed, .bell, .count, .title { visibility: hidden !important; }
</style>"""


def computed(page: Any, script: str) -> list[dict[str, str]]:
    return page.evaluate(
        """([script, props]) => {
      const found = new Function(script)();
      return found.map((el) => { const s = getComputedStyle(el); return Object.fromEntries(props.map((p) => [p, s.getPropertyValue(p)])); });
    }""",
        [script, STYLE_PROPS],
    )


def test_styles_do_not_cross_in_either_direction(start_server, embed_host, people) -> None:
    server = start_server("uvicorn")
    user = new_user()
    host = embed_host(server, user)
    tag = host.config.embed_tag()
    host.config.pages["/bare"] = f"<!doctype html><title>bare</title>{HOST_BODY}"
    host.config.pages["/plain"] = f"<!doctype html><title>plain</title>{HOST_BODY}{tag}"
    host.config.pages["/hostile"] = f"<!doctype html><title>hostile</title>{HOSTILE}{HOST_BODY}{tag}"
    notify(server, user, "A title", "A body")
    person = people(host.url)
    # The body grows by the widget's own box; every element of the host keeps its style.
    host_elements = "return [...document.querySelectorAll('h1, p, div, button, span')];"
    widget_elements = (
        "const r = document.querySelector('rt-feed').shadowRoot;"
        "return ['.feed', '.bell', '.count', '.panel', '.head', '.mark', '.item', '.title', '.body'].map((s) => r.querySelector(s));"
    )

    person.page.goto(host.url + "/bare")
    expect(person.page.locator("h1")).to_have_text("Host title")
    bare = computed(person.page, host_elements)
    person.page.goto(host.url + "/plain")
    expect(widget(person.page).locator(".count")).to_have_text("1")
    widget(person.page).locator(".bell").click()
    expect(titles(person.page)).to_have_text(["A title"])
    # The widget's styles leave the host page as it was without it.
    assert computed(person.page, host_elements) == bare
    plain_widget = computed(person.page, widget_elements)

    person.page.goto(host.url + "/hostile")
    expect(widget(person.page).locator(".count")).to_have_text("1")
    widget(person.page).locator(".bell").click()
    expect(titles(person.page)).to_have_text(["A title"])
    hostile_host = computed(person.page, host_elements)
    assert hostile_host != bare and hostile_host[0]["color"] == "rgb(255, 0, 0)"  # the host's rules did apply to it
    # ... and none of them reached the widget.
    assert computed(person.page, widget_elements) == plain_widget
    assert person.errors == []


def test_an_expiring_token_is_renewed_and_nothing_is_missed(start_server, embed_host, people) -> None:
    server = start_server("uvicorn")
    user = new_user()
    host = embed_host(server, user, ttl=4)
    person = people(host.url)
    open_host(person, host.url + "/")
    first_tokens = host.tokens
    # About 11 s: past two expiries of the 4 s tokens, a notification every half second.
    sent = notify_for_a_while(server, user, "n", 22)
    expect(widget(person.page).locator(".count")).to_have_text(str(len(sent)), timeout=15000)
    expect(widget(person.page).locator(".feed")).to_have_attribute("data-state", "connected")
    widget(person.page).locator(".bell").click()
    expect(titles(person.page)).to_have_text(list(reversed(sent)))
    assert host.tokens >= first_tokens + 2  # renewed from data-token-url, more than once
    assert person.errors == []


def test_renewal_times_survive_long_tokens_and_a_wrong_browser_clock(start_server, people) -> None:
    """static/feed/token.js by itself: when to renew, and the timer delay towards it."""
    server = start_server("uvicorn")
    person = people(server.http)
    person.page.goto(server.http + "/static/realtime/embed.js")
    result = person.page.evaluate(
        """async () => {
      const { renewAt, timerDelay, MAX_TIMER_DELAY, MIN_RENEW_GAP } = await import("/static/feed/token.js");
      const fetched = 1_700_000_000_000, server = 1_700_000_000;   // ms on this clock; s on the server's
      const ahead = fetched + 2 * 3600_000;                         // this clock two hours ahead
      const day = 86400;
      return {
        tenMinutes: renewAt({ iat: server, exp: server + 600 }, fetched) - fetched,
        clockAhead: renewAt({ iat: server, exp: server + 600 }, ahead) - ahead,
        clockAheadNoIat: renewAt({ exp: server + 600 }, ahead) - ahead,
        expiredNoIat: renewAt({ exp: server - 5 }, fetched) - fetched,
        brokenIat: renewAt({ iat: server, exp: server - 5 }, fetched) - fetched,
        fourSeconds: renewAt({ iat: server, exp: server + 4 }, fetched) - fetched,
        noIat: renewAt({ exp: server + 600 }, fetched) - fetched,
        smallGap: renewAt({ exp: server - 5 }, fetched, 2000) - fetched,
        thirtyDays: renewAt({ iat: server, exp: server + 30 * day }, fetched) - fetched,
        // Served from a cache: minted 590 s ago, 10 s left.
        cached: renewAt({ iat: server - 590, exp: server + 10 }, fetched) - fetched,
        cachedClockBehind: renewAt({ iat: server - 590, exp: server + 10 }, fetched - 2 * 3600_000) - (fetched - 2 * 3600_000),
        freshClockBehindALittle: renewAt({ iat: server, exp: server + 600 }, fetched - 30_000) - (fetched - 30_000),
        hourClockHalfHourAhead: renewAt({ iat: server, exp: server + 3600 }, fetched + 1800_000) - (fetched + 1800_000),
        delayFar: timerDelay(fetched + 30 * day * 1000, fetched),
        delayNear: timerDelay(fetched + 5000, fetched),
        delayPast: timerDelay(fetched - 5000, fetched),
        MAX_TIMER_DELAY, MIN_RENEW_GAP,
      };
    }"""
    )
    assert result["tenMinutes"] == 570_000  # 30 s before exp
    assert result["clockAhead"] == 570_000  # measured from the fetch: the clock does not matter
    assert result["clockAheadNoIat"] == result["MIN_RENEW_GAP"] == 30_000  # not every second
    assert result["expiredNoIat"] == 30_000 and result["brokenIat"] == 30_000
    assert result["fourSeconds"] == 3000
    assert result["noIat"] == 570_000
    assert result["smallGap"] == 2000  # the gap is a parameter
    assert result["thirtyDays"] == 30 * 86400_000 - 30_000
    # A cached token: renewed before its `exp` on a clock that agrees with it (a fifth of the 10 s left) ...
    assert result["cached"] == 8000
    # ... and by its life from the fetch on one that does not (before `iat`): a 4501 then says it ran out.
    assert result["cachedClockBehind"] == 570_000
    assert result["freshClockBehindALittle"] == 570_000  # within the slack: its life counts, not more
    assert result["hourClockHalfHourAhead"] == 1800_000 - 30_000  # early, never late
    assert result["MAX_TIMER_DELAY"] == 2**31 - 1
    assert result["delayFar"] == result["MAX_TIMER_DELAY"]  # capped: re-armed when it fires
    assert result["delayNear"] == 5000 and result["delayPast"] == 0
    assert person.errors == []


def test_tokens_the_server_keeps_refusing_end_in_an_error_not_a_loop(start_server, embed_host, people) -> None:
    """The token URL answers tokens signed with another secret: every socket gets 4501."""
    server = start_server("uvicorn")
    host = embed_host(server, new_user())
    host.config.secret = "not-the-servers-secret-" + uuid.uuid4().hex
    person = people(host.url)
    sockets: list[str] = []
    person.page.on("websocket", lambda ws: sockets.append(ws.url))
    person.page.goto(host.url + "/")
    feed = widget(person.page).locator(".feed")
    expect(feed).to_have_attribute("data-state", "error", timeout=30000)
    expect(widget(person.page).locator(".status")).to_contain_text("refused")
    seen = (host.tokens, len(sockets))
    assert 1 <= seen[0] <= 4 and 1 <= seen[1] <= 4, seen
    person.page.wait_for_timeout(3000)  # and it has stopped
    assert (host.tokens, len(sockets)) == seen
    expect(feed).to_have_attribute("data-state", "error")


def test_the_demo_token_reads_the_feed_and_cannot_post_as_the_user(start_server, embed_host) -> None:
    """The token lives in another site's page: it grants the feed and nothing that makes it the user."""
    import jwt

    server = start_server("uvicorn")
    user = new_user()
    host = embed_host(server, user)
    token = httpx.get(host.url + "/token").json()["token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert "sub" not in claims and claims["subs"] == [f"user:{user}"] and claims["iat"] < claims["exp"]
    auth = {"Authorization": "Bearer " + token}
    assert httpx.get(f"{server.http}/api/feed/{user}/read", headers=auth).status_code == 200
    posted = httpx.post(f"{server.http}/api/streams/room:lobby/messages", json={"data": {"text": "hi"}}, headers=auth)
    assert posted.status_code == 403 and posted.json()["error"]["code"] == "forbidden"
    assert f'data-user="{user}"' in httpx.get(host.url + "/").text


class StaleTokenCache:
    """A token URL behind a per-session cache: it serves one token until that expires, and
    mints each one with an `iat` long past (the cache was filled from an older token's life)."""

    def __init__(self, config: Any, left: int, age: int = 600) -> None:
        self.config, self.left, self.age = config, left, age
        self.token: str | None = None
        self.exp = 0
        self.lock = threading.Lock()

    def __call__(self) -> str:
        import jwt

        with self.lock:
            now = int(time.time())
            if self.token is None or self.exp <= time.time():
                self.exp = now + self.left
                claims = {"iat": now - self.age, "exp": self.exp, "subs": [f"user:{self.config.user_id}"]}
                self.token = jwt.encode(claims, self.config.secret, algorithm="HS256")
            return self.token


def test_cached_tokens_minted_long_ago_keep_the_widget_working_across_expiries(start_server, embed_host, people) -> None:
    """Each token's `exp - iat` is ten minutes, but it has 7 s left when served: the server
    closes with 4501 at its `exp`, long before that life is up. That close is no refusal."""
    server = start_server("uvicorn")
    user = new_user()
    host = embed_host(server, user)
    cache = StaleTokenCache(host.config, left=7)
    host.config.feed_token = cache  # type: ignore[method-assign]
    person = people(host.url)
    person.page.goto(host.url + "/")
    expect(widget(person.page).locator(".feed")).to_have_count(1)
    # Every state and status the widget shows from then on.
    person.page.evaluate(
        """() => {
      window.seen = [];
      const feed = document.querySelector("rt-feed").shadowRoot.querySelector(".feed");
      const note = () => window.seen.push([feed.dataset.state, feed.querySelector(".status")?.textContent || ""]);
      note();
      new MutationObserver(note).observe(feed, { attributes: true, childList: true, characterData: true, subtree: true });
    }"""
    )
    expect(widget(person.page).locator(".feed")).to_have_attribute("data-state", "connected")
    first_exp = cache.exp
    # About 25 s: past three expiries of the cached tokens.
    sent = notify_for_a_while(server, user, "c", 50)
    assert cache.exp >= first_exp + 14  # the cache minted again after two expiries at least
    expect(widget(person.page).locator(".count")).to_have_text(str(len(sent)), timeout=15000)
    expect(widget(person.page).locator(".feed")).to_have_attribute("data-state", "connected")
    widget(person.page).locator(".bell").click()
    expect(titles(person.page)).to_have_text(list(reversed(sent)))
    seen = person.page.evaluate("() => window.seen")
    assert [state for state, _ in seen if state == "error"] == [], seen
    assert [text for _, text in seen if "refused" in text] == [], seen
    assert person.errors == []
