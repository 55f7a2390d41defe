"""`/api/feed/{user_id}/read` in process (Django's AsyncClient) against the real test Redis
and a test database: rights, the forward-only merge, read markers, CORS, wrong requests."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from django.test import AsyncClient

from feed import anotify
from realtime import runtime
from tests.tokens import mint

pytestmark = pytest.mark.usefixtures("transactional_db")


def bearer(**claims: Any) -> dict[str, str]:
    return {"Authorization": "Bearer " + mint(**claims)}


def person() -> str:
    return "9" + str(uuid.uuid4().int)[:8]


def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code and error["message"], error


async def mark(client: AsyncClient, user_id: str, body: Any, headers: dict[str, str]) -> Any:
    content = body if isinstance(body, str) else json.dumps(body)
    return await client.post(f"/api/feed/{user_id}/read", content, content_type="application/json", headers=headers)


async def feed_with(user_id: str, count: int) -> tuple[str, int]:
    for n in range(count):
        await anotify(user_id, f"n{n}", "")
    return await runtime.current().backlog.position(f"user:{user_id}")


async def test_position_starts_empty_moves_forward_and_announces_itself() -> None:
    user, client = person(), AsyncClient()
    auth = bearer(sub=user)
    start = await client.get(f"/api/feed/{user}/read", headers=auth)
    assert start.status_code == 200
    assert start.json() == {"stream": f"user:{user}", "epoch": None, "seq": 0}

    epoch, latest = await feed_with(user, 3)
    moved = await mark(client, user, {"epoch": epoch, "seq": 2}, auth)
    assert moved.status_code == 200 and moved.json() == {"stream": f"user:{user}", "epoch": epoch, "seq": 2}
    # The move is announced on the feed as a read marker, after the notifications.
    got = await runtime.current().backlog.read(f"user:{user}")
    marker = json.loads(got.frames[-1])
    assert (marker["seq"], marker["data"]) == (latest + 1, {"read": {"epoch": epoch, "seq": 2}})
    assert marker["sender"] is None

    # An older position answers the stored one and announces nothing.
    older = await mark(client, user, {"epoch": epoch, "seq": 1}, auth)
    assert older.status_code == 200 and older.json()["seq"] == 2
    assert (await runtime.current().backlog.position(f"user:{user}"))[1] == latest + 1
    again = await client.get(f"/api/feed/{user}/read", headers=auth)
    assert again.json() == {"stream": f"user:{user}", "epoch": epoch, "seq": 2}


async def test_only_the_person_or_a_subs_grant_reaches_a_read_position() -> None:
    user, other, client = person(), person(), AsyncClient()
    epoch, _ = await feed_with(user, 1)
    body = {"epoch": epoch, "seq": 1}
    for headers in (bearer(sub=other), bearer(subs=[f"user:{other}"]), {}):
        assert_error(await client.get(f"/api/feed/{user}/read", headers=headers), 403, "forbidden")
        assert_error(await mark(client, user, body, headers), 403, "forbidden")
    assert_error(await client.get(f"/api/feed/{user}/read", headers={"Authorization": "Bearer nope"}), 401, "unauthorized")
    assert_error(await mark(client, user, body, bearer(ttl=-10, sub=user)), 401, "unauthorized")
    assert (await client.get(f"/api/feed/{user}/read", headers=bearer(sub=user))).json()["seq"] == 0
    # A backend's token with a matching `subs` grant may act for the person.
    granted = await mark(client, user, body, bearer(subs=[f"user:{user}"]))
    assert granted.status_code == 200 and granted.json()["seq"] == 1


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[1, 2]",
        {"seq": 1},
        {"epoch": "EPOCH"},
        {"epoch": "", "seq": 1},
        {"epoch": "EPOCH", "seq": -1},
        {"epoch": "EPOCH", "seq": "1"},
        {"epoch": "EPOCH", "seq": 2**53},
        {"epoch": "EPOCH", "seq": 1.5},
        {"epoch": "EPOCH", "seq": True},
    ],
    ids=[
        "not json", "not an object", "no epoch", "no seq", "empty epoch", "negative seq", "seq a string",
        "seq too big", "seq a fraction", "seq a boolean",
    ],
)
async def test_wrong_marks_are_refused_and_change_nothing(body: Any) -> None:
    user, client = person(), AsyncClient()
    auth = bearer(sub=user)
    epoch, latest = await feed_with(user, 2)
    assert (await mark(client, user, {"epoch": epoch, "seq": 1}, auth)).status_code == 200
    if isinstance(body, dict) and body.get("epoch") == "EPOCH":
        body = {**body, "epoch": epoch}
    assert_error(await mark(client, user, body, auth), 400, "bad_request")
    assert (await client.get(f"/api/feed/{user}/read", headers=auth)).json()["seq"] == 1
    assert (await runtime.current().backlog.position(f"user:{user}"))[1] == latest + 1  # one marker only


async def test_stale_epoch_changes_nothing_and_a_seq_past_the_end_is_capped() -> None:
    user, client = person(), AsyncClient()
    auth = bearer(sub=user)
    epoch, latest = await feed_with(user, 2)
    stale = await mark(client, user, {"epoch": "a-lost-epoch", "seq": 1}, auth)
    assert stale.status_code == 200 and stale.json() == {"stream": f"user:{user}", "epoch": None, "seq": 0}
    ahead = await mark(client, user, {"epoch": epoch, "seq": 99}, auth)
    assert ahead.status_code == 200 and ahead.json()["seq"] == latest
    assert (await runtime.current().backlog.position(f"user:{user}"))[1] == latest + 1  # one marker


async def test_bad_user_id_in_the_path_is_refused() -> None:
    assert_error(await AsyncClient().get("/api/feed/a:b/read", headers=bearer(sub="1")), 400, "bad_request")


@pytest.fixture
def member() -> Any:
    from django.contrib.auth.models import User

    return User.objects.create_user("reader" + uuid.uuid4().hex[:6], password="pw")


async def test_session_marks_need_csrf_and_an_own_origin(member: Any) -> None:
    from django.http import HttpRequest
    from django.middleware.csrf import get_token

    user = str(member.pk)
    epoch, _ = await feed_with(user, 1)
    client = AsyncClient(enforce_csrf_checks=True)
    await client.aforce_login(member)
    assert (await client.get(f"/api/feed/{user}/read")).status_code == 200
    assert_error(await client.get(f"/api/feed/{user}/read", headers={"Origin": "https://evil.example"}), 403, "forbidden")
    assert_error(await mark(client, user, {"epoch": epoch, "seq": 1}, {}), 403, "forbidden")
    page_request = HttpRequest()
    token = get_token(page_request)
    client.cookies["csrftoken"] = page_request.META["CSRF_COOKIE"]
    ok = await mark(client, user, {"epoch": epoch, "seq": 1}, {"X-CSRFToken": token})
    assert ok.status_code == 200 and ok.json()["seq"] == 1

    from feed.models import ReadPosition

    assert await ReadPosition.objects.filter(person=user).acount() == 1
    await member.adelete()
    assert await ReadPosition.objects.filter(person=user).acount() == 0


async def test_openapi_documents_the_read_position() -> None:
    doc = (await AsyncClient().get("/api/openapi.json")).json()
    operations = doc["paths"]["/api/feed/{user_id}/read"]
    assert set(operations) == {"get", "post"}
    assert "requestBody" in operations["post"]
    assert {"200", "400", "401", "403"} <= set(operations["post"]["responses"])


async def test_oversized_mark_is_refused_with_413() -> None:
    user = person()
    epoch, _ = await feed_with(user, 1)
    response = await mark(AsyncClient(), user, {"epoch": epoch, "seq": 1, "pad": "x" * 70_000}, bearer(sub=user))
    assert_error(response, 413, "too_large")
    assert (await AsyncClient().get(f"/api/feed/{user}/read", headers=bearer(sub=user))).json()["seq"] == 0


async def test_oversized_mark_over_djangos_own_limit_is_413_in_the_api_shape() -> None:
    user = person()
    epoch, _ = await feed_with(user, 1)
    huge = {"epoch": epoch, "seq": 1, "pad": "x" * 3_000_000}  # past DATA_UPLOAD_MAX_MEMORY_SIZE too
    assert_error(await mark(AsyncClient(), user, huge, bearer(sub=user)), 413, "too_large")


async def test_mark_refused_by_djangos_upload_limit_is_413(settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000  # below RT_MAX_FRAME: Django refuses first
    user = person()
    epoch, _ = await feed_with(user, 1)
    body = {"epoch": epoch, "seq": 1, "pad": "x" * 5000}
    assert_error(await mark(AsyncClient(), user, body, bearer(sub=user)), 413, "too_large")
    assert (await AsyncClient().get(f"/api/feed/{user}/read", headers=bearer(sub=user))).json()["seq"] == 0


async def test_marking_read_markers_read_moves_nothing_and_publishes_nothing() -> None:
    """A loop posting the latest seq: each marker would be the next thing to mark read."""
    user, client = person(), AsyncClient()
    auth = bearer(subs=[f"user:{user}"], jti="backend-1")  # a `subs` grant is enough to try
    epoch, latest = await feed_with(user, 2)
    assert (await mark(client, user, {"epoch": epoch, "seq": latest}, auth)).json()["seq"] == latest
    for _ in range(5):
        _, now = await runtime.current().backlog.position(f"user:{user}")
        answer = await mark(client, user, {"epoch": epoch, "seq": now}, auth)
        assert answer.status_code == 200 and answer.json()["seq"] == latest
    assert (await runtime.current().backlog.position(f"user:{user}"))[1] == latest + 1  # the one marker

    # A notification after the marker can be marked read; the position stops at it.
    await anotify(user, "third", "")
    _, now = await runtime.current().backlog.position(f"user:{user}")
    assert (await mark(client, user, {"epoch": epoch, "seq": now + 5}, auth)).json()["seq"] == now
    assert (await runtime.current().backlog.position(f"user:{user}"))[1] == now + 1


async def test_read_position_stops_below_markers_that_follow_a_notification() -> None:
    user, client = person(), AsyncClient()
    auth = bearer(sub=user)
    epoch, _ = await feed_with(user, 1)
    # Markers published by other means (an old server, another backend) are skipped too.
    for seq in (1, 1, 1):
        await runtime.current().backlog.append(
            f"user:{user}", '"ts":1,"data":{"read":{"epoch":"%s","seq":%d}},"sender":null}' % (epoch, seq),
            sender_key="test", client_id=None, archive=False,
        )
    _, latest = await runtime.current().backlog.position(f"user:{user}")
    assert latest == 4
    assert (await mark(client, user, {"epoch": epoch, "seq": latest}, auth)).json()["seq"] == 1


async def test_marks_are_rate_limited_per_sender(settings: Any) -> None:
    settings.RT_PUBLISH_RATE = 0.01  # one more every 100 s: the third mark is refused
    settings.RT_PUBLISH_BURST = 2
    user, client = person(), AsyncClient()
    epoch, _ = await feed_with(user, 3)
    auth = bearer(sub=user)
    for seq in (1, 2):
        assert (await mark(client, user, {"epoch": epoch, "seq": seq}, auth)).status_code == 200
    refused = await mark(client, user, {"epoch": epoch, "seq": 3}, auth)
    assert_error(refused, 429, "rate_limited")
    assert refused.json()["error"]["retry_after"] > 0 and int(refused["Retry-After"]) >= 1
    assert (await client.get(f"/api/feed/{user}/read", headers=auth)).json()["seq"] == 2  # nothing lost
    # Another sender has a bucket of its own.
    other = await mark(client, user, {"epoch": epoch, "seq": 3}, bearer(subs=[f"user:{user}"], jti="other"))
    assert other.status_code == 200 and other.json()["seq"] == 3


async def test_a_saved_position_whose_marker_was_lost_is_announced_on_retry() -> None:
    """The position is saved before the marker is published: when that publish failed
    (Redis down), the client's retry must still announce it, once."""
    from feed import read_state

    user, client = person(), AsyncClient()
    auth = bearer(sub=user)
    epoch, latest = await feed_with(user, 2)
    await read_state.advance(user, read_state.Position(epoch, latest), epoch, latest)  # saved, not announced
    for _ in range(2):
        retry = await mark(client, user, {"epoch": epoch, "seq": latest}, auth)
        assert retry.status_code == 200 and retry.json()["seq"] == latest
    got = await runtime.current().backlog.read(f"user:{user}")
    assert got.latest == latest + 1  # announced once: the repeat is the same idempotent publish
    assert json.loads(got.frames[-1])["data"] == {"read": {"epoch": epoch, "seq": latest}}


async def test_first_marks_from_two_tabs_at_once_both_answer() -> None:
    user = person()
    epoch, _ = await feed_with(user, 3)
    auth = bearer(sub=user)
    answers = await asyncio.gather(
        *(mark(AsyncClient(), user, {"epoch": epoch, "seq": seq}, auth) for seq in (1, 3, 2, 3))
    )
    assert [a.status_code for a in answers] == [200] * 4
    assert (await AsyncClient().get(f"/api/feed/{user}/read", headers=auth)).json()["seq"] == 3


async def test_repeating_mark_all_read_after_the_idempotency_window_adds_no_marker(monkeypatch: Any) -> None:
    """The same position posted again once its marker's idempotency id has expired: the
    latest message is already that marker, so nothing is published."""
    backlog = runtime.current().backlog
    monkeypatch.setattr(backlog, "idempotency_ttl", 1)
    user, client = person(), AsyncClient()
    auth = bearer(sub=user)
    epoch, latest = await feed_with(user, 2)
    assert (await mark(client, user, {"epoch": epoch, "seq": latest}, auth)).json()["seq"] == latest
    assert (await backlog.position(f"user:{user}"))[1] == latest + 1
    await asyncio.sleep(1.5)  # the marker's id `read:E:N` is forgotten
    for _ in range(2):
        again = await mark(client, user, {"epoch": epoch, "seq": latest}, auth)
        assert again.status_code == 200 and again.json()["seq"] == latest
    assert (await backlog.position(f"user:{user}"))[1] == latest + 1  # still the one marker

    # Once something else is on top, the unchanged position is announced again (a client
    # that lost the marker learns it), once.
    await anotify(user, "later", "")
    await asyncio.sleep(1.5)
    for _ in range(2):
        assert (await mark(client, user, {"epoch": epoch, "seq": latest}, auth)).json()["seq"] == latest
    got = await backlog.read(f"user:{user}")
    assert got.latest == latest + 3
    assert json.loads(got.frames[-1])["data"] == {"read": {"epoch": epoch, "seq": latest}}


async def test_a_mark_in_a_stale_epoch_does_not_walk_the_backlog(monkeypatch: Any) -> None:
    from feed import api

    walks: list[tuple[str, int]] = []
    real = api.last_readable

    async def counted(backlog: Any, stream: str, upto: int) -> tuple[str, int]:
        walks.append((stream, upto))
        return await real(backlog, stream, upto)

    monkeypatch.setattr(api, "last_readable", counted)
    user, client = person(), AsyncClient()
    auth = bearer(sub=user)
    epoch, latest = await feed_with(user, 3)
    assert (await mark(client, user, {"epoch": epoch, "seq": 2}, auth)).json() == {"stream": f"user:{user}", "epoch": epoch, "seq": 2}
    assert walks == [(f"user:{user}", 2)]
    stale = await mark(client, user, {"epoch": "lost-epoch", "seq": 10**9}, auth)
    assert stale.status_code == 200 and stale.json() == {"stream": f"user:{user}", "epoch": epoch, "seq": 2}
    assert walks == [(f"user:{user}", 2)]  # no walk for it
    assert (await runtime.current().backlog.position(f"user:{user}"))[1] == latest + 1  # and no marker
