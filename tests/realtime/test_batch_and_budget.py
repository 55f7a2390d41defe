"""`POST /api/messages` (docs/protocol.md 1.1 "Many messages at once") and the byte budget of
one HTTP read, in process against the real test Redis."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import AsyncClient

from realtime import runtime
from realtime.publishing import Sender, apublish
from tests.tokens import mint

pytestmark = pytest.mark.django_db(transaction=True)


async def post_batch(body: Any, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    text = body if isinstance(body, str | bytes) else json.dumps(body)
    return await AsyncClient().post("/api/messages", text, content_type="application/json", headers=headers)


async def test_a_backend_notifies_a_thousand_users_in_one_request() -> None:
    token = mint(pubs=["user:*"], jti="notifier")
    items = [{"stream": f"user:{n}", "data": {"text": f"hello {n}"}, "id": f"n{n}"} for n in range(1000)]
    got = await post_batch({"messages": items}, token)
    assert got.status_code == 200, got.content[:300]
    results = got.json()["results"]
    assert len(results) == 1000
    assert all(r["stream"] == f"user:{n}" and r["seq"] == 1 and r["epoch"] for n, r in enumerate(results))
    kept = await runtime.current().backlog.read("user:999")
    assert json.loads(kept.frames[0])["data"] == {"text": "hello 999"}
    again = (await post_batch({"messages": items[:3]}, token)).json()["results"]
    assert [r["seq"] for r in again] == [1, 1, 1]  # idempotent per item


async def test_each_item_has_its_own_rights_and_errors_in_order() -> None:
    token = mint(sub="4", pubs=["live:*"])
    got = await post_batch(
        {
            "messages": [
                {"stream": "live:a", "data": 1},
                {"stream": "user:5", "data": 2},  # not its feed, no grant
                {"stream": "nope:x", "data": 3},
                {"stream": "room:r", "data": {"text": "hi"}},
                {"stream": "live:a", "data": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]},
                {"stream": "live:a", "data": 4},
            ]
        },
        token,
    )
    assert got.status_code == 200
    results = got.json()["results"]
    assert results[0]["seq"] == 1 and results[5]["seq"] == 2
    assert results[1]["error"]["code"] == "forbidden"
    assert results[2]["error"]["code"] == "bad_request"
    assert results[3]["stream"] == "room:r"
    assert results[4]["error"]["code"] == "bad_request" and "32 levels" in results[4]["error"]["message"]


async def test_a_batch_counts_each_item_against_the_senders_rate(settings: Any) -> None:
    settings.RT_PUBLISH_RATE, settings.RT_PUBLISH_BURST = 0.001, 5
    token = mint(sub="6")
    items = [{"stream": "room:rated", "data": {"text": str(n)}} for n in range(8)]
    results = (await post_batch({"messages": items}, token)).json()["results"]
    assert ["seq" in r for r in results] == [True] * 5 + [False] * 3
    assert all(r["error"]["code"] == "rate_limited" and r["error"]["retry_after"] > 0 for r in results[5:])


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        {"messages": []},
        {"messages": "x"},
        {"messages": [{"data": 1}]},
        {"messages": [{"stream": "live:a"}]},
        {"messages": [{"stream": "live:a", "data": 1, "id": ""}]},
        {"messages": [{"stream": "live:a", "data": 1}] * 1001},
        {"items": [{"stream": "live:a", "data": 1}]},
        '{"messages": [{"stream": "live:a", "data": ' + "[" * 1500 + "]" * 1500 + "}]}",
    ],
    ids=["not-json", "array", "empty", "not-a-list", "no-stream", "no-data", "empty-id", "1001-items", "wrong-key", "1500-deep"],
)
async def test_a_body_not_of_the_shape_is_400_and_publishes_nothing(body: Any) -> None:
    got = await post_batch(body, mint(pubs=["live:*"]))
    assert got.status_code == 400, got.content[:300]
    assert got.json()["error"]["code"] == "bad_request"
    assert (await runtime.current().backlog.read("live:a")).frames == []


async def test_a_batch_body_over_one_mebibyte_is_413() -> None:
    item = {"stream": "live:a", "data": "x" * 60_000}
    got = await post_batch({"messages": [item] * 20}, mint(pubs=["live:*"]))
    assert got.status_code == 413 and got.json()["error"]["code"] == "too_large"
    assert (await runtime.current().backlog.read("live:a")).frames == []


async def test_a_batch_without_credentials_is_forbidden_item_by_item() -> None:
    results = (await post_batch({"messages": [{"stream": "live:a", "data": 1}]})).json()["results"]
    assert results[0]["error"]["code"] == "forbidden"


async def test_one_read_stops_at_its_byte_budget_and_the_caller_pages_on(settings: Any) -> None:
    settings.RT_HTTP_READ_BYTES = 200_000
    stream = "room:big"
    for n in range(1, 11):
        await apublish(stream, {"text": str(n) + "x" * 60_000}, Sender(key="k"))
    newest = (await AsyncClient().get(f"/api/streams/{stream}/messages?limit=1000")).json()
    assert [m["seq"] for m in newest["messages"]] == [8, 9, 10] and newest["seq"] == 10
    forward = (await AsyncClient().get(f"/api/streams/{stream}/messages?since=0&epoch={newest['epoch']}")).json()
    assert [m["seq"] for m in forward["messages"]] == [1, 2, 3] and forward["recovered"]
    older = (await AsyncClient().get(f"/api/streams/{stream}/messages?before=8")).json()
    assert [m["seq"] for m in older["messages"]] == [7, 6, 5] and older["recovered"]
    settings.RT_HTTP_READ_BYTES = 1024
    one = (await AsyncClient().get(f"/api/streams/{stream}/messages?since=4&epoch={newest['epoch']}")).json()
    assert [m["seq"] for m in one["messages"]] == [5]  # at least one, however large


async def test_the_backlog_cuts_a_read_at_its_byte_budget_in_redis() -> None:
    """Before anything crosses the network: the newest frames for a read back, the oldest for
    a read forward, and one frame even when it alone is over the budget."""
    backlog = runtime.current().backlog
    stream = "room:cut"
    for n in range(1, 11):
        await apublish(stream, {"text": str(n) + "x" * 1000}, Sender(key="k"))
    whole = await backlog.read(stream)
    size = len(whole.frames[0])  # every frame is about as large
    newest = await backlog.read(stream, most=10, budget=3 * size + 10)
    assert [json.loads(f)["seq"] for f in newest.frames] == [8, 9, 10] and newest.first == 8
    oldest = await backlog.read(stream, first=3, budget=3 * size + 10, keep_oldest=True)
    assert [json.loads(f)["seq"] for f in oldest.frames] == [3, 4, 5] and oldest.first == 3
    assert [json.loads(f)["seq"] for f in (await backlog.read(stream, first=6, budget=1, keep_oldest=True)).frames] == [6]
    assert [json.loads(f)["seq"] for f in (await backlog.read(stream, budget=1)).frames] == [10]
    assert len((await backlog.read(stream, budget=0)).frames) == 10 and newest.latest == 10


async def test_an_edit_in_a_batch_may_target_a_message_earlier_in_the_same_batch() -> None:
    """The items before an edit are stored before the edit is checked, as one by one."""
    token = mint(sub="4")
    got = await post_batch({"messages": [
        {"stream": "room:edits", "data": {"text": "helo"}},
        {"stream": "room:edits", "data": {"edit": 1, "text": "hello"}},
        {"stream": "room:edits", "data": {"edit": 9, "text": "no such message"}},
        {"stream": "room:edits", "data": {"delete": 1}},
    ]}, token)
    assert got.status_code == 200, got.content[:300]
    results = got.json()["results"]
    assert [r.get("seq") for r in results] == [1, 2, None, 3]
    assert results[2]["error"]["code"] == "bad_request"
    kept = (await runtime.current().backlog.read("room:edits")).frames
    assert [json.loads(f)["data"] for f in kept] == [{"text": "helo"}, {"edit": 1, "text": "hello"}, {"delete": 1}]


async def test_a_batch_while_redis_hangs_answers_unavailable_in_every_place(settings: Any, redis_server: Any) -> None:
    """Redis stopped (SIGSTOP): the pipeline is cut off at RT_REDIS_TIMEOUT, and every item
    says `unavailable` in its place (retry with the same ids), none is left out."""
    import os
    import signal

    token = mint(pubs=["live:*"], jti="hung")
    items = [{"stream": f"live:hung{n}", "data": n, "id": f"h{n}"} for n in range(3)]
    settings.RT_REDIS_TIMEOUT = 0.5
    os.kill(redis_server.process.pid, signal.SIGSTOP)
    try:
        got = await post_batch({"messages": items}, token)
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)
    assert got.status_code == 200, got.content[:300]
    assert [r["error"]["code"] for r in got.json()["results"]] == ["unavailable"] * 3
    settings.RT_REDIS_TIMEOUT = 5
    again = (await post_batch({"messages": items}, token)).json()["results"]
    assert [r["stream"] for r in again] == [f"live:hung{n}" for n in range(3)]  # the retry is stored
