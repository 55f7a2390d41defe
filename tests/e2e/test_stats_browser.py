"""The live stats page for staff (/stats/): figures of every server process, and a chart
that moves, fed over the product's own WebSocket; nobody else can see it."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import BASE_DIR
from tests.e2e.conftest import CHAT_PASSWORD
from tests.tokens import mint
from tests.wsclient import Client

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SCREENSHOTS = BASE_DIR / "docs" / "screenshots"


def make_staff(server_env: dict[str, str], name: str) -> None:
    code = (
        "from django.contrib.auth import get_user_model\n"
        f"user, _ = get_user_model().objects.get_or_create(username={name!r})\n"
        f"user.is_staff = True\nuser.set_password({CHAT_PASSWORD!r})\nuser.save()\n"
    )
    subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=BASE_DIR, env=server_env, check=True)


def traffic(server, stop: threading.Event) -> threading.Thread:
    """Five readers of room:busy and a publisher sending to it ten times a second."""

    async def run() -> None:
        readers = [await Client.connect(server.ws) for _ in range(5)]
        for reader in readers:
            await reader.subscribe("room:busy")
        publisher = await Client.connect(server.ws + "?token=" + mint(sub="p", pubs=["room:*"]))
        n = 0
        while not stop.is_set():
            n += 1
            await publisher.request({"type": "publish", "stream": "room:busy", "data": {"text": str(n)}, "id": str(n)})
            await asyncio.sleep(0.1)
        for client in [publisher, *readers]:
            await client.close()

    thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
    thread.start()
    return thread


def test_staff_see_the_figures_move_and_others_cannot(start_server, server_env, people) -> None:
    a, b = start_server("uvicorn"), start_server("uvicorn")
    make_staff(server_env, "operator")
    stop = threading.Event()
    load = traffic(b, stop)
    try:
        staff = people(a.http)
        staff.sign_in("operator")
        staff.page.goto(a.http + "/stats/")
        expect(staff.page.locator("#processes")).to_have_text("2 server processes", timeout=15_000)
        expect(staff.page.locator("#busiest td").first).to_have_text("room:busy", timeout=15_000)
        for _ in range(150):  # the chart moves: points of deliveries/s above zero
            if staff.page.evaluate("() => window.statsPage.points.filter((v) => v > 0).length") >= 3:
                break
            staff.page.wait_for_timeout(100)
        assert staff.page.evaluate("() => window.statsPage.points.filter((v) => v > 0).length") >= 3
        connections = int(staff.page.locator("#connections").inner_text().replace(",", ""))
        assert connections >= 7  # five readers, the publisher, this page
        expect(staff.page.locator("#publish-latency")).to_have_text(re.compile(r"^\d+\.\d ms$"), timeout=5_000)
        expect(staff.page.locator("#archive_queued")).to_have_text(re.compile(r"^\d[\d,]*$"))
        expect(staff.page.locator("#archive_dead")).to_have_text("0")  # nothing failed to archive
        expect(staff.page.locator("#archive_oldest_s")).to_have_text(re.compile(r"^\d+ s$"))
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        staff.page.screenshot(path=str(SCREENSHOTS / "stats.png"), full_page=True)
        assert staff.errors == []
    finally:
        stop.set()
        load.join(10)
    # Not staff: the page sends to the sign-in, and the stream itself is forbidden.
    assert httpx.get(a.http + "/stats/").status_code == 302
    token = mint(sub="someone", name="someone")
    read = httpx.get(a.http + "/api/streams/staff:stats/messages", headers={"Authorization": f"Bearer {token}"})
    assert read.status_code == 403 and read.json()["error"]["code"] == "forbidden"
