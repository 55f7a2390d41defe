"""Every door tried with the wrong key, over real sockets: each refusal says why in the
protocol's terms, and no refused attempt moves a stream's seq."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
import pytest
from django.conf import settings

from config.embedded_redis import free_port
from tests.tokens import mint
from tests.wsclient import Client

BROAD = mint(sub="reader", subs=["*"], pubs=["*"])


def api(server: Any, stream: str) -> str:
    return f"{server.http}/api/streams/{stream}/messages"


async def seq_of(server: Any, stream: str) -> int:
    async with httpx.AsyncClient() as http:
        reply = await http.get(api(server, stream), headers={"Authorization": "Bearer " + BROAD})
    assert reply.status_code == 200, reply.text
    return int(reply.json()["seq"])


def error_of(reply: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    error: dict[str, Any] = reply.json()["error"]
    assert error["code"] == code and error["message"], error
    return error


# -- WebSocket --------------------------------------------------------------------------

BAD_TOKENS = {
    "expired": lambda: mint(ttl=-30, sub="1", subs=["*"], pubs=["*"]),
    "other secret": lambda: mint(secret="an-other-secret-that-is-long-enough", sub="1", pubs=["*"]),
    "alg none": lambda: jwt.encode({"exp": int(time.time()) + 60, "sub": "1", "pubs": ["*"]}, None, algorithm="none"),
    "no exp": lambda: jwt.encode({"sub": "1", "pubs": ["*"]}, settings.RT_TOKEN_SECRET, algorithm="HS256"),
    "malformed": lambda: "abc.def.ghi",
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
async def test_bad_token_gets_unauthorized_then_4501(server: Any, case: str) -> None:
    client = await Client.connect(server.ws + "?token=" + BAD_TOKENS[case]())
    frame = await client.recv()
    assert frame["type"] == "error" and frame["code"] == "unauthorized", frame
    await client.ws.wait_closed()
    assert client.ws.close_code == 4501


async def test_subscribing_to_another_users_feed_is_forbidden(server: Any) -> None:
    attempts = {
        "user 2 token": server.ws + "?token=" + mint(sub="2"),
        "no credentials": server.ws,
        "subs that do not match": server.ws + "?token=" + mint(subs=["user:10", "user:1?", "live:*"]),
    }
    for case, url in attempts.items():
        client = await Client.connect(url)
        reply = await client.request({"type": "subscribe", "stream": "user:1"})
        assert reply["type"] == "error" and reply["code"] == "forbidden" and reply["stream"] == "user:1", case
        assert await client.request({"type": "ping"}) == {"type": "pong"}, case  # still open
        await client.close()
    owner = await Client.connect(server.ws + "?token=" + mint(sub="1"))
    assert (await owner.subscribe("user:1"))["seq"] == 0  # the right key opens it
    await owner.close()


async def test_ws_publish_without_the_right_leaves_seq_unchanged(server: Any, signed_in: Any) -> None:
    member = signed_in()
    origin = {"Origin": server.http, "Cookie": member.cookie}
    client = await Client.connect(server.ws, additional_headers=origin)
    refused = await client.request({"type": "publish", "stream": "live:scores", "data": 1, "id": "a"})
    assert refused["type"] == "error" and refused["code"] == "forbidden" and refused["id"] == "a"
    for stream in ("user:1", f"user:{int(member.user_id) + 1}"):
        refused = await client.request({"type": "publish", "stream": stream, "data": 1, "id": "b"})
        assert refused["code"] == "forbidden", stream
    ack = await client.request({"type": "publish", "stream": "room:doors", "data": 1, "id": "c"})
    assert ack["type"] == "ack" and ack["seq"] == 1  # the session is honoured: signed in, not staff
    await client.close()
    assert await seq_of(server, "live:scores") == 0 and await seq_of(server, "user:1") == 0


async def test_session_cookie_from_a_foreign_origin_is_anonymous(server: Any, signed_in: Any) -> None:
    member = signed_in()
    feed = f"user:{member.user_id}"
    foreign = await Client.connect(
        server.ws, additional_headers={"Origin": "https://evil.example", "Cookie": member.cookie}
    )
    assert (await foreign.request({"type": "subscribe", "stream": feed}))["code"] == "forbidden"
    refused = await foreign.request({"type": "publish", "stream": "room:doors", "data": 1, "id": "x"})
    assert refused["code"] == "forbidden"
    await foreign.close()
    # Browsers send a host's cookies to all its ports: a page of another app on this
    # host is another origin too.
    neighbour = server.http.rsplit(":", 1)[0] + f":{server.port + 1}"
    beside = await Client.connect(server.ws, additional_headers={"Origin": neighbour, "Cookie": member.cookie})
    assert (await beside.request({"type": "subscribe", "stream": feed}))["code"] == "forbidden"
    await beside.close()
    own = await Client.connect(server.ws, additional_headers={"Origin": server.http, "Cookie": member.cookie})
    assert (await own.subscribe(feed))["stream"] == feed
    await own.close()
    assert await seq_of(server, "room:doors") == 0


# -- HTTP -------------------------------------------------------------------------------


async def test_http_error_statuses(server: Any) -> None:
    """400, 401, 403, 404 and 413 under uvicorn and daphne; none of them stores anything."""
    url = api(server, "room:http")
    good = {"Authorization": "Bearer " + mint(sub="9", pubs=["room:*"])}
    async with httpx.AsyncClient() as http:
        error_of(await http.post(api(server, "room:bad name"), json={"data": 1}, headers=good), 400, "bad_request")
        error_of(await http.post(url, content=b'{"data":', headers=good), 400, "bad_request")
        error_of(await http.get(url + "?since=-4&epoch=e", headers=good), 400, "bad_request")
        error_of(await http.post(url, json={"data": 1}, headers={"Authorization": "Bearer x.y.z"}), 401, "unauthorized")
        expired = {"Authorization": "Bearer " + mint(ttl=-5, sub="9", pubs=["*"])}
        error_of(await http.post(url, json={"data": 1}, headers=expired), 401, "unauthorized")
        error_of(await http.post(url, json={"data": 1}), 403, "forbidden")
        error_of(await http.post(api(server, "live:x"), json={"data": 1}, headers=good), 403, "forbidden")
        error_of(await http.get(api(server, "user:1"), headers=good), 403, "forbidden")
        error_of(await http.get(server.http + "/api/nope"), 404, "not_found")
        error_of(await http.post(url, json={"data": "x" * 70_000}, headers=good), 413, "too_large")
        embedded = await http.post(url, json={"data": "last"}, headers={**good, "Origin": "https://embedder.example"})
    assert embedded.status_code == 201 and embedded.headers["Access-Control-Allow-Origin"] == "*"
    assert await seq_of(server, "room:http") == 1
    assert await seq_of(server, "live:x") == 0


async def test_session_post_needs_csrf_over_http(start_server: Any, signed_in: Any) -> None:
    server = start_server("uvicorn")
    member = signed_in()
    url = api(server, "room:csrf")
    async with httpx.AsyncClient(cookies={"sessionid": member.session_key}) as http:
        error_of(await http.post(url, json={"data": 1}), 403, "forbidden")
        error_of(await http.post(url, json={"data": 1}, headers={"Origin": server.http}), 403, "forbidden")
        assert await seq_of(server, "room:csrf") == 0
        secret = "s" * 32
        http.cookies.set("csrftoken", secret)
        ok = await http.post(url, json={"data": 1}, headers={"X-CSRFToken": secret, "Origin": server.http})
    assert ok.status_code == 201, ok.text
    assert await seq_of(server, "room:csrf") == 1


async def test_http_rate_limit_is_429_with_retry_after(start_server: Any) -> None:
    server = start_server("uvicorn", RT_PUBLISH_RATE="0.01", RT_PUBLISH_BURST="2")
    url = api(server, "room:rate")
    token = {"Authorization": "Bearer " + mint(sub="r1")}
    async with httpx.AsyncClient() as http:
        assert [(await http.post(url, json={"data": i}, headers=token)).status_code for i in range(2)] == [201, 201]
        limited = await http.post(url, json={"data": 3}, headers=token)
        error = error_of(limited, 429, "rate_limited")
    assert error["retry_after"] > 0 and int(limited.headers["Retry-After"]) >= 1
    assert await seq_of(server, "room:rate") == 2


async def test_redis_down_is_503(start_server: Any) -> None:
    nothing_there = f"redis://127.0.0.1:{free_port()}/0"
    server = start_server("uvicorn", REDIS_URL=nothing_there)
    token = {"Authorization": "Bearer " + BROAD}
    async with httpx.AsyncClient(timeout=30) as http:
        error_of(await http.post(api(server, "room:down"), json={"data": 1}, headers=token), 503, "unavailable")
        error_of(await http.get(api(server, "room:down"), headers=token), 503, "unavailable")
        assert (await http.get(server.http + "/readyz")).status_code == 503
