"""examples/flask_publisher.py against a real server: what the Flask site publishes over
HTTP arrives over WebSocket, only for callers with its shared secret; the token it hands to
a browser opens the signed-in person's own feed, and only for a plain id."""

from __future__ import annotations

import asyncio
import importlib.util
import secrets
from types import ModuleType
from typing import Any

import jwt
import pytest
from django.conf import settings

from tests.conftest import BASE_DIR
from tests.wsclient import Client

SESSION_KEY = secrets.token_urlsafe(32)
ANNOUNCE_SECRET = secrets.token_urlsafe(32)


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
    monkeypatch.setenv("FLASK_SECRET_KEY", SESSION_KEY)
    monkeypatch.setenv("ANNOUNCE_SECRET", ANNOUNCE_SECRET)
    site = load_example().create_app().test_client()
    listener = await Client.connect(server.ws)
    assert (await listener.subscribe("room:flask"))["seq"] == 0

    def announce(text: str, request_id: str) -> Any:
        headers = {"X-Request-Id": request_id, "Authorization": f"Bearer {ANNOUNCE_SECRET}"}
        return site.post("/rooms/flask/announce", json={"text": text}, headers=headers)

    first = await asyncio.to_thread(announce, "hello from flask", "r1")
    assert first.status_code == 201 and first.get_json()["seq"] == 1
    [message] = await listener.messages("room:flask", 1)
    assert message["data"] == {"text": "hello from flask"}
    assert message["sender"] == {"id": "flask-site", "name": "Flask site"}
    retried = await asyncio.to_thread(announce, "hello from flask", "r1")
    assert retried.status_code == 200 and retried.get_json() == first.get_json()
    await listener.close()


def site_for(server_url: str, **options: Any) -> Any:
    options.setdefault("session_key", SESSION_KEY)
    return load_example().create_app(server_url, settings.RT_TOKEN_SECRET, **options).test_client()


def signed_in_as(site: Any, user_id: object) -> Any:
    with site.session_transaction() as session:
        session["user_id"] = user_id
    return site


@pytest.mark.slow
async def test_browser_token_from_flask_opens_only_the_session_users_feed(start_server: Any) -> None:
    server = start_server("uvicorn")
    site = signed_in_as(site_for(server.http), 42)
    reply = site.get("/rt-token")
    assert reply.status_code == 200 and reply.headers["Cache-Control"] == "no-store"
    token = reply.get_json()["token"]
    assert jwt.decode(token, settings.RT_TOKEN_SECRET, algorithms=["HS256"])["subs"] == ["user:42"]
    browser = await Client.connect(server.ws + "?token=" + token)
    assert (await browser.subscribe("user:42"))["stream"] == "user:42"
    refused = await browser.request({"type": "subscribe", "stream": "user:43"})
    assert refused["type"] == "error" and refused["code"] == "forbidden"
    posted = await browser.request({"type": "publish", "stream": "room:lobby", "data": {"text": "as 42"}, "id": "p1"})
    assert posted["type"] == "error" and posted["code"] == "forbidden"
    await browser.close()


def test_no_browser_token_without_a_session_or_for_another_user() -> None:
    site = site_for("http://127.0.0.1:9")
    assert site.get("/rt-token").status_code == 403
    assert site.get("/rt-token?user=42").status_code == 403  # the request never names the user
    assert site.get("/token/42").status_code == 404  # the old route that minted for any id is gone


@pytest.mark.parametrize("user_id", ["*", "4*", "user:*", "1.2", "", "a" * 65, "42\n"])
def test_no_browser_token_for_an_id_that_is_not_plain(user_id: str) -> None:
    site = signed_in_as(site_for("http://127.0.0.1:9"), user_id)
    reply = site.get("/rt-token")
    assert reply.status_code == 400 and reply.get_json()["error"]["code"] == "bad_request"
    assert "token" not in reply.get_json()


@pytest.mark.slow
async def test_announce_needs_the_shared_secret(start_server: Any) -> None:
    server = start_server("uvicorn")
    listener = await Client.connect(server.ws)
    await listener.subscribe("room:guarded")
    site = site_for(server.http, announce_secret=ANNOUNCE_SECRET)
    attempts = [
        {},
        {"Authorization": "Bearer wrong-" + ANNOUNCE_SECRET},
        {"Authorization": ANNOUNCE_SECRET},
        {"Authorization": "Bearer "},
    ]
    for headers in attempts:
        reply = site.post("/rooms/guarded/announce", json={"text": "spoofed"}, headers=headers)
        assert reply.status_code == 403 and reply.get_json()["error"]["code"] == "forbidden", headers
    signed_in_as(site, 1)  # a browser session is not a service credential
    assert site.post("/rooms/guarded/announce", json={"text": "spoofed"}).status_code == 403
    unset = site_for(server.http)  # no ANNOUNCE_SECRET: announce is off
    assert unset.post("/rooms/guarded/announce", json={"text": "x"}, headers={"Authorization": "Bearer "}).status_code == 403
    headers = {"Authorization": f"Bearer {ANNOUNCE_SECRET}"}
    assert site.post("/rooms/guarded%3Fx/announce", json={"text": "x"}, headers=headers).status_code == 400
    ok = await asyncio.to_thread(site.post, "/rooms/guarded/announce", json={"text": "real"}, headers=headers)
    assert ok.status_code == 201
    [message] = await listener.messages("room:guarded", 1)
    assert message["data"] == {"text": "real"}  # the refused ones never reached the server
    await listener.close()


def test_a_realtime_server_that_cannot_be_reached_is_answered_502_with_why() -> None:
    site = site_for("http://127.0.0.1:9", announce_secret=ANNOUNCE_SECRET)
    reply = site.post("/rooms/flask/announce", json={"text": "nobody listens"}, headers={"Authorization": f"Bearer {ANNOUNCE_SECRET}"})
    assert reply.status_code == 502
    assert reply.get_json()["error"]["code"] == "upstream" and "cannot be reached" in reply.get_json()["error"]["message"]
