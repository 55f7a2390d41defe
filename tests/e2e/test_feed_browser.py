"""The bell in the site's navigation, in a real Chromium against a real server process:
unread count, the list, read state shared by the person's tabs, wrong notifications.

Sync tests on purpose: Playwright's sync API cannot run inside pytest-asyncio's loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.tokens import mint

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOT = Path(__file__).resolve().parent.parent.parent / "docs" / "screenshots" / "feed-bell.png"


def notify(server: Any, user_id: str, data: Any) -> int:
    """Publish on the person's feed over the HTTP API, as another team's backend would."""
    reply = httpx.post(
        f"{server.http}/api/streams/user:{user_id}/messages",
        json={"data": data},
        headers={"Authorization": "Bearer " + mint(sub="backend", pubs=["user:*"])},
    )
    assert reply.status_code == 201, reply.text
    return int(reply.json()["seq"])


def bell_user(page: Any) -> str:
    page.wait_for_selector("#feed-bell .feed[data-state=connected]")
    user_id = page.locator("#feed-bell").get_attribute("data-user-id")
    assert user_id and user_id.isdigit()
    return user_id


def test_unread_count_and_marking_read_in_one_tab_lowers_it_in_the_other(start_server, people, chat_users) -> None:
    server = start_server("uvicorn")
    alice = people(server.http)
    alice.sign_in("alice")
    first = alice.page
    second = alice.context.new_page()
    second.on("pageerror", lambda exc: alice.errors.append(str(exc)))
    second.goto(server.http + "/rooms/")
    user_id = bell_user(first)
    assert bell_user(second) == user_id
    # Earlier tests may have left notifications and a read position: start from none unread.
    first.click("#feed-bell .bell")
    if first.locator("#feed-bell .mark").is_enabled():
        first.click("#feed-bell .mark")
    for page in (first, second):
        expect(page.locator("#feed-bell .count")).to_be_hidden()

    notify(server, user_id, {"title": "Bob replied", "body": "See you at 6?", "url": "https://example.com/r/1"})
    notify(server, user_id, {"title": "New follower", "body": "Carol follows you"})
    for page in (first, second):
        expect(page.locator("#feed-bell .count")).to_have_text("2")
    items = first.locator("#feed-bell .item.unread .title")
    expect(items).to_have_text(["New follower", "Bob replied"])
    link = first.locator("#feed-bell .item a.title")
    expect(link).to_have_attribute("href", "https://example.com/r/1")

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    first.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 10_000

    # Read in the first tab: the second tab's count falls to zero without a reload.
    first.click("#feed-bell .mark")
    expect(first.locator("#feed-bell .count")).to_be_hidden()
    expect(second.locator("#feed-bell .count")).to_be_hidden()
    second.click("#feed-bell .bell")
    expect(second.locator("#feed-bell .item.unread")).to_have_count(0)
    expect(second.locator("#feed-bell .item .title")).to_have_text(["New follower", "Bob replied"])

    # A later notification counts again; a fresh page knows what was read (server state).
    notify(server, user_id, {"title": "Third", "body": ""})
    expect(second.locator("#feed-bell .count")).to_have_text("1")
    third = alice.context.new_page()
    third.goto(server.http + "/rooms/")
    bell_user(third)
    expect(third.locator("#feed-bell .count")).to_have_text("1")
    assert alice.errors == []


def test_wrong_notifications_are_ignored_and_text_stays_text(start_server, people, chat_users) -> None:
    server = start_server("uvicorn")
    bob = people(server.http)
    bob.sign_in("bob")
    user_id = bell_user(bob.page)
    bob.page.click("#feed-bell .bell")
    if bob.page.locator("#feed-bell .mark").is_enabled():
        bob.page.click("#feed-bell .mark")
    expect(bob.page.locator("#feed-bell .count")).to_be_hidden()
    wrong = [
        {"title": 5, "body": "a number as title"},
        {"body": "no title"},
        "just a string",
        [1, 2],
        None,
        {"read": {"epoch": 1, "seq": "x"}},
    ]
    for data in wrong:
        notify(server, user_id, data)
    notify(server, user_id, {"title": "<img src=x onerror=alert(1)>", "body": 42, "url": "javascript:alert(2)"})
    notify(server, user_id, {"title": "last", "body": "<b>bold?</b>", "url": "/relative/path"})
    expect(bob.page.locator("#feed-bell .count")).to_have_text("2")
    titles = bob.page.locator("#feed-bell .item .title")
    expect(titles.first).to_have_text("last")
    texts = titles.all_text_contents()
    assert texts[:2] == ["last", "<img src=x onerror=alert(1)>"]
    # Markup is text, a url that is not absolute http(s) is not followed, a non-string body is dropped.
    assert bob.page.locator("#feed-bell img, #feed-bell b").count() == 0
    assert bob.page.locator("#feed-bell .item a").count() == 0
    expect(bob.page.locator("#feed-bell .item .body").first).to_have_text("<b>bold?</b>")
    assert bob.dialogs == [] and bob.errors == []


def test_read_positions_of_a_stale_epoch_and_merging_a_reload_in_the_model(start_server, people) -> None:
    """static/feed/model.js by itself: a slow answer holding a lost epoch does not replace a
    marker of the current one; a reloaded page joins live items instead of replacing them."""
    server = start_server("uvicorn")
    person = people(server.http)
    person.page.goto(server.http + "/rooms/")
    result = person.page.evaluate(
        """async () => {
      const { FeedModel } = await import("/static/feed/model.js");
      const note = (epoch, seq, title) => ({ epoch, seq, ts: seq, data: { title, body: "" } });
      const out = {};
      const m = new FeedModel();
      m.setEpoch("new");
      out.marker = m.apply({ epoch: "new", seq: 5, ts: 5, data: { read: { epoch: "new", seq: 4 } } });
      out.staleAnswer = m.setRead({ epoch: "old", seq: 90 });
      out.older = m.setRead({ epoch: "new", seq: 3 });
      out.afterStale = { ...m.read };
      out.forward = m.setRead({ epoch: "new", seq: 6 });

      const early = new FeedModel();           // no epoch known yet: any position counts
      out.early = early.setRead({ epoch: "old", seq: 9 });
      early.setEpoch("new");
      out.currentReplacesOld = early.setRead({ epoch: "new", seq: 1 });
      out.oldAgain = early.setRead({ epoch: "old", seq: 12 });
      out.earlyRead = { ...early.read };

      const r = new FeedModel();
      r.apply(note("old", 7, "lost epoch"));
      r.apply(note("new", 2, "kept"));
      r.apply(note("new", 9, "live, newer than the page"));
      out.merged = r.merge({ epoch: "new", messages: [note("new", 2, "kept"), note("new", 3, "from the page"), note("other", 4, "wrong epoch")] });
      out.titles = r.items.map((i) => i.title);
      out.unchanged = r.merge({ epoch: "new", messages: [note("new", 3, "from the page")] });

      // Two epoch changes in a row: the subscription is in "third" when a late page of
      // "second" (or one of an epoch it has not reached yet) comes back.
      const e = new FeedModel();
      e.setEpoch("second");
      e.apply(note("second", 1, "of the second"));
      e.setEpoch("third");
      e.apply(note("third", 1, "of the third"));
      out.latePage = e.merge({ epoch: "second", messages: [note("second", 2, "late, of the second")] });
      out.aheadPage = e.merge({ epoch: "fourth", messages: [note("fourth", 1, "ahead")] });
      out.epochAfter = e.epoch;
      out.lateTitles = e.items.map((i) => i.title);
      out.noEpochYet = new FeedModel().merge({ epoch: "x", messages: [note("x", 1, "before subscribed")] });
      return out;
    }"""
    )
    assert result["marker"] is True
    assert result["staleAnswer"] is False and result["older"] is False
    assert result["afterStale"] == {"epoch": "new", "seq": 4}
    assert result["forward"] is True
    assert result["early"] is True and result["currentReplacesOld"] is True and result["oldAgain"] is False
    assert result["earlyRead"] == {"epoch": "new", "seq": 1}
    assert result["merged"] is True
    assert result["titles"] == ["live, newer than the page", "from the page", "kept"]
    assert result["unchanged"] is False
    assert result["latePage"] is False and result["aheadPage"] is False and result["epochAfter"] == "third"
    assert sorted(result["lateTitles"]) == ["of the second", "of the third"]  # the page moved nothing back
    assert result["noEpochYet"] is False
    assert person.errors == []


def test_a_notification_arriving_during_the_reload_after_recovered_false_is_kept(start_server, people, chat_users) -> None:
    """Offline past a 3-message backlog: the reconnect answers `recovered: false` and the
    page reloads over HTTP. A notification published after the server answered that read
    arrives live before the answer is applied; applying it must not wipe it."""
    server = start_server("uvicorn", RT_BACKLOG_SIZE="3", RT_HISTORY_CAP="3")
    carol = people(server.http)
    carol.sign_in("carol")
    page = carol.page
    held: list[tuple[Any, Any]] = []
    # Hold the history answer: fetched from the server now, handed to the page later.
    page.route("**/api/streams/user:*/messages*", lambda route: held.append((route, route.fetch())))
    page.goto(server.http + "/rooms/")
    user_id = bell_user(page)
    page.click("#feed-bell .bell")
    notify(server, user_id, {"title": "before", "body": ""})
    expect(page.locator("#feed-bell .item .title")).to_have_text(["before"])

    carol.context.set_offline(True)
    expect(page.locator("#feed-bell .feed")).not_to_have_attribute("data-state", "connected")
    for n in range(1, 6):
        notify(server, user_id, {"title": f"away {n}", "body": ""})
    carol.context.set_offline(False)
    for _ in range(300):
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the page never reloaded its history: no recovered: false?"

    notify(server, user_id, {"title": "during", "body": ""})
    expect(page.locator("#feed-bell .item .title").first).to_have_text("during")
    route, response = held[0]
    route.fulfill(response=response)
    expected = ["during", "away 5", "away 4", "away 3", "before"]
    expect(page.locator("#feed-bell .item .title")).to_have_text(expected)
    expect(page.locator("#feed-bell .count")).to_have_text(str(len(expected)))
    page.wait_for_timeout(300)  # nothing else comes and changes it
    expect(page.locator("#feed-bell .item .title")).to_have_text(expected)
    assert carol.errors == []


def test_the_bell_and_the_room_share_the_page_s_one_websocket(start_server, people, chat_users) -> None:
    """Streams are multiplexed (docs/protocol.md): a signed-in room page reads its room and its
    feed over one connection, not one per widget."""
    server = start_server("uvicorn")
    alice = people(server.http)
    alice.sign_in("alice")
    # The room list the sign-in landed on opens its own socket; Playwright does not always
    # report it closed after the next navigation, so it opens before the count starts.
    bell_user(alice.page)
    sockets: list[Any] = []
    alice.page.on("websocket", lambda ws: sockets.append(ws))
    alice.open_room("one-socket")
    user_id = bell_user(alice.page)
    before = notify(server, user_id, {"title": "Over the room's socket", "body": ""})
    alice.page.click("#feed-bell .bell")
    expect(alice.page.locator("#feed-bell .item .title").first).to_have_text("Over the room's socket")
    alice.say("and a message")
    expect(alice.page.locator("#messages li.message .text").last).to_have_text("and a message")
    still_open = [ws for ws in sockets if not ws.is_closed()]
    assert before >= 1 and len(still_open) == 1, [ws.url for ws in sockets]
    assert alice.errors == []


def test_a_failed_load_of_the_read_position_is_retried_not_a_lasting_error(start_server, people, chat_users) -> None:
    """Two network failures of GET /api/feed/<id>/read: the bell says it is retrying, then
    loads the position and works on; nothing wedges it in its error state."""
    server = start_server("uvicorn")
    bob = people(server.http)
    failures: list[str] = []

    def flaky(route: Any) -> None:
        if route.request.method == "GET" and len(failures) < 2:
            failures.append(route.request.url)
            route.abort("internetdisconnected")
        else:
            route.continue_()

    bob.page.route("**/api/feed/*/read", flaky)
    bob.sign_in("bob")
    page = bob.page
    page.wait_for_selector("#feed-bell .feed")
    page.evaluate(
        """() => {
      window.seen = [];
      const feed = document.querySelector("#feed-bell").shadowRoot.querySelector(".feed");
      const note = () => window.seen.push([feed.dataset.state, feed.querySelector(".status")?.textContent || ""]);
      note();
      new MutationObserver(note).observe(feed, { attributes: true, childList: true, characterData: true, subtree: true });
    }"""
    )
    user_id = bell_user(page)
    for _ in range(200):
        if len(failures) == 2 and page.evaluate("() => window.seen.at(-1)[0]") == "connected":
            break
        page.wait_for_timeout(50)
    assert len(failures) == 2
    expect(page.locator("#feed-bell .feed")).to_have_attribute("data-state", "connected")
    seen = page.evaluate("() => window.seen")
    assert all(state != "error" for state, _ in seen), seen

    notify(server, user_id, {"title": "After the blip", "body": ""})
    expect(page.locator("#feed-bell .count")).to_have_text("1")
    page.click("#feed-bell .bell")
    page.click("#feed-bell .mark")
    expect(page.locator("#feed-bell .count")).to_be_hidden()
    read = httpx.get(f"{server.http}/api/feed/{user_id}/read", headers={"Authorization": "Bearer " + mint(sub=user_id)})
    assert read.json()["seq"] >= 1
    expect(page.locator("#feed-bell .feed")).to_have_attribute("data-state", "connected")
    assert bob.errors == []
