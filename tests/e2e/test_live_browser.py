"""The scoreboard page in a real Chromium against a real server process and Redis.

Updates are published the ways a broadcaster would: `manage.py simulate_match` in its own
process, or `realtime.publish` from this process (server code), both into the servers'
Redis. Stream names repeat across tests: each test has a key prefix of its own.
Sync tests on purpose: Playwright's sync API cannot run inside pytest-asyncio's loop.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from live.match import Update, play_match
from realtime import publish as publish_now
from tests.conftest import BASE_DIR

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOT = Path(__file__).resolve().parent.parent.parent / "docs" / "screenshots" / "live-scoreboard.png"


def publish(stream: str, data: Any) -> None:
    """`realtime.publish` as server code calls it, from a thread of its own: Playwright's sync
    API keeps an event loop running in this one, and `publish` refuses to block a loop."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(publish_now, stream, data).result(timeout=30)


#: Elements that markup in the published text would have made.
INJECTED = "main :is(img, svg, b, i), main script:not(#live-config)"


def open_scoreboard(person: Any, name: str) -> None:
    """Open the page and wait for its subscription, not only its socket: an update
    published before the `subscribed` reply is only seen as the latest state (`history: 1`)."""
    person.page.goto(f"{person.base}/live/{name}/")
    expect(person.page.locator("#connection")).to_have_attribute("data-state", "live")
    expect(person.page.locator("#connection")).to_have_text("live")
    person.page.wait_for_function(
        "stream => window.scoreboard.client.subs.get(stream)?.epoch != null", arg=f"live:{name}"
    )


def shows(person: Any, data: dict[str, Any]) -> None:
    """Wait until the board shows the state `data` describes."""
    page = person.page
    expect(page.locator("#home")).to_have_text(data["home"])
    expect(page.locator("#away")).to_have_text(data["away"])
    expect(page.locator("#home-score")).to_have_text(str(data["score"][0]))
    expect(page.locator("#away-score")).to_have_text(str(data["score"][1]))
    expect(page.locator("#clock")).to_have_text(data["clock"])
    expect(page.locator("#status")).to_have_text(data["status"])


def logged_events(person: Any) -> list[str]:
    return person.page.locator("#events li .text").all_text_contents()


def events_of(updates: list[Update]) -> list[str]:
    return [u.data["event"] for u in updates if "event" in u.data]


def received(person: Any) -> int:
    return int(person.page.evaluate("window.scoreboard.received"))


def test_scoreboard_follows_a_simulated_match_to_its_final_score(server, server_env, people) -> None:
    """Under both servers (uvicorn, daphne): the `server` fixture is parametrized."""
    name = "final"
    viewer = people(server.http)
    open_scoreboard(viewer, name)
    expect(viewer.page.locator("#updated")).to_have_text("waiting for the first update")

    subprocess.run(
        [sys.executable, "manage.py", "simulate_match", f"live:{name}", "--pace", "0.02", "--seed", "7",
         "--home", "Harriers", "--away", "Albion"],
        cwd=BASE_DIR, env=server_env, check=True, capture_output=True, timeout=90,
    )
    match = play_match("Harriers", "Albion", 7)
    final = match[-1].data
    shows(viewer, final)
    expect(viewer.page.locator("#events li .text").first).to_have_text(final["event"])
    expect(viewer.page.locator("#board")).to_have_attribute("data-seq", str(len(match)))
    # Every update reached the page once, and the log holds the latest events, newest first.
    assert received(viewer) == len(match)
    assert logged_events(viewer) == events_of(match)[::-1][:30]
    expect(viewer.page.locator("#updated")).to_have_text(re.compile(r"^updated \d+ s ago$"))
    assert viewer.errors == []


def test_a_viewer_who_joins_mid_match_sees_the_current_score_not_a_replay(start_server, people) -> None:
    server = start_server("uvicorn")
    name = "cup-final"
    match = play_match("Rovers", "United", 2028)  # 2-3 on the hour, after ten events
    joined = next(i for i, u in enumerate(match) if u.data["clock"] == "60:00") + 1
    for update in match[:joined]:
        publish(f"live:{name}", update.data)

    viewer = people(server.http)
    open_scoreboard(viewer, name)
    now = match[joined - 1].data
    shows(viewer, now)
    assert sum(now["score"]) >= 2
    # One message on load, the latest state: the log has at most its event, not the match.
    expect(viewer.page.locator("#board")).to_have_attribute("data-seq", str(joined))
    assert received(viewer) == 1
    assert logged_events(viewer) == events_of(match[joined - 1 : joined])
    assert len(events_of(match[:joined])) > 3
    expect(viewer.page.locator("#updated")).to_have_text(re.compile(r"^updated [1-9]\d* s ago$"))  # it ticks

    # The match goes on live; mid-match, the board goes into the docs.
    until = next(i for i, u in enumerate(match) if i >= joined and u.data.get("event", "").startswith("Goal!")) + 1
    for update in match[joined:until]:
        publish(f"live:{name}", update.data)
    shows(viewer, match[until - 1].data)
    assert logged_events(viewer) == events_of(match[joined - 1 : until])[::-1]
    fits = viewer.page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    assert fits, "the scoreboard scrolls sideways on a phone-sized screen"
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    viewer.page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 10_000

    for update in match[until:]:
        publish(f"live:{name}", update.data)
    shows(viewer, match[-1].data)
    assert received(viewer) == 1 + len(match) - joined
    assert viewer.errors == []


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["killed", "stopped"])
def test_page_shows_reconnecting_while_the_server_is_down_and_catches_up(start_server, people, sig) -> None:
    server = start_server("uvicorn")
    name = "outage"
    match = play_match("Rovers", "United", 99)
    viewer = people(server.http)
    open_scoreboard(viewer, name)
    for update in match[:10]:
        publish(f"live:{name}", update.data)
    shows(viewer, match[9].data)

    port = server.port
    server.stop(sig)
    expect(viewer.page.locator("#connection")).to_have_attribute("data-state", "reconnecting")
    expect(viewer.page.locator("#connection")).to_have_text("reconnecting…")
    for update in match[10:60]:  # the broadcast goes on while this server is down
        publish(f"live:{name}", update.data)

    server.start()
    assert server.port == port
    expect(viewer.page.locator("#connection")).to_have_attribute("data-state", "live", timeout=30000)
    shows(viewer, match[59].data)
    # The updates missed meanwhile arrive once each (resumed with `since`): their events too.
    expect(viewer.page.locator("#board")).to_have_attribute("data-seq", "60")
    assert received(viewer) == 60
    assert logged_events(viewer) == events_of(match[:60])[::-1][:30]
    assert viewer.errors == []


def test_missing_and_ill_typed_fields_keep_what_is_shown(start_server, people) -> None:
    server = start_server("uvicorn")
    name = "partial"
    stream = f"live:{name}"
    viewer = people(server.http)
    open_scoreboard(viewer, name)
    full = {"home": "Rovers", "away": "United", "score": [2, 1], "clock": "67:00", "status": "second half",
            "event": "Goal! Rovers"}
    publish(stream, full)
    shows(viewer, full)

    publish(stream, {"clock": "68:00"})  # only the clock moved
    shows(viewer, {**full, "clock": "68:00"})
    # Wrong types, unknown fields, and data that is not an object at all: nothing changes.
    publish(stream, {"home": 7, "away": None, "score": "3-1", "clock": ["69:00"], "status": {"x": 1}, "event": 5,
                     "weather": "rain"})
    for data in ({"score": [3]}, {"score": [3, -1]}, {"score": [3, 1.5]}, {"score": [3, True]}, {"home": "   "},
                 "a string", None, [1, 2], 42):
        publish(stream, data)
    publish(stream, {"event": "Substitution: United #8 for #14"})  # the marker that all of it was handled
    expect(viewer.page.locator("#board")).to_have_attribute("data-seq", "13")
    shows(viewer, {**full, "clock": "68:00"})
    assert logged_events(viewer) == ["Substitution: United #8 for #14", "Goal! Rovers"]
    # The page still applies good updates after all that.
    publish(stream, {"score": [3, 1], "clock": "71:00", "event": "Goal! Rovers"})
    shows(viewer, {**full, "score": [3, 1], "clock": "71:00"})
    assert viewer.errors == []


def test_markup_in_an_update_is_shown_as_text_and_runs_nothing(start_server, people) -> None:
    server = start_server("uvicorn")
    name = "xss"
    viewer = people(server.http)
    open_scoreboard(viewer, name)
    hostile = {"home": "<b>Rovers</b>", "away": '"><svg onload=alert(2)>', "score": [0, 0], "clock": "01:00",
               "status": "<i>first half</i>", "event": "<img src=x onerror=alert(1)>"}
    publish(f"live:{name}", hostile)
    shows(viewer, hostile)
    expect(viewer.page.locator("#events li .text")).to_have_text([hostile["event"]])
    publish(f"live:{name}", {**hostile, "event": "<script>alert(3)</script>"})
    expect(viewer.page.locator("#events li .text")).to_have_text(["<script>alert(3)</script>", hostile["event"]])
    assert viewer.page.locator(INJECTED).count() == 0
    # A fresh page that gets it as its starting state does not run it either.
    late = people(server.http)
    open_scoreboard(late, name)
    expect(late.page.locator("#events li .text")).to_have_text(["<script>alert(3)</script>"])
    shows(late, hostile)
    assert late.page.locator(INJECTED).count() == 0
    assert viewer.dialogs == late.dialogs == []
    assert viewer.errors == late.errors == []


def test_a_close_that_forbids_reconnecting_shows_a_stop_state(start_server, people) -> None:
    """4500-4999 mean "reconnecting the same way will fail again" (docs/protocol.md): the page
    stops and says so. The socket goes through a proxy to the real server that closes it
    with 4508, as the server does for abuse."""
    server = start_server("uvicorn")
    name = "stop"
    viewer = people(server.http)
    sockets: list[Any] = []

    def proxy(ws: Any) -> None:
        ws.connect_to_server()
        sockets.append(ws)

    viewer.page.route_web_socket(re.compile(r".*/ws/$"), proxy)
    open_scoreboard(viewer, name)
    publish(f"live:{name}", {"home": "Rovers", "away": "United", "score": [1, 0], "clock": "10:00", "status": "first half"})
    expect(viewer.page.locator("#home-score")).to_have_text("1")

    sockets[0].close(code=4508, reason="abuse")
    expect(viewer.page.locator("#connection")).to_have_attribute("data-state", "stopped")
    expect(viewer.page.locator("#notice")).to_contain_text("4508")
    expect(viewer.page.locator("#home-score")).to_have_text("1")  # the last score stays on show
    assert len(sockets) == 1
    assert viewer.errors == []


def test_updates_pushed_out_of_the_backlog_while_offline_are_replaced_by_the_latest(start_server, people, settings) -> None:
    """Offline longer than the backlog holds: the socket says `recovered: false` and sends
    nothing up to that point, so the page fetches the latest update over HTTP."""
    settings.RT_BACKLOG_SIZE = 3  # the publisher trims the backlog: this process, here
    server = start_server("uvicorn", RT_BACKLOG_SIZE="3")
    match = play_match("Rovers", "United", 2028)
    viewer = people(server.http)
    open_scoreboard(viewer, "trimmed")
    publish("live:trimmed", match[0].data)
    shows(viewer, match[0].data)

    viewer.context.set_offline(True)
    expect(viewer.page.locator("#connection")).not_to_have_attribute("data-state", "live")
    for update in match[1:75]:
        publish("live:trimmed", update.data)
    with viewer.page.expect_response(lambda r: "/messages?limit=1" in r.url) as reload:
        viewer.context.set_offline(False)
    assert reload.value.status == 200
    shows(viewer, match[74].data)
    expect(viewer.page.locator("#board")).to_have_attribute("data-seq", "75")
    assert received(viewer) == 2
    publish("live:trimmed", match[75].data)
    shows(viewer, match[75].data)
    assert viewer.errors == []


READ_UPDATE_TABLE = """async () => {
  const { readUpdate, formatAge } = await import("/static/live/update.js");
  const cases = [
    {home: " Rovers ", away: "United", score: [2, 1], clock: "67:00", status: "second half", event: "Goal!", x: 1},
    {score: [0, 0]}, {score: [1, 2, 3]}, {score: ["1", 2]}, {score: [-1, 0]}, {score: [NaN, 0]},
    {score: [2 ** 53, 0]}, {score: {0: 1, 1: 2, length: 2}}, {home: ""}, {home: "x".repeat(100)},
    {event: "  "}, {clock: 67}, null, "text", [1, 2], 7, true, {},
  ];
  return {
    updates: cases.map((data) => readUpdate(data)),
    ages: [-5000, 0, 999, 59999, 60000, 3599999, 3600000].map(formatAge),
  };
}"""


def test_read_update_keeps_only_well_typed_fields(start_server, people) -> None:
    server = start_server("uvicorn")
    person = people(server.http)
    open_scoreboard(person, "table")
    got = person.page.evaluate(READ_UPDATE_TABLE)
    full = {"home": "Rovers", "away": "United", "score": [2, 1], "clock": "67:00", "status": "second half",
            "event": "Goal!"}
    assert got["updates"] == [full, {"score": [0, 0]}] + [{}] * 7 + [{"home": "x" * 64}] + [{}] * 8
    assert got["ages"] == ["updated 0 s ago", "updated 0 s ago", "updated 0 s ago", "updated 59 s ago",
                           "updated 1 min ago", "updated 59 min ago", "updated 1 h ago"]


def test_the_scoreboard_shows_how_many_are_watching(start_server, people) -> None:
    server = start_server("uvicorn", RT_PRESENCE_INTERVAL="0.2")
    viewers = [people(server.http) for _ in range(3)]
    for viewer in viewers:
        open_scoreboard(viewer, "final")
    for viewer in viewers:
        expect(viewer.page.locator("#watching")).to_have_text("3 watching")
    viewers[2].page.close()
    expect(viewers[0].page.locator("#watching")).to_have_text("2 watching")
    assert all(viewer.errors == [] for viewer in viewers[:2])
