"""Groups, direct messages, edits and deletions, mentions and unread counts as people use
them: two or three people in real Chromium pages against two server processes.

Sync tests on purpose: Playwright's sync API cannot run inside pytest-asyncio's loop.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOTS = Path(__file__).resolve().parent.parent.parent / "docs" / "screenshots"
FAST = {"RT_RIGHTS_TTL": "2"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def signed_in(people: Any, server: Any, name: str) -> Any:
    person = people(server.http)
    person.sign_in(name)
    return person


def open_page(person: Any, path: str) -> None:
    person.page.goto(person.base + path)
    person.page.wait_for_selector("#status[data-state=connected]")


def bell_count(page: Any) -> Any:
    page.wait_for_selector("#feed-bell .feed[data-state=connected]")
    return page.locator("#feed-bell .count")


def test_a_group_is_created_joined_used_and_left_live(start_server: Any, people: Any, chat_users: Any) -> None:
    a, b = start_server("uvicorn", **FAST), start_server("uvicorn", **FAST)
    alice, bob, carol = (signed_in(people, srv, n) for srv, n in ((a, "alice"), (b, "bob"), (a, "carol")))
    name = unique("team")
    page = alice.page
    page.goto(a.http + "/rooms/")
    page.fill("#new-group input[name=name]", name)
    page.fill("#new-group input[name=title]", "Launch team")
    page.click("#new-group button[type=submit]")
    page.wait_for_url(f"{a.http}/groups/{name}/")
    page.wait_for_selector("#status[data-state=connected]")
    # An outsider cannot open it, and it is not in anyone else's list.
    bob.page.goto(f"{b.http}/groups/{name}/")
    expect(bob.page.locator("#forbidden")).to_be_visible()
    page.fill("#add-member input[name=username]", "bob")
    page.click("#add-member button[type=submit]")
    expect(page.locator("#members li")).to_have_count(2)
    page.fill("#add-member input[name=username]", "carol")
    page.click("#add-member button[type=submit]")
    expect(page.locator("#members li")).to_have_count(3)
    page.wait_for_selector("#status[data-state=connected]")

    open_page(bob, f"/groups/{name}/")
    open_page(carol, f"/groups/{name}/")
    alice.say("Welcome, both of you")
    bob.say("Thanks!")
    for person in (alice, bob, carol):
        expect(person.page.locator("#messages li.message .text")).to_have_text(["Welcome, both of you", "Thanks!"])
    bob.page.goto(f"{b.http}/rooms/")
    expect(bob.page.locator(f'#conversations li[data-stream="group:{name}"]')).to_contain_text("Launch team")
    open_page(bob, f"/groups/{name}/")
    expect(bob.page.locator("#messages li.message .text")).to_have_text(["Welcome, both of you", "Thanks!"])
    (SCREENSHOTS / "chat-group.png").parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "chat-group.png"), full_page=True)

    # The owner removes bob (on the other process): his open page loses the group, live.
    bob_row = page.locator("#members li", has_text="bob")
    bob_row.locator("form.remove-member button").click()
    expect(page.locator("#members li")).to_have_count(2)
    expect(bob.page.locator("#notice")).to_contain_text("no longer have access", timeout=5000)
    expect(bob.page.locator("#text")).to_be_disabled()
    # Carol stays and still chats; then she leaves by herself.
    alice.say("Just us now")
    expect(carol.page.locator("#messages li.message .text")).to_contain_text(["Just us now"])
    carol.page.click("#leave-group button")
    carol.page.wait_for_url(f"{a.http}/rooms/")
    page.reload()  # the members panel is drawn by the server
    expect(page.locator("#members li")).to_have_count(1)
    assert not alice.errors and not bob.errors and not carol.errors


def test_a_direct_message_from_the_people_page_rings_the_bell(start_server: Any, people: Any, chat_users: Any) -> None:
    a, b = start_server("uvicorn"), start_server("uvicorn")
    alice, bob = signed_in(people, a, "alice"), signed_in(people, b, "bob")
    count = bell_count(bob.page)
    before = int(count.text_content() or 0) if count.is_visible() else 0
    alice.page.goto(a.http + "/people/")
    # Other tests sign up people whose names start with "bob": match the name exactly.
    bob_name = alice.page.locator(".person-name", has_text=re.compile(r"^bob$"))
    alice.page.locator("#people li.person", has=bob_name).locator("a.message-person").click()
    alice.page.wait_for_selector("#status[data-state=connected]")
    assert "/dm/" in alice.page.url
    alice.say("Lunch at noon?")
    expect(alice.page.locator("#messages li.message .text")).to_have_text(["Lunch at noon?"])
    # Bob is on the room list, not in the conversation: his bell rings.
    expect(count).to_have_text(str(before + 1))
    bob.page.click("#feed-bell .bell")
    item = bob.page.locator("#feed-bell .item.unread a.title").first
    expect(item).to_have_text("New message from alice")
    bob.page.goto(item.get_attribute("href") or "")  # the author's server made the link: another port here
    bob.page.wait_for_selector("#status[data-state=connected]")
    assert f"/dm/{alice_id(alice)}/" in bob.page.url
    expect(bob.page.locator("#messages li.message .text")).to_have_text(["Lunch at noon?"])
    bob.say("Yes, see you there")
    expect(alice.page.locator("#messages li.message .text")).to_have_text(["Lunch at noon?", "Yes, see you there"])
    # With the conversation open, a new message does not ring.
    rung = count.text_content()
    alice.say("Great")
    expect(bob.page.locator("#messages li.message .text")).to_have_count(3)
    bob.page.wait_for_timeout(1000)
    assert count.text_content() == rung
    alice.page.screenshot(path=str(SCREENSHOTS / "chat-dm.png"), full_page=True)
    assert not alice.errors and not bob.errors


def alice_id(alice: Any) -> str:
    return alice.page.evaluate("JSON.parse(document.getElementById('room-config').textContent).user.id")


def test_edits_and_deletions_show_live_on_both_pages(start_server: Any, people: Any, alice_and_bob: Any) -> None:
    server = start_server("uvicorn")
    room = unique("edits")
    alice, bob = alice_and_bob(server, room)
    alice.say("See you at 5")
    alice.say("Wrong room, sorry")
    bob.say("OK")
    for person in (alice, bob):
        expect(person.page.locator("#messages li.message .text")).to_have_count(3)
    # Bob cannot change Alice's messages: no buttons on them.
    expect(bob.page.locator("#messages li.message").nth(0).locator("button.edit")).to_have_count(0)
    first = alice.page.locator("#messages li.message").nth(0)
    first.hover()
    first.locator("button.edit").click()
    editor = first.locator("input.edit-text")
    editor.fill("See you at 6")
    editor.press("Enter")
    second = alice.page.locator("#messages li.message").nth(1)
    second.hover()
    second.locator("button.delete").click()
    second.locator("button.delete").click()  # "Delete?": the second click confirms
    for person in (alice, bob):
        rows = person.page.locator("#messages li.message")
        expect(rows.nth(0).locator(".text")).to_have_text("See you at 6")
        expect(rows.nth(0)).to_have_class(has_class("edited"))
        expect(rows.nth(1)).to_have_class(has_class("deleted"))
        expect(rows.nth(1).locator(".text")).to_have_text("message deleted")
        expect(rows).to_have_count(3)  # the edit and the deletion are no messages of their own
    # After a reload, from the backlog: the same.
    open_page(bob, f"/rooms/{room}/")
    rows = bob.page.locator("#messages li.message")
    expect(rows.nth(0).locator(".text")).to_have_text("See you at 6")
    expect(rows.nth(1).locator(".text")).to_have_text("message deleted")
    bob.page.screenshot(path=str(SCREENSHOTS / "chat-edited.png"), full_page=True)
    assert not alice.errors and not bob.errors


def has_class(cls: str) -> Any:
    """A class attribute that has `cls` among its classes."""
    return re.compile(rf"(^|\s){cls}(\s|$)")


def test_a_mention_rings_the_bell_and_is_highlighted(start_server: Any, people: Any, chat_users: Any) -> None:
    a, b = start_server("uvicorn"), start_server("uvicorn")
    room = unique("mentions")
    alice, bob = signed_in(people, a, "alice"), signed_in(people, b, "bob")
    count = bell_count(bob.page)
    before = int(count.text_content() or 0) if count.is_visible() else 0
    open_page(alice, f"/rooms/{room}/")
    alice.say("@bob can you review this?")
    expect(count).to_have_text(str(before + 1))
    bob.page.click("#feed-bell .bell")
    item = bob.page.locator("#feed-bell .item.unread a.title").first
    expect(item).to_have_text(f"alice mentioned you in #{room}")
    bob.page.goto(item.get_attribute("href") or "")  # the author's server made the link: another port here
    bob.page.wait_for_selector("#status[data-state=connected]")
    assert bob.page.url.endswith(f"/rooms/{room}/#m1")
    mention = bob.page.locator("#messages li.message.mentions-me")
    expect(mention).to_have_count(1)
    expect(mention.locator("span.mention")).to_have_text("@bob")
    expect(mention).to_have_class(has_class("linked"))
    # Alice's own page marks the mention, but not as hers.
    expect(alice.page.locator("#messages li.message span.mention")).to_have_text("@bob")
    expect(alice.page.locator("#messages li.message.mentions-me")).to_have_count(0)
    assert not alice.errors and not bob.errors


def test_unread_counts_drop_in_a_second_tab(start_server: Any, people: Any, chat_users: Any) -> None:
    a, b = start_server("uvicorn"), start_server("uvicorn")
    room = unique("unread")
    alice, bob = signed_in(people, a, "alice"), signed_in(people, b, "bob")
    open_page(bob, f"/rooms/{room}/")  # he follows the room from now on
    open_page(alice, f"/rooms/{room}/")
    with bob.page.expect_response(lambda r: "/api/read/" in r.url and r.request.method == "POST"):
        alice.say("first")  # bob's page sees it and marks it read
    expect(bob.page.locator("#messages li.message .text")).to_have_text(["first"])
    bob.page.goto(b.http + "/rooms/")
    badge = bob.page.locator(f'#conversations li[data-stream="room:{room}"] .unread')
    expect(badge).to_be_hidden()
    alice.say("second")
    alice.say("third")
    expect(badge).to_have_text("2")
    # A second tab (the other process) reads the room: the first tab's count drops, live.
    tab = bob.context.new_page()
    tab.on("pageerror", lambda exc: bob.errors.append(str(exc)))
    tab.goto(f"{a.http}/rooms/{room}/")
    tab.wait_for_selector("#status[data-state=connected]")
    expect(tab.locator("#messages li.message .text")).to_have_text(["first", "second", "third"])
    expect(badge).to_be_hidden(timeout=5000)
    assert not alice.errors and not bob.errors
