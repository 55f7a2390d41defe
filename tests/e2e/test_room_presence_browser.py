"""Who is here and who is typing on the room page, in a real Chromium against a real
server (the presence and typing frames of docs/protocol.md)."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from playwright.sync_api import expect

from tests.tokens import mint
from tests.wsclient import Client

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
    bob.page.wait_for_timeout(1500)  # let the leave of that tab arrive
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


def count_presence_queries(person) -> list[str]:
    """The `presence` queries this person's page sends, on every socket it opens."""
    sent: list[str] = []

    def on_frame(payload) -> None:
        frame = json.loads(payload)
        if frame.get("type") == "presence":
            sent.append(frame["stream"])

    person.page.on("websocket", lambda ws: ws.on("framesent", on_frame))
    return sent


def test_joins_and_leaves_are_applied_without_asking_for_the_list_again(start_server, people, chat_users) -> None:
    server = start_server("uvicorn")
    guest, alice, bob, carol = (people(server.http) for _ in range(4))
    for person, name in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
        person.sign_in(name)
    guest_asked, alice_asked = count_presence_queries(guest), count_presence_queries(alice)
    guest.open_room("hall")
    alice.open_room("hall")
    for reader in (guest, alice):
        expect(who(reader)).to_have_text(["alice"])
    # Past the moment right after a list, when an event may have crossed it and is checked.
    guest.page.wait_for_timeout(6000)
    assert alice_asked == ["room:hall"]  # once, after subscribing
    asked_before = (len(guest_asked), len(alice_asked))

    bob.open_room("hall")
    for reader in (guest, alice):
        expect(who(reader)).to_have_text(["alice", "bob"])
    carol.open_room("hall")
    for reader in (guest, alice):
        expect(who(reader)).to_have_text(["alice", "bob", "carol"])
    second = bob.context.new_page()  # bob twice: listed once, and still listed when it closes
    second.goto(f"{server.http}/rooms/hall/")
    second.wait_for_selector("#status[data-state=connected]")
    expect(second.locator("#who li")).to_have_text(["alice", "bob", "carol"])
    second.close()
    bob.page.close()
    for reader in (guest, alice):
        expect(who(reader)).to_have_text(["alice", "carol"])
        expect(reader.page.locator("#who-count")).to_have_text("2 here")
    carol.page.close()
    for reader in (guest, alice):
        expect(who(reader)).to_have_text(["alice"])

    # Eight joins and leaves, and long enough for any query they would cause to be sent.
    guest.page.wait_for_timeout(6000)
    assert (len(guest_asked), len(alice_asked)) == asked_before
    for reader in (guest, alice):
        expect(who(reader)).to_have_text(["alice"])
    assert guest.errors == alice.errors == []


def test_a_page_back_online_asks_for_the_list_again_and_shows_who_left_meanwhile(start_server, alice_and_bob) -> None:
    server = start_server("uvicorn")
    alice, bob = alice_and_bob(server, "terrace")
    asked = count_presence_queries(alice)  # from the socket that opens next
    expect(who(alice)).to_have_text(["alice", "bob"])

    alice.context.set_offline(True)
    expect(alice.page.locator("#status")).not_to_have_attribute("data-state", "connected")
    bob.page.close()  # alice's page misses this leave
    alice.context.set_offline(False)
    expect(alice.page.locator("#status")).to_have_attribute("data-state", "connected", timeout=30_000)
    expect(who(alice)).to_have_text(["alice"], timeout=15_000)
    for _ in range(100):  # it asks after a random wait (the leave itself may come live)
        if asked:
            break
        alice.page.wait_for_timeout(100)
    assert asked == ["room:terrace"]
    assert alice.errors == []


def come_and_go(server, stream: str, seconds: float) -> threading.Thread:
    """dave and erin each join `stream` and leave again, over and over for `seconds`, in the
    background; carol stays connected the whole time and leaves at the end."""

    async def one(sub: str, name: str, until: float) -> None:
        while time.monotonic() < until:
            person = await Client.connect(server.ws + "?token=" + mint(sub=sub, name=name))
            await person.subscribe(stream)
            await asyncio.sleep(0.15)
            await person.close()
            await asyncio.sleep(0.15)

    async def churn() -> None:
        carol = await Client.connect(server.ws + "?token=" + mint(sub="902", name="carol"))
        await carol.subscribe(stream)
        until = time.monotonic() + seconds
        await asyncio.gather(one("901", "dave", until), one("903", "erin", until))
        await asyncio.sleep(1)
        await carol.close()

    thread = threading.Thread(target=asyncio.run, args=(churn(),), daemon=True)
    thread.start()
    return thread


def test_a_busy_room_is_kept_by_its_changes_without_asking_again(start_server, people) -> None:
    """Joins and leaves every fraction of a second: the page asks for the list once, then
    keeps it by the versioned changes alone (a change older than the list is dropped),
    and its list is right when they stop."""
    server = start_server("uvicorn")
    guest = people(server.http)
    asked = count_presence_queries(guest)
    churn = come_and_go(server, "room:market", seconds=12)
    guest.open_room("market")  # the first list is crossed by the comings and goings
    expect(who(guest)).to_contain_text(["carol"])
    guest.page.wait_for_timeout(8_000)  # while they keep coming and going
    assert asked == ["room:market"], asked
    while churn.is_alive():
        guest.page.wait_for_timeout(500)
    expect(who(guest)).to_have_count(0)
    expect(guest.page.locator("#who-count")).to_have_text("0 here")
    assert guest.errors == []


def crowd(server, stream: str, count: int, stop: threading.Event) -> threading.Thread:
    """`count` signed-in people in `stream` over token sockets, in the background, until `stop`."""

    async def hold() -> None:
        people = [await Client.connect(server.ws + "?token=" + mint(sub=f"c{n}", name=f"crowd {n}")) for n in range(count)]
        for person in people:
            await person.subscribe(stream)
        while not stop.is_set():
            await asyncio.sleep(0.1)
        for person in people:
            await person.close()

    thread = threading.Thread(target=asyncio.run, args=(hold(),), daemon=True)
    thread.start()
    return thread


def test_a_room_past_the_member_cap_shows_a_count_not_a_list(start_server, people, chat_users) -> None:
    server = start_server("uvicorn", RT_PRESENCE_MAX_MEMBERS="5")
    stop = threading.Event()
    thread = crowd(server, "room:arena", 8, stop)
    try:
        alice = people(server.http)
        alice.sign_in("alice")
        alice.open_room("arena")
        expect(alice.page.locator("#who-count")).to_have_text("9 here", timeout=15_000)
        expect(alice.page.locator("#who")).to_be_hidden()
        expect(who(alice)).to_have_count(0)
    finally:
        stop.set()
        thread.join(15)
    # Back under the cap, the list is asked for again and shown.
    expect(who(alice)).to_have_text(["alice"], timeout=15_000)
    expect(alice.page.locator("#who-count")).to_have_text("1 here")
    assert alice.errors == []
