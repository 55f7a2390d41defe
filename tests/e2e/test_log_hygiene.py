"""What the servers write about a request: a WebSocket to a path with no route is refused
without a traceback, and no token reaches the log, under uvicorn and daphne alike."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import websockets

from tests.e2e.captured import captured
from tests.tokens import mint
from tests.wsclient import Client

pytestmark = pytest.mark.slow
SERVERS = ["uvicorn", "daphne"]


@pytest.mark.parametrize("kind", SERVERS)
async def test_a_websocket_to_an_unknown_path_is_refused_without_a_traceback(
    kind: str, server_env: dict[str, str], tmp_path: Path
) -> None:
    with captured(server_env, tmp_path, kind, LOG_LEVEL="INFO") as srv:
        for path in ("/nope/", "/", "/api/streams/room:x/messages"):
            with pytest.raises(websockets.InvalidStatus) as refused:
                await websockets.connect(f"ws://127.0.0.1:{srv.port}{path}")
            assert refused.value.response.status_code == 403
        client = await Client.connect(srv.ws)  # the real route still works
        assert await client.request({"type": "ping"}) == {"type": "pong"}
        await client.close()
        assert httpx.get(srv.http + "/healthz").status_code == 200
        log = srv.output()
    assert "Traceback" not in log, log
    assert "No route found" not in log, log


@pytest.mark.parametrize("kind", SERVERS)
async def test_no_token_reaches_the_log(kind: str, server_env: dict[str, str], tmp_path: Path) -> None:
    token = mint(sub="log-reader", name="Log Reader", pubs=["room:*"])
    with captured(server_env, tmp_path, kind, LOG_LEVEL="INFO") as srv:
        client = await Client.connect(f"{srv.ws}?token={token}")
        await client.subscribe("room:logs")
        await client.close()
        bad = await Client.connect(f"{srv.ws}?token={token}x")  # a bad token is logged no more than a good one
        assert (await bad.recv())["code"] == "unauthorized"
        await bad.close()
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{srv.http}/api/streams/room:logs/messages"
        assert httpx.post(url, json={"data": {"text": "hi"}}, headers=headers).status_code == 201
        assert httpx.get(f"{url}?limit=1&token={token}", headers=headers).status_code == 200
        assert httpx.get(f"{url}?limit=1", headers={"Authorization": "Bearer not-a-jwt-at-all"}).status_code == 401
        log = srv.output()
    assert token not in log
    assert token.split(".")[2] not in log  # not even the signature alone
    assert "not-a-jwt-at-all" not in log
    if kind == "uvicorn":
        assert '"WebSocket /ws/?token=[redacted]" [accepted]' in log, log
    else:  # daphne's access log: the HTTP request line keeps its path, not the token
        assert "GET /api/streams/room:logs/messages?limit=1&token=[redacted]" in log, log
        assert "WSCONNECT /ws/" in log, log

