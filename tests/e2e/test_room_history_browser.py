"""A room with more history than its backlog, read back in a real Chromium: scrolling to
the top pages older messages over HTTP (backlog, then the database archive) until the
first one, with no duplicate and no hole, without moving what the reader looks at."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import BASE_DIR
from tests.tokens import mint

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BACKLOG = 50
MESSAGES = 300


def publish(server, stream: str, first: int, last: int) -> None:
    """Messages "message first" .. "message last" over the HTTP API."""
    headers = {"Authorization": "Bearer " + mint(sub="1", name="alice")}
    with httpx.Client(base_url=server.http, headers=headers, timeout=10) as http:
        for i in range(first, last + 1):
            done = http.post(f"/api/streams/{stream}/messages", json={"data": {"text": f"message {i}"}})
            assert done.status_code == 201, done.text


def run_archiver(server, expected: int) -> None:
    """`manage.py run_archiver --once`: what is queued goes to the archive."""
    archived = subprocess.run(
        [sys.executable, "manage.py", "run_archiver", "--once"],
        cwd=BASE_DIR, env=server.env, capture_output=True, text=True, timeout=120,
    )
    assert archived.returncode == 0, archived.stderr
    assert f"archived {expected} entries" in archived.stdout


def fill_room(server, stream: str, count: int) -> None:
    """`count` messages over the HTTP API, then the archiver run once over them."""
    publish(server, stream, 1, count)
    run_archiver(server, count)


def shown_seqs(person) -> list[int]:
    return person.page.locator("#messages li.message").evaluate_all("els => els.map(e => Number(e.dataset.seq))")


def test_scrolling_up_reaches_the_first_message_across_the_archive(start_server, people, chat_users) -> None:
    server = start_server("uvicorn", RT_BACKLOG_SIZE=str(BACKLOG), RT_PUBLISH_RATE="0", RT_BACKEND_PUBLISH_RATE="0")
    fill_room(server, "room:attic", MESSAGES)
    reader = people(server.http)
    reader.open_room("attic")
    # The page opens with the 50 kept messages (history 50 = the whole backlog).
    expect(reader.page.locator("#messages li.message")).to_have_count(BACKLOG)
    assert shown_seqs(reader) == list(range(MESSAGES - BACKLOG + 1, MESSAGES + 1))
    expect(reader.page.locator("#beginning")).to_be_hidden()

    pages = 0
    while not reader.page.locator("#beginning").is_visible():
        count = reader.page.locator("#messages li.message").count()
        looked_at = reader.page.locator(f"#messages li.message[data-seq='{shown_seqs(reader)[0]}']")
        # The reader scrolls to the top; where the oldest message is, in the same task.
        top_before = looked_at.evaluate("el => { window.scrollTo(0, 0); return el.getBoundingClientRect().top; }")
        expect(reader.page.locator("#messages li.message")).not_to_have_count(count)
        # The older page went above: what the reader looked at has not moved.
        assert abs(looked_at.evaluate("el => el.getBoundingClientRect().top") - top_before) <= 2
        pages += 1
        assert pages <= MESSAGES // 50 + 1, "the beginning never came"

    seqs = shown_seqs(reader)
    assert seqs == list(range(1, MESSAGES + 1))  # every seq once, in order
    texts = reader.page.locator("#messages li.message .text").all_text_contents()
    assert texts == [f"message {i}" for i in range(1, MESSAGES + 1)]
    expect(reader.page.locator("#load-older")).to_be_hidden()
    expect(reader.page.locator("#messages li.gap")).to_have_count(0)

    # Live messages still arrive at the bottom after all that.
    headers = {"Authorization": "Bearer " + mint(sub="2", name="bob")}
    httpx.post(f"{server.http}/api/streams/room:attic/messages", json={"data": {"text": "fresh"}}, headers=headers)
    expect(reader.page.locator("#messages li.message .text").last).to_have_text("fresh")
    assert shown_seqs(reader)[-2:] == [MESSAGES, MESSAGES + 1]
    assert reader.errors == []


def test_load_older_button_keeps_the_reader_in_place(start_server, people, chat_users) -> None:
    server = start_server("uvicorn", RT_BACKLOG_SIZE=str(BACKLOG), RT_PUBLISH_RATE="0", RT_BACKEND_PUBLISH_RATE="0")
    fill_room(server, "room:cellar", 120)
    reader = people(server.http)
    reader.open_room("cellar")
    expect(reader.page.locator("#messages li.message")).to_have_count(BACKLOG)
    oldest = reader.page.locator("#messages li.message[data-seq='71']")
    # Somewhere below the top (the top would load by itself), then the button: a click
    # that does not scroll the page first, as a keyboard or screen reader user would.
    reader.page.evaluate("window.scrollTo(0, 200)")
    top_before = oldest.evaluate("el => el.getBoundingClientRect().top")
    reader.page.locator("#load-older").dispatch_event("click")
    expect(reader.page.locator("#messages li.message")).to_have_count(BACKLOG + 50)
    top_after = oldest.evaluate("el => el.getBoundingClientRect().top")
    assert abs(top_after - top_before) <= 2, (top_before, top_after)  # the same message at the same place
    assert shown_seqs(reader) == list(range(21, 121))
    expect(reader.page.locator("#beginning")).to_be_hidden()


def test_a_short_room_shows_its_beginning_without_paging(start_server, people, chat_users) -> None:
    server = start_server("uvicorn")
    reader = people(server.http)
    reader.open_room("empty-porch")
    expect(reader.page.locator("#beginning")).to_be_visible()  # nothing at all yet
    fill_room(server, "room:small", 3)
    reader.open_room("small")
    expect(reader.page.locator("#messages li.message")).to_have_count(3)
    expect(reader.page.locator("#beginning")).to_be_visible()
    expect(reader.page.locator("#load-older")).to_be_hidden()


def scroll_to_top(person) -> None:
    person.page.evaluate("window.scrollTo(0, 0)")


def test_a_hole_the_archiver_has_not_written_yet_is_retried_and_filled_in_place(start_server, people, chat_users) -> None:
    server = start_server("uvicorn", RT_BACKLOG_SIZE="20", RT_PUBLISH_RATE="0", RT_BACKEND_PUBLISH_RATE="0")
    publish(server, "room:loft", 1, 40)
    run_archiver(server, 40)
    # 41..80: the backlog keeps 61..80; 41..60 left it and wait in the archive queue.
    publish(server, "room:loft", 41, 80)
    reader = people(server.http)
    reader.open_room("loft")
    expect(reader.page.locator("#messages li.message")).to_have_count(20)
    scroll_to_top(reader)
    # The page below 61 is 40..1 (recovered: false): shown, with the hole marked pending.
    expect(reader.page.locator("#messages li.message")).to_have_count(60)
    assert shown_seqs(reader) == list(range(1, 41)) + list(range(61, 81))
    expect(reader.page.locator("#beginning")).to_be_visible()  # seq 1 is shown
    gap = reader.page.locator("#messages li.gap")
    expect(gap).to_have_count(1)
    expect(gap).to_have_class("gap retrying")
    expect(gap).to_have_text("20 messages not available yet — retrying")
    expect(reader.page.locator("#messages li.gap + li")).to_have_attribute("data-seq", "61")

    run_archiver(server, 40)
    expect(reader.page.locator("#messages li.message")).to_have_count(80, timeout=60_000)
    expect(reader.page.locator("#messages li.gap")).to_have_count(0)
    assert shown_seqs(reader) == list(range(1, 81))  # every seq once, in order
    texts = reader.page.locator("#messages li.message .text").all_text_contents()
    assert texts == [f"message {i}" for i in range(1, 81)]
    assert reader.errors == []


def test_older_messages_not_archived_yet_are_pending_not_the_beginning(start_server, people, chat_users) -> None:
    server = start_server("uvicorn", RT_BACKLOG_SIZE="20", RT_PUBLISH_RATE="0", RT_BACKEND_PUBLISH_RATE="0")
    publish(server, "room:shed", 1, 60)  # 1..40 left the backlog; the archiver has not run
    reader = people(server.http)
    reader.open_room("shed")
    expect(reader.page.locator("#messages li.message")).to_have_count(20)
    scroll_to_top(reader)
    # The older page is empty, yet seq 41 is the oldest shown: not the beginning.
    pending = reader.page.locator("#messages li.gap.retrying")
    expect(pending).to_have_text("40 older messages not available yet — retrying")
    assert pending.evaluate("el => el.nextElementSibling.dataset.seq") == "41"
    expect(reader.page.locator("#beginning")).to_be_hidden()
    assert shown_seqs(reader) == list(range(41, 61))

    run_archiver(server, 60)
    expect(reader.page.locator("#beginning")).to_be_visible(timeout=60_000)
    expect(reader.page.locator("#messages li.gap")).to_have_count(0)
    assert shown_seqs(reader) == list(range(1, 61))  # every seq once, in order
    texts = reader.page.locator("#messages li.message .text").all_text_contents()
    assert texts == [f"message {i}" for i in range(1, 61)]
    expect(reader.page.locator("#load-older")).to_be_hidden()
    assert reader.errors == []


def count_history_requests(person, stream: str) -> list[str]:
    """Every HTTP request this person's page makes for the stream's messages."""
    asked: list[str] = []
    paths = (f"/api/streams/{stream}/messages", "/api/streams/" + stream.replace(":", "%3A") + "/messages")

    def on_request(request) -> None:
        if any(path in request.url for path in paths):
            asked.append(request.url)

    person.page.on("request", on_request)
    return asked


def test_back_after_many_messages_shows_the_newest_page_fresh_without_filling_the_hole(start_server, people, chat_users) -> None:
    """Offline while far more than a page is published (the backlog cannot recover it): the
    page shows the reloaded newest messages as a fresh view, with a bounded number of
    history requests instead of filling the whole hole, and pages back from there."""
    server = start_server("uvicorn", RT_BACKLOG_SIZE="20", RT_PUBLISH_RATE="0", RT_BACKEND_PUBLISH_RATE="0")
    publish(server, "room:porch", 1, 10)
    reader = people(server.http)
    reader.open_room("porch")
    expect(reader.page.locator("#messages li.message")).to_have_count(10)
    asked = count_history_requests(reader, "room:porch")

    reader.context.set_offline(True)
    expect(reader.page.locator("#status")).not_to_have_attribute("data-state", "connected")
    publish(server, "room:porch", 11, 400)
    run_archiver(server, 400)
    reader.context.set_offline(False)
    expect(reader.page.locator("#status")).to_have_attribute("data-state", "connected", timeout=30_000)
    expect(reader.page.locator("#messages li.message .text").last).to_have_text("message 400")
    reader.page.wait_for_timeout(3000)  # time for any further request the reload would cause

    seqs = shown_seqs(reader)
    assert seqs == list(range(seqs[0], 401)), seqs  # contiguous up to the newest, no old part
    assert seqs[0] > 10
    expect(reader.page.locator("#messages li.gap")).to_have_count(0)
    assert 1 <= len(asked) <= 3, asked

    # "Load older" pages back from the reloaded view as usual.
    reader.page.evaluate("window.scrollTo(0, 200)")
    reader.page.locator("#load-older").dispatch_event("click")
    expect(reader.page.locator("#messages li.message")).to_have_count(len(seqs) + 50)
    assert shown_seqs(reader) == list(range(seqs[0] - 50, 401))
    texts = reader.page.locator("#messages li.message .text").all_text_contents()
    assert texts == [f"message {i}" for i in range(seqs[0] - 50, 401)]
    assert reader.errors == []


def test_a_proxy_error_on_load_older_names_its_status_and_loses_nothing(start_server, people, chat_users) -> None:
    """A 502 with an HTML body (a proxy in front of the server, not the API) is reported by
    its status, not as a JSON parse error; asked again once it is gone, the page loads."""
    server = start_server("uvicorn", RT_PUBLISH_RATE="0", RT_BACKEND_PUBLISH_RATE="0")
    publish(server, "room:cellar", 1, 60)
    reader = people(server.http)
    reader.open_room("cellar")
    expect(reader.page.locator("#messages li.message")).to_have_count(50)
    def proxy_down(url: str) -> bool:
        return "/messages?before=" in url

    reader.page.route(
        proxy_down,
        lambda route: route.fulfill(status=502, content_type="text/html", body="<html><body><h1>502 Bad Gateway</h1></body></html>"),
    )
    reader.page.locator("#load-older").dispatch_event("click")
    notice = reader.page.locator("#notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("HTTP 502")
    assert "JSON" not in notice.text_content()
    expect(reader.page.locator("#messages li.message")).to_have_count(50)  # nothing shown twice, nothing dropped
    reader.page.unroute(proxy_down)
    reader.page.locator("#load-older").dispatch_event("click")
    expect(reader.page.locator("#messages li.message")).to_have_count(60)
    assert shown_seqs(reader) == list(range(1, 61))
    assert reader.errors == []
