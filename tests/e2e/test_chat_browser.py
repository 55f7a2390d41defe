"""The chat a person uses, in a real Chromium against a real server process.

Sync tests on purpose: Playwright's sync API cannot run inside pytest-asyncio's loop.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import BASE_DIR
from tests.e2e.conftest import CHAT_PASSWORD
from tests.tokens import mint

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOT = Path(__file__).resolve().parent.parent.parent / "docs" / "screenshots" / "chat-room.png"


def texts_in_order(person, expected: list[str]) -> None:
    """Wait until the page shows exactly `expected`, once each, in this order."""
    expect(person.page.locator("#messages li.message .text")).to_have_text(expected)


def test_two_people_chat_and_see_each_other(server, people, alice_and_bob) -> None:
    """Under both servers (uvicorn, daphne): the `server` fixture is parametrized."""
    alice, bob = alice_and_bob(server, "lobby")

    # Each answers once the other's message is on their page, as people do: the order
    # of the three publishes is then the order they were written in.
    expected = ["Hi Bob, are you there?", "Hi Alice! Yes, here.", "Très bien, ça marche !"]
    alice.say(expected[0])
    texts_in_order(bob, expected[:1])
    bob.say(expected[1])
    texts_in_order(alice, expected[:2])
    alice.say(expected[2])
    texts_in_order(alice, expected)
    texts_in_order(bob, expected)

    # Each sees who wrote what, own messages marked as such, nothing left pending.
    expect(bob.page.locator("#messages li.message .sender")).to_have_text(["alice", "bob", "alice"])
    expect(alice.page.locator("#messages li.message.mine .text")).to_have_text([expected[0], expected[2]])
    expect(bob.page.locator("#messages li.message.mine .text")).to_have_text([expected[1]])
    expect(alice.page.locator("#messages li.pending")).to_have_count(0)
    seqs = alice.page.locator("#messages li.message").evaluate_all("els => els.map(e => Number(e.dataset.seq))")
    assert seqs == [1, 2, 3]
    times = bob.page.locator("#messages li.message time").evaluate_all("els => els.map(e => e.dateTime)")
    assert all(t.endswith("Z") for t in times) and len(times) == 3

    # A newcomer gets the recent history when the page opens.
    carol = people(server.http)
    carol.sign_in("carol")
    carol.open_room("lobby")
    texts_in_order(carol, expected)
    # Each page lists who is here (the screenshot shows it).
    for person in (alice, bob, carol):
        expect(person.page.locator("#who li")).to_have_text(["alice", "bob", "carol"])

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    bob.page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 10_000
    assert alice.errors == bob.errors == carol.errors == []


def test_offline_person_catches_up_with_every_message_once_in_order(start_server, alice_and_bob) -> None:
    server = start_server("uvicorn")
    alice, bob = alice_and_bob(server, "hideout")
    alice.say("before")
    texts_in_order(bob, ["before"])

    bob.context.set_offline(True)
    expect(bob.page.locator("#status")).not_to_have_attribute("data-state", "connected")
    written = [f"while you were away {i}" for i in range(1, 6)]
    for text in written:
        alice.say(text)
    texts_in_order(alice, ["before", *written])
    expect(alice.page.locator("#messages li.pending")).to_have_count(0)
    # Bob writes too while offline: his message waits, marked pending.
    bob.say("typed offline")
    expect(bob.page.locator("#messages li.pending .text")).to_have_text(["typed offline"])
    assert bob.texts() == ["before", "typed offline"]  # nothing arrived over a dead link

    bob.context.set_offline(False)
    expect(bob.page.locator("#status")).to_have_attribute("data-state", "connected")
    everything = ["before", *written, "typed offline"]
    texts_in_order(bob, everything)
    texts_in_order(alice, everything)
    expect(bob.page.locator("#messages li.pending")).to_have_count(0)
    seqs = bob.page.locator("#messages li.message").evaluate_all("els => els.map(e => Number(e.dataset.seq))")
    assert seqs == list(range(1, len(everything) + 1))
    assert alice.errors == bob.errors == []


def test_markup_in_a_message_is_shown_as_text_and_runs_nothing(start_server, people, alice_and_bob) -> None:
    server = start_server("uvicorn")
    alice, bob = alice_and_bob(server, "xss")
    payloads = ["<img src=x onerror=alert(1)>", "<script>alert(2)</script>", '"><svg onload=alert(3)>']
    for text in payloads:
        alice.say(text)
    alice.say("after the payloads")
    texts_in_order(bob, [*payloads, "after the payloads"])
    texts_in_order(alice, [*payloads, "after the payloads"])
    for person in (alice, bob):
        assert person.page.locator("#messages img, #messages script, #messages svg").count() == 0
        assert person.dialogs == []
        assert person.errors == []
    # A fresh page that gets them as history does not run them either.
    carol = people(server.http)
    carol.open_room("xss")
    texts_in_order(carol, [*payloads, "after the payloads"])
    assert carol.page.locator("#messages img, #messages script, #messages svg").count() == 0
    assert carol.dialogs == []


def test_a_person_in_another_room_sees_nothing(start_server, people, chat_users) -> None:
    server = start_server("uvicorn")
    alice, bob, carol = people(server.http), people(server.http), people(server.http)
    for person, name in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
        person.sign_in(name)
    alice.open_room("lobby")
    bob.open_room("lobby")
    carol.open_room("lobby-2")
    alice.say("only for the lobby")
    bob.say("lobby reply")
    texts_in_order(bob, ["only for the lobby", "lobby reply"])
    texts_in_order(alice, ["only for the lobby", "lobby reply"])
    # Carol's own message makes a round trip through the server after the lobby's.
    carol.say("anyone in lobby-2?")
    texts_in_order(carol, ["anyone in lobby-2?"])
    expect(carol.page.locator("#messages li.pending")).to_have_count(0)
    assert carol.texts() == ["anyone in lobby-2?"]
    assert alice.texts() == bob.texts() == ["only for the lobby", "lobby reply"]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["killed", "stopped"])
def test_page_reconnects_after_server_restart_and_misses_nothing(start_server, people, chat_users, sig) -> None:
    a, b = start_server("uvicorn"), start_server("uvicorn")  # two processes, one Redis
    alice, bob = people(a.http), people(b.http)
    alice.sign_in("alice")
    bob.sign_in("bob")
    alice.open_room("restart")
    bob.open_room("restart")
    bob.say("one")
    texts_in_order(alice, ["one"])

    port = a.port
    a.stop(sig)
    expect(alice.page.locator("#status")).not_to_have_attribute("data-state", "connected")
    for text in ("two", "three", "four"):
        bob.say(text)
    texts_in_order(bob, ["one", "two", "three", "four"])
    expect(bob.page.locator("#messages li.pending")).to_have_count(0)
    alice.say("alice during the outage")  # queued until the server is back
    expect(alice.page.locator("#messages li.pending")).to_have_count(1)

    a.start()
    assert a.port == port
    expect(alice.page.locator("#status")).to_have_attribute("data-state", "connected", timeout=30000)
    everything = ["one", "two", "three", "four", "alice during the outage"]
    texts_in_order(alice, everything)
    texts_in_order(bob, everything)
    expect(alice.page.locator("#messages li.pending")).to_have_count(0)
    assert alice.errors == bob.errors == []


def test_anonymous_visitor_reads_and_is_invited_to_sign_in(start_server, people, chat_users) -> None:
    server = start_server("uvicorn")
    alice, guest = people(server.http), people(server.http)
    alice.sign_in("alice")
    alice.open_room("open-house")
    alice.say("welcome, guests")
    texts_in_order(alice, ["welcome, guests"])

    guest.open_room("open-house")
    texts_in_order(guest, ["welcome, guests"])
    expect(guest.page.locator("#composer")).to_have_count(0)
    invite = guest.page.locator("#invite")
    expect(invite).to_contain_text("Sign in")
    alice.say("live for guests too")
    texts_in_order(guest, ["welcome, guests", "live for guests too"])

    # The invitation leads back to the room, now with a composer.
    invite.get_by_role("link", name="Sign in").click()
    guest.page.fill("input[name=username]", "bob")
    guest.page.fill("input[name=password]", chat_users["bob"])
    guest.page.click("button[type=submit]")
    guest.page.wait_for_url(server.http + "/rooms/open-house/")
    expect(guest.page.locator("#status")).to_have_attribute("data-state", "connected")
    guest.say("signed in now")
    texts_in_order(alice, ["welcome, guests", "live for guests too", "signed in now"])
    assert guest.errors == []


def test_sign_up_create_a_room_and_sign_out(start_server, people) -> None:
    import uuid

    server = start_server("uvicorn")
    person = people(server.http)
    page = person.page
    username = "u" + uuid.uuid4().hex[:8]
    room = "club-" + uuid.uuid4().hex[:6]
    page.goto(server.http + "/")
    page.wait_for_url(server.http + "/rooms/")
    page.get_by_role("link", name="Sign up").first.click()
    page.fill("input[name=username]", username)
    page.fill("input[name=password1]", "a long enough passphrase")
    page.fill("input[name=password2]", "a long enough passphrase")
    page.click("button[type=submit]")
    page.wait_for_url(server.http + "/rooms/")
    expect(page.locator(".whoami")).to_have_text(username)

    page.fill("#new-room input[name=name]", "not a valid name!")
    page.click("#new-room button[type=submit]")
    expect(page.locator("#new-room .error")).to_have_count(1)

    page.fill("#new-room input[name=name]", room)
    page.fill("#new-room input[name=title]", "Book club")
    page.click("#new-room button[type=submit]")
    page.wait_for_url(f"{server.http}/rooms/{room}/")
    expect(page.locator(".room-head h1")).to_contain_text("Book club")
    expect(page.locator("#status")).to_have_attribute("data-state", "connected")
    person.say("first post")
    expect(page.locator("#messages li.message:not(.pending) .text")).to_have_text(["first post"])

    page.goto(server.http + "/rooms/")
    expect(page.locator("#rooms")).to_contain_text("Book club")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(server.http + "/rooms/")
    expect(page.locator(".account").get_by_role("link", name="Sign in")).to_be_visible()
    assert httpx.get(f"{server.http}/rooms/{room}/").status_code == 200
    assert httpx.get(f"{server.http}/rooms/bad%20name/").status_code == 404
    assert person.errors == []


def test_gap_too_old_to_recover_reloads_history_over_http(start_server, alice_and_bob) -> None:
    """Offline longer than the backlog holds: the socket says `recovered: false`, the page
    reloads what is kept over HTTP and marks the hole instead of hiding it."""
    server = start_server("uvicorn", RT_BACKLOG_SIZE="3")
    alice, bob = alice_and_bob(server, "trimmed")
    bob.say("m1")
    texts_in_order(alice, ["m1"])

    alice.context.set_offline(True)
    expect(alice.page.locator("#status")).not_to_have_attribute("data-state", "connected")
    for i in range(2, 8):
        bob.say(f"m{i}")
    texts_in_order(bob, [f"m{i}" for i in range(1, 8)])
    expect(bob.page.locator("#messages li.pending")).to_have_count(0)

    with alice.page.expect_response(lambda r: "/api/streams/room%3Atrimmed/messages" in r.url or "/api/streams/room:trimmed/messages" in r.url) as reload:
        alice.context.set_offline(False)
    assert reload.value.status == 200
    texts_in_order(alice, ["m1", "m5", "m6", "m7"])  # m2..m4 were pushed out of the backlog
    # Not archived yet (no archiver runs here): marked and asked for again later.
    expect(alice.page.locator("#messages li.gap.retrying")).to_have_text(["3 messages not available yet — retrying"])
    bob.say("m8")
    texts_in_order(alice, ["m1", "m5", "m6", "m7", "m8"])
    assert alice.errors == bob.errors == []


def test_a_gap_marked_before_the_live_frame_came_goes_when_it_comes(start_server, alice_and_bob) -> None:
    """alice's own message is placed at its ack's seq while the frame of bob's message just
    below it is still on its way: a gap marked in that moment goes once the frame comes."""
    server = start_server("uvicorn", RT_PUBLISH_RATE="0", RT_BACKEND_PUBLISH_RATE="0")
    alice, bob = alice_and_bob(server, "porch")
    held: list[str] = []
    holding = {"on": True}
    sockets: list = []

    def hold_bobs_message(ws) -> None:
        """alice's socket, with the message frames from bob's "held back" on kept back."""
        sockets.append(ws)
        to_server = ws.connect_to_server()

        def from_server(message) -> None:
            frame = json.loads(message)
            starts = (frame.get("data") or {}).get("text") == "held back"
            if frame.get("type") == "message" and holding["on"] and (held or starts):
                held.append(message)  # and every message frame after it, in order; acks pass
            else:
                ws.send(message)

        to_server.on_message(from_server)

    alice.page.route_web_socket(re.compile(".*"), hold_bobs_message)
    alice.page.reload()
    alice.page.wait_for_selector("#status[data-state=connected]")
    bob.say("first")
    texts_in_order(alice, ["first"])
    # The page's asks for the missing message over HTTP fail, so it marks the gap.
    alice.page.route(lambda url: "/messages?before=" in url, lambda route: route.abort())

    bob.say("held back")
    expect(bob.page.locator("#messages li.pending")).to_have_count(0)
    alice.say("mine")
    expect(alice.page.locator("#messages li.pending")).to_have_count(0)
    texts_in_order(alice, ["first", "mine"])
    alice.page.evaluate("window.chatRoom.fillHoles()")
    gap = alice.page.locator("#messages li.gap")
    expect(gap).to_have_text(["1 message not available yet — retrying"])
    assert json.loads(held[0])["data"]["text"] == "held back"

    holding["on"] = False
    for message in held:  # the frames come at last, in order
        sockets[-1].send(message)
    texts_in_order(alice, ["first", "held back", "mine"])
    expect(gap).to_have_count(0)
    assert alice.errors == bob.errors == []


def make_user(server_env: dict[str, str], username: str) -> None:
    """A user with CHAT_PASSWORD in the servers' database (idempotent)."""
    code = (
        "from django.contrib.auth import get_user_model\n"
        f"user, _ = get_user_model().objects.get_or_create(username={username!r})\n"
        f"user.set_password({CHAT_PASSWORD!r})\n"
        "user.save()\n"
    )
    subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=BASE_DIR, env=server_env, check=True)


MESSAGE_LOOKS = """els => els.map((li) => ({
  text: li.querySelector(".text").textContent,
  fromServer: li.classList.contains("from-server"),
  labels: li.querySelectorAll(".server-label").length,
  sender: li.querySelector(".sender") ? li.querySelector(".sender").textContent : null,
  markup: li.querySelectorAll(".text *").length,
  background: getComputedStyle(li).backgroundColor,
  border: getComputedStyle(li).borderTopStyle,
}))"""


def test_a_message_without_a_sender_looks_like_no_persons_message(start_server, people, server_env) -> None:
    """`sender: null` (realtime.publish, or a backend's token without `sub`) has its own
    class and label element; a person named "server", or a token named like the label,
    still shows as a person with a name."""
    server = start_server("uvicorn")
    room = "notices-" + uuid.uuid4().hex[:6]
    make_user(server_env, "server")
    impostor = people(server.http)
    impostor.sign_in("server")
    impostor.open_room(room)

    published = subprocess.run(
        [sys.executable, "manage.py", "publish", f"room:{room}", json.dumps({"text": "<b>Maintenance</b> at 22:00"})],
        cwd=BASE_DIR, env=server_env, check=True, capture_output=True, text=True,
    )
    assert published.stdout.startswith("seq 1 ")
    texts_in_order(impostor, ["<b>Maintenance</b> at 22:00"])
    impostor.say("Maintenance at 22:00")
    texts_in_order(impostor, ["<b>Maintenance</b> at 22:00", "Maintenance at 22:00"])
    expect(impostor.page.locator("#messages li.pending")).to_have_count(0)

    def post(text: str, token: str) -> None:
        reply = httpx.post(
            f"{server.http}/api/streams/room:{room}/messages",
            json={"data": {"text": text}}, headers={"Authorization": "Bearer " + token},
        )
        assert reply.status_code == 201, reply.text

    post("named like the label", mint(sub="backend-person", name="from the server", pubs=[f"room:{room}"]))
    post("from a backend", mint(pubs=[f"room:{room}"]))  # no `sub`: sender null
    everything = ["<b>Maintenance</b> at 22:00", "Maintenance at 22:00", "named like the label", "from a backend"]
    texts_in_order(impostor, everything)

    guest = people(server.http)  # the same messages as history
    guest.open_room(room)
    texts_in_order(guest, everything)
    for person in (impostor, guest):
        looks = person.page.locator("#messages li.message").evaluate_all(MESSAGE_LOOKS)
        shown = [(look["fromServer"], look["labels"], look["sender"], look["markup"]) for look in looks]
        assert shown == [(True, 1, None, 0), (False, 0, "server", 0), (False, 0, "from the server", 0), (True, 1, None, 0)]
        server_look, person_look = {(looks[0]["background"], looks[0]["border"])}, {(looks[2]["background"], looks[2]["border"])}
        assert {(look["background"], look["border"]) for look in looks[::3]} == server_look
        assert server_look != person_look
        expect(person.page.locator("#messages li.from-server .server-label")).to_have_text(["from the server"] * 2)
        expect(person.page.locator(".server-label")).to_have_count(2)
        assert person.errors == []
