"""The Content-Security-Policy (config/settings.py, config/csp.py) against real server
processes: the header on every page, and the pages, the admin and /api/docs at work in
Chromium under it without a single violation or a request to another host.

Sync tests on purpose: Playwright's sync API cannot run inside pytest-asyncio's loop.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import BASE_DIR
from tests.tokens import mint

pytestmark = [pytest.mark.slow]

PAGES = ["/rooms/", "/rooms/lobby/", "/live/demo/", "/accounts/login/", "/accounts/signup/", "/api/docs", "/admin/login/"]

# Each listener reports to Python, so that what a page saw outlives its navigation.
RECORD_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportViolation({
    page: location.pathname,
    directive: event.effectiveDirective,
    blocked: event.blockedURI,
    source: event.sourceFile,
    line: event.lineNumber,
    sample: event.sample,
  });
});
"""


def directives(header: str) -> dict[str, list[str]]:
    parsed = {}
    for part in header.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def expected_policy(server: Any) -> dict[str, list[str]]:
    host = f"127.0.0.1:{server.port}"
    return {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "connect-src": ["'self'", f"ws://{host}", f"wss://{host}"],
        "img-src": ["'self'", "data:"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "object-src": ["'none'"],
    }


def record_violations(page: Any) -> list[dict[str, Any]]:
    """Every `securitypolicyviolation` the page sees from now on, across navigations."""
    seen: list[dict[str, Any]] = []
    page.expose_function("reportViolation", lambda violation: seen.append(violation))
    page.add_init_script(RECORD_VIOLATIONS)
    return seen


def settle(page: Any) -> None:
    """Violation events are queued as tasks: let them all arrive before looking."""
    page.wait_for_timeout(300)


def test_every_page_carries_the_policy(start_server) -> None:
    server = start_server("uvicorn")
    for path in PAGES:
        reply = httpx.get(server.http + path)
        assert reply.status_code == 200, path
        assert "Content-Security-Policy-Report-Only" not in reply.headers
        assert directives(reply.headers["Content-Security-Policy"]) == expected_policy(server), path
    # The policy is the page's, and names the host it was asked for.
    reply = httpx.get(f"http://localhost:{server.port}/rooms/")
    assert f"ws://localhost:{server.port}" in directives(reply.headers["Content-Security-Policy"])["connect-src"]


@pytest.mark.browser
def test_the_policy_refuses_inline_code_and_the_pages_need_none(start_server, people, chat_users) -> None:
    """The room (a message of a person and one of the server), the scoreboard and the bell,
    used in Chromium; the recorder and the policy are shown to work first."""
    server = start_server("uvicorn")
    alice = people(server.http)
    seen = record_violations(alice.page)
    alice.page.goto(server.http + "/rooms/")
    alice.page.evaluate(
        """() => {
      const script = document.createElement("script");
      script.textContent = "window.inlineRan = true";
      document.body.append(script);
      const styled = document.createElement("div");
      styled.setAttribute("style", "color: red");
      document.body.append(styled);
    }"""
    )
    for _ in range(50):
        if len(seen) >= 2:
            break
        alice.page.wait_for_timeout(100)
    assert sorted(v["directive"] for v in seen) == ["script-src-elem", "style-src-attr"], seen
    assert alice.page.evaluate("() => window.inlineRan") is None
    seen.clear()

    alice.sign_in("alice")
    alice.page.goto(server.http + "/accounts/signup/")
    room = "csp-" + uuid.uuid4().hex[:6]
    alice.open_room(room)
    alice.say("under the policy")
    expect(alice.page.locator("#messages li.message:not(.pending) .text")).to_have_text(["under the policy"])
    reply = httpx.post(
        f"{server.http}/api/streams/room:{room}/messages",
        json={"data": {"text": "from a backend"}},
        headers={"Authorization": "Bearer " + mint(pubs=[f"room:{room}"])},
    )
    assert reply.status_code == 201, reply.text
    expect(alice.page.locator("#messages li.from-server .server-label")).to_have_count(1)
    # The stylesheet applies: the composer is laid out by chat.css.
    assert alice.page.locator("#composer").evaluate("el => getComputedStyle(el).position") == "fixed"

    # The bell: a notification over the HTTP API, shown with the widget's own styles.
    user_id = alice.page.locator("#feed-bell").get_attribute("data-user-id")
    before = int(alice.page.locator("#feed-bell .count").text_content() or "0")
    reply = httpx.post(
        f"{server.http}/api/streams/user:{user_id}/messages",
        json={"data": {"title": "Under the policy", "body": "A body"}},
        headers={"Authorization": "Bearer " + mint(pubs=[f"user:{user_id}"])},
    )
    assert reply.status_code == 201, reply.text
    expect(alice.page.locator("#feed-bell .count")).to_have_text(str(before + 1))
    alice.page.click("#feed-bell .bell")
    expect(alice.page.locator("#feed-bell .item .title").first).to_have_text("Under the policy")
    assert alice.page.locator("#feed-bell .bell").evaluate("el => getComputedStyle(el).borderRadius") == "999px"

    # The scoreboard: an update over the HTTP API.
    name = "csp" + uuid.uuid4().hex[:6]
    alice.page.goto(f"{server.http}/live/{name}/")
    expect(alice.page.locator("#connection")).to_have_attribute("data-state", "live")
    alice.page.wait_for_function("s => window.scoreboard.client.subs.get(s)?.epoch != null", arg=f"live:{name}")
    update = {"home": "Rovers", "away": "United", "score": [2, 1], "clock": "67:00", "status": "second half", "event": "Goal!"}
    reply = httpx.post(
        f"{server.http}/api/streams/live:{name}/messages",
        json={"data": update},
        headers={"Authorization": "Bearer " + mint(pubs=["live:*"])},
    )
    assert reply.status_code == 201, reply.text
    expect(alice.page.locator("#home-score")).to_have_text("2")
    expect(alice.page.locator("#events li .text")).to_have_text(["Goal!"])
    settle(alice.page)
    assert seen == []
    assert alice.errors == []


def make_superuser(server_env: dict[str, str], username: str) -> None:
    code = f"from django.contrib.auth import get_user_model\nget_user_model().objects.filter(username={username!r}).update(is_superuser=True)"
    subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=BASE_DIR, env=server_env, check=True)


@pytest.mark.browser
def test_the_admin_works_under_the_policy(start_server, people, signed_in, server_env) -> None:
    server = start_server("uvicorn")
    staff = signed_in(staff=True)
    make_superuser(server_env, staff.username)
    person = people(server.http)
    seen = record_violations(person.page)
    person.page.goto(server.http + "/admin/login/")
    expect(person.page.locator("#id_username")).to_be_visible()
    person.context.add_cookies([{"name": "sessionid", "value": staff.session_key, "url": server.http}])
    for path in ["/admin/", "/admin/chat/room/", "/admin/chat/room/add/", f"/admin/auth/user/{staff.user_id}/change/"]:
        person.page.goto(server.http + path)
        expect(person.page.locator("#site-name")).to_be_visible()
        # The admin's stylesheets and scripts ran: its header is styled, its theme toggle answers.
        assert person.page.locator("#header").evaluate("el => getComputedStyle(el).display") == "flex", path
    theme = person.page.evaluate("() => document.documentElement.dataset.theme || 'auto'")
    person.page.locator(".theme-toggle").first.click()
    assert person.page.evaluate("() => document.documentElement.dataset.theme") != theme
    person.page.goto(server.http + "/admin/chat/room/add/")
    person.page.fill("#id_name", "csp-admin-" + uuid.uuid4().hex[:6])
    person.page.click("input[name=_save]")
    expect(person.page.locator(".messagelist .success")).to_have_count(1)
    settle(person.page)
    assert seen == []
    assert person.errors == []


@pytest.mark.browser
def test_api_docs_render_from_the_servers_own_files(start_server, people) -> None:
    """Swagger UI from django-ninja's bundled static files: the operations list shows, no
    request leaves the server, nothing breaks the policy."""
    server = start_server("uvicorn")
    person = people(server.http)
    seen = record_violations(person.page)
    requested: list[str] = []
    person.page.on("request", lambda request: requested.append(request.url))
    person.page.goto(server.http + "/api/docs")
    operations = person.page.locator("#swagger-ui .opblock")
    expect(operations.first).to_be_visible()
    assert operations.count() >= 5
    expect(person.page.locator("#swagger-ui")).to_contain_text("/api/streams/{stream}/messages")
    # An operation opens, with its parameters.
    operations.first.locator(".opblock-summary").click()
    expect(operations.first.locator(".opblock-body")).to_be_visible()
    settle(person.page)
    origins = {f"{urlsplit(url).scheme}://{urlsplit(url).netloc}" for url in requested if not url.startswith("data:")}
    assert origins == {server.http}, requested
    assert any(url.endswith("/static/ninja/swagger-ui-bundle.js") for url in requested)
    assert seen == []
    assert person.errors == []
