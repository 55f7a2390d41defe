"""Who is here and who is typing on the room page, in a real Chromium against a real
server (the presence and typing frames of docs/protocol-extensions.md)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def who(person):
    return person.page.locator("#who li")


def test_two_people_see_each_other_arrive_and_leave(start_server, people, chat_users) -> None:
    server = start_server("uvicorn")
    alice, bob = people(server.http), people(server.http)
    alice.sign_in("alice")
    alice.open_room("porch")
    expect(who(alice)).to_have_text(["alice"])
    expect(alice.page.locator("#who li.me")).to_have_text("alice")
    expect(alice.page.locator("#who-count")).to_have_text("1 here")

    bob.sign_in("bob")
    bob.open_room("porch")
    expect(who(bob)).to_have_text(["alice", "bob"])
    expect(who(alice)).to_have_text(["alice", "bob"])  # the join reached alice's open page
    expect(alice.page.locator("#who-count")).to_have_text("2 here")

    # A second tab of alice's counts once in the list, and closing it leaves her listed.
    second = alice.context.new_page()
    second.goto(f"{server.http}/rooms/porch/")
    expect(second.locator("#who li")).to_have_text(["alice", "bob"])
    second.close()
    bob.page.wait_for_timeout(1500)  # let the leave of that tab and the list that follows arrive
    expect(who(bob)).to_have_text(["alice", "bob"])

    bob.page.close()
    expect(who(alice)).to_have_text(["alice"])
    expect(alice.page.locator("#who-count")).to_have_text("1 here")
    assert alice.errors == bob.errors == []


def test_typing_shows_on_the_other_page_and_clears_with_the_message(start_server, alice_and_bob) -> None:
    server = start_server("uvicorn")
    alice, bob = alice_and_bob(server, "desk")
    expect(who(alice)).to_have_text(["alice", "bob"])

    bob.page.locator("#text").press_sequentially("hello the", delay=30)
    expect(alice.page.locator("#typing")).to_have_text("bob is typing…")
    expect(alice.page.locator("#typing")).to_be_visible()
    expect(bob.page.locator("#typing")).to_be_hidden()  # nobody else types: bob sees no one

    bob.page.locator("#text").press_sequentially("re")
    bob.page.press("#text", "Enter")
    expect(alice.page.locator("#messages li.message .text")).to_have_text(["hello there"])
    expect(alice.page.locator("#typing")).to_be_hidden()  # the message ends the signal

    # Without a message, the signal runs out by itself after a few seconds.
    bob.page.locator("#text").press_sequentially("one more", delay=30)
    expect(alice.page.locator("#typing")).to_have_text("bob is typing…")
    expect(alice.page.locator("#typing")).to_be_hidden(timeout=10_000)
    assert alice.errors == bob.errors == []


def test_anonymous_reader_sees_who_is_here_but_cannot_type(start_server, people, chat_users) -> None:
    server = start_server("uvicorn")
    alice, guest = people(server.http), people(server.http)
    alice.sign_in("alice")
    alice.open_room("gallery")
    guest.open_room("gallery")
    expect(who(guest)).to_have_text(["alice"])  # guests are not listed, signed-in people are
    expect(guest.page.locator("#text")).to_have_count(0)
    expect(guest.page.locator("#composer")).to_have_count(0)
    expect(guest.page.locator("#invite")).to_be_visible()
    expect(who(alice)).to_have_text(["alice"])

    alice.page.locator("#text").press_sequentially("for the guest", delay=30)
    expect(guest.page.locator("#typing")).to_have_text("alice is typing…")
    assert alice.errors == guest.errors == []
