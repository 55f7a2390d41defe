"""WORKERS=N serves one port from N uvicorn processes, each with its own hub: a message
published through one reaches subscribers on every other."""

from __future__ import annotations

import asyncio
from typing import Any

import psutil
import pytest

from config.serve import server_command
from tests.tokens import mint
from tests.wsclient import Client

pytestmark = pytest.mark.slow


async def test_two_workers_deliver_to_each_others_subscribers(start_server: Any) -> None:
    srv = start_server("uvicorn", WORKERS="2")
    workers = [p for p in psutil.Process(srv.process.pid).children(recursive=True) if "python" in p.name().lower()]
    assert len(workers) >= 2, workers
    # Twenty connections land on the two workers as the kernel spreads them: all of them on
    # one would take odds of one in half a million.
    subscribers = [await Client.connect(srv.ws) for _ in range(20)]
    for client in subscribers:
        await client.subscribe("live:spread")
    publisher = await Client.connect(srv.ws + "?token=" + mint(pubs=["live:*"]))
    for n in range(1, 4):
        assert (await publisher.request({"type": "publish", "stream": "live:spread", "data": n, "id": str(n)}))["type"] == "ack"
    got = await asyncio.gather(*(client.messages("live:spread", 3) for client in subscribers))
    assert all([m["seq"] for m in messages] == [1, 2, 3] for messages in got)
    for client in [publisher, *subscribers]:
        await client.close()


def test_workers_is_checked_and_daphne_refuses_several() -> None:
    assert "--workers" in server_command("uvicorn", "127.0.0.1", 8000, {"WORKERS": "3"})
    assert "--workers" not in server_command("uvicorn", "127.0.0.1", 8000, {"WORKERS": "1"})
    with pytest.raises(SystemExit, match="WORKERS"):
        server_command("uvicorn", "127.0.0.1", 8000, {"WORKERS": "two"})
    with pytest.raises(SystemExit, match="needs SERVER=uvicorn"):
        server_command("daphne", "127.0.0.1", 8000, {"WORKERS": "2"})


def test_deflate_is_off_unless_asked_for_and_a_wrong_value_is_refused() -> None:
    def deflate(env: dict[str, str]) -> str:
        command = server_command("uvicorn", "127.0.0.1", 8000, env)
        return command[command.index("--ws-per-message-deflate") + 1]

    assert deflate({}) == "false" and deflate({"RT_WS_DEFLATE": "0"}) == "false"
    assert deflate({"RT_WS_DEFLATE": "1"}) == "true"
    with pytest.raises(SystemExit, match="RT_WS_DEFLATE='yes': expected 0"):
        server_command("uvicorn", "127.0.0.1", 8000, {"RT_WS_DEFLATE": "yes"})
