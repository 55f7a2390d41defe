"""examples/flask_publisher.py against a real server: what the Flask site publishes over
HTTP arrives over WebSocket, and the token it hands to a browser opens that user's feed."""

from __future__ import annotations

import asyncio
import importlib.util
from types import ModuleType
from typing import Any

from django.conf import settings

from tests.conftest import BASE_DIR
from tests.wsclient import Client


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("flask_publisher", BASE_DIR / "examples" / "flask_publisher.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_flask_publish_arrives_over_websocket(start_server: Any, monkeypatch: Any) -> None:
    server = start_server("uvicorn")
    monkeypatch.setenv("RT_SERVER_URL", server.http)
    monkeypatch.setenv("RT_TOKEN_SECRET", settings.RT_TOKEN_SECRET)
    site = load_example().create_app().test_client()
    listener = await Client.connect(server.ws)
    assert (await listener.subscribe("room:flask"))["seq"] == 0

    def announce(text: str, request_id: str) -> Any:
        return site.post("/rooms/flask/announce", json={"text": text}, headers={"X-Request-Id": request_id})

    first = await asyncio.to_thread(announce, "hello from flask", "r1")
    assert first.status_code == 201 and first.get_json()["seq"] == 1
    [message] = await listener.messages("room:flask", 1)
    assert message["data"] == {"text": "hello from flask"}
    assert message["sender"] == {"id": "flask-site", "name": "Flask site"}
    retried = await asyncio.to_thread(announce, "hello from flask", "r1")
    assert retried.status_code == 200 and retried.get_json() == first.get_json()
    await listener.close()


async def test_browser_token_from_flask_opens_only_that_feed(start_server: Any) -> None:
    server = start_server("uvicorn")
    site = load_example().create_app(server.http, settings.RT_TOKEN_SECRET).test_client()
    token = site.get("/token/42").get_json()["token"]
    browser = await Client.connect(server.ws + "?token=" + token)
    assert (await browser.subscribe("user:42"))["stream"] == "user:42"
    refused = await browser.request({"type": "subscribe", "stream": "user:43"})
    assert refused["type"] == "error" and refused["code"] == "forbidden"
    posted = await browser.request({"type": "publish", "stream": "room:lobby", "data": {"text": "as 42"}, "id": "p1"})
    assert posted["type"] == "error" and posted["code"] == "forbidden"
    await browser.close()


def test_a_realtime_server_that_cannot_be_reached_is_answered_502_with_why() -> None:
    site = load_example().create_app("http://127.0.0.1:9", settings.RT_TOKEN_SECRET).test_client()
    reply = site.post("/rooms/flask/announce", json={"text": "nobody listens"})
    assert reply.status_code == 502
    assert reply.get_json()["error"]["code"] == "upstream" and "cannot be reached" in reply.get_json()["error"]["message"]
