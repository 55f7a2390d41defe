"""The HTTP API in process (Django's AsyncClient) against the real test Redis."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.test import AsyncClient

from realtime import runtime
from tests.tokens import mint


def bearer(**claims: Any) -> dict[str, str]:
    return {"Authorization": "Bearer " + mint(**claims)}


def publisher() -> dict[str, str]:
    """A token with a sender of its own, so per-sender rate buckets never carry over."""
    return bearer(sub="p" + uuid.uuid4().hex[:8], pubs=["*"], subs=["*"])


async def post(client: AsyncClient, stream: str, body: Any, headers: dict[str, str]) -> Any:
    return await client.post(f"/api/streams/{stream}/messages", body, content_type="application/json", headers=headers)


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code and isinstance(error["message"], str) and error["message"]
    return error


async def latest_seq(stream: str) -> int:
    return (await runtime.current().backlog.position(stream))[1]


async def test_publish_then_read_back() -> None:
    client, auth = AsyncClient(), publisher()
    created = await post(client, "room:api", {"data": {"text": "hi"}}, auth)
    assert created.status_code == 201
    body = created.json()
    assert body["stream"] == "room:api" and body["seq"] == 1 and isinstance(body["epoch"], str)
    read = await client.get("/api/streams/room:api/messages")
    page = read.json()
    assert read.status_code == 200
    assert page["epoch"] == body["epoch"] and page["seq"] == 1 and page["recovered"] is True
    [message] = page["messages"]
    assert "type" not in message
    assert message["data"] == {"text": "hi"} and message["seq"] == 1 and message["stream"] == "room:api"
    assert message["sender"]["id"].startswith("p") and isinstance(message["ts"], int)


async def test_repeated_id_answers_200_with_the_first_seq() -> None:
    client, auth = AsyncClient(), publisher()
    first = await post(client, "live:idem", {"data": 1, "id": "same"}, auth)
    again = await post(client, "live:idem", {"data": 2, "id": "same"}, auth)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    other = await post(client, "live:idem", {"data": 3, "id": "same"}, publisher())
    assert other.status_code == 201 and other.json()["seq"] == 2  # ids are per sender
    assert await latest_seq("live:idem") == 2


async def test_read_since_pages_forward_and_refuses_a_lost_position() -> None:
    client, auth = AsyncClient(), publisher()
    for i in range(5):
        await post(client, "room:pages", {"data": i}, auth)
    epoch = (await client.get("/api/streams/room:pages/messages")).json()["epoch"]
    page = (await client.get(f"/api/streams/room:pages/messages?since=2&epoch={epoch}&limit=2")).json()
    assert page["recovered"] is True and page["seq"] == 5
    assert [m["seq"] for m in page["messages"]] == [3, 4]
    stale = (await client.get("/api/streams/room:pages/messages?since=2&epoch=gone&limit=2")).json()
    assert stale["recovered"] is False and stale["messages"] == [] and stale["seq"] == 5
    ahead = (await client.get(f"/api/streams/room:pages/messages?since=9&epoch={epoch}")).json()
    assert ahead["recovered"] is False and ahead["messages"] == []
    no_epoch = (await client.get("/api/streams/room:pages/messages?since=2")).json()
    assert no_epoch["recovered"] is False and no_epoch["messages"] == [] and no_epoch["epoch"] == epoch
    epoch_only = (await client.get("/api/streams/room:pages/messages?epoch=gone&limit=1")).json()
    assert epoch_only["recovered"] is True and [m["seq"] for m in epoch_only["messages"]] == [5]


async def test_read_without_since_gives_the_last_kept_and_caps_the_limit(settings: Any) -> None:
    settings.RT_HTTP_LIMIT_CAP = 3
    client, auth = AsyncClient(), publisher()
    for i in range(6):
        await post(client, "live:tail", {"data": i}, auth)
    last_two = (await client.get("/api/streams/live:tail/messages?limit=2")).json()
    assert [m["data"] for m in last_two["messages"]] == [4, 5]
    capped = (await client.get("/api/streams/live:tail/messages?limit=500")).json()
    assert [m["seq"] for m in capped["messages"]] == [4, 5, 6]


async def test_read_of_an_untouched_stream_starts_its_epoch() -> None:
    page = (await AsyncClient().get("/api/streams/room:fresh/messages")).json()
    assert page["seq"] == 0 and page["messages"] == [] and page["epoch"]
    assert (await runtime.current().backlog.position("room:fresh"))[0] == page["epoch"]


@pytest.mark.django_db(transaction=True)  # a signed-in publish to a room reads its mutes and bans
async def test_credentials_and_rights() -> None:
    client = AsyncClient()
    assert_error(await post(client, "room:r", {"data": 1}, {}), 403, "forbidden")
    assert_error(await post(client, "room:r", {"data": 1}, {"Authorization": "Bearer nonsense"}), 401, "unauthorized")
    assert_error(await post(client, "room:r", {"data": 1}, {"Authorization": "Basic dXNlcg=="}), 401, "unauthorized")
    assert_error(await post(client, "live:r", {"data": 1}, bearer(sub="7")), 403, "forbidden")
    assert_error(await post(client, "user:7", {"data": 1}, bearer(sub="7")), 403, "forbidden")
    assert (await post(client, "room:r", {"data": 1}, bearer(sub="7"))).status_code == 201
    assert_error(await client.get("/api/streams/user:1/messages", headers=bearer(sub="2")), 403, "forbidden")
    assert_error(await client.get("/api/streams/user:1/messages"), 403, "forbidden")
    assert (await client.get("/api/streams/user:1/messages", headers=bearer(sub="1"))).status_code == 200
    assert (await client.get("/api/streams/user:1/messages", headers=bearer(subs=["user:*"]))).status_code == 200
    assert await latest_seq("live:r") == 0 and await latest_seq("user:7") == 0


@pytest.mark.parametrize(
    "path",
    [
        "/api/streams/nope:x/messages",
        "/api/streams/room:/messages",
        "/api/streams/room:a%20b/messages",
        "/api/streams/room:" + "x" * 65 + "/messages",
    ],
)
async def test_bad_stream_names_are_bad_requests(path: str) -> None:
    client = AsyncClient()
    assert_error(await client.get(path), 400, "bad_request")
    assert_error(await client.post(path, {"data": 1}, content_type="application/json", headers=publisher()), 400, "bad_request")


@pytest.mark.parametrize(
    "body",
    ['{"id": "x"}', "[1, 2]", "not json", '{"data": 1, "id": ""}', '{"data": 1, "id": "%s"}' % ("x" * 65)],
)
async def test_bad_bodies_are_bad_requests(body: str) -> None:
    response = await post(AsyncClient(), "room:bodies", body, publisher())
    assert_error(response, 400, "bad_request")
    assert await latest_seq("room:bodies") == 0


@pytest.mark.parametrize("query", ["since=-1&epoch=e", "limit=0", "since=x&epoch=e", "limit=many"])
async def test_bad_queries_are_bad_requests(query: str) -> None:
    assert_error(await AsyncClient().get(f"/api/streams/room:q/messages?{query}"), 400, "bad_request")


async def test_body_over_the_limit_is_413(settings: Any) -> None:
    big = {"data": "x" * (settings.RT_MAX_FRAME + 10)}
    assert_error(await post(AsyncClient(), "room:big", big, publisher()), 413, "too_large")
    assert await latest_seq("room:big") == 0


async def test_publish_rate_limit_is_per_sender(settings: Any) -> None:
    # publisher() holds a `pubs` grant for every stream: it publishes at the backend rate.
    settings.RT_BACKEND_PUBLISH_RATE, settings.RT_BACKEND_PUBLISH_BURST = 0.01, 2
    client, auth = AsyncClient(), publisher()
    assert [(await post(client, "room:rl", {"data": i}, auth)).status_code for i in range(2)] == [201, 201]
    limited = await post(client, "room:rl", {"data": 3}, auth)
    error = assert_error(limited, 429, "rate_limited")
    assert error["retry_after"] > 0 and int(limited["Retry-After"]) >= 1
    assert (await post(client, "room:rl", {"data": 4}, publisher())).status_code == 201
    assert await latest_seq("room:rl") == 3


async def test_unknown_paths_and_methods_answer_in_the_error_shape() -> None:
    client = AsyncClient()
    for path in ["/api/nothing", "/api/nothing/", "/api/streams/room:a", "/api/streams/room:a/messages/"]:
        assert_error(await client.get(path), 404, "not_found")
    wrong = await client.delete("/api/streams/room:a/messages")
    assert_error(wrong, 405, "bad_request")
    assert set(wrong["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}


async def test_openapi_document_and_docs_are_served() -> None:
    client = AsyncClient()
    doc = (await client.get("/api/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    operations = doc["paths"]["/api/streams/{stream}/messages"]
    assert set(operations) == {"get", "post"}
    assert "requestBody" in operations["post"] and "429" in operations["post"]["responses"]
    assert (await client.get("/api/docs")).status_code == 200


async def test_bearer_requests_are_answered_to_any_origin() -> None:
    headers = {**publisher(), "Origin": "https://embedder.example"}
    response = await AsyncClient().get("/api/streams/room:cors/messages", headers=headers)
    assert response.status_code == 200 and response["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response
    preflight = await AsyncClient().options(
        "/api/streams/room:cors/messages",
        headers={
            "Origin": "https://embedder.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight["Access-Control-Allow-Origin"] == "*"
    assert "authorization" in preflight["Access-Control-Allow-Headers"].lower()


@pytest.fixture
def member(transactional_db: None) -> Any:
    from django.contrib.auth.models import User

    return User.objects.create_user("member" + uuid.uuid4().hex[:6], password="pw")


async def test_session_post_needs_the_csrf_token(member: Any) -> None:
    client = AsyncClient(enforce_csrf_checks=True)
    await client.aforce_login(member)
    assert_error(await post(client, "room:csrf", {"data": 1}, {}), 403, "forbidden")
    assert await latest_seq("room:csrf") == 0
    from django.http import HttpRequest
    from django.middleware.csrf import get_token

    page_request = HttpRequest()  # what a page of the site would have rendered
    token = get_token(page_request)
    client.cookies["csrftoken"] = page_request.META["CSRF_COOKIE"]
    ok = await post(client, "room:csrf", {"data": 1}, {"X-CSRFToken": token})
    assert ok.status_code == 201 and ok.json()["seq"] == 1
    page = (await client.get("/api/streams/room:csrf/messages")).json()
    assert page["messages"][0]["sender"] == {"id": str(member.pk), "name": member.username}


async def test_session_rights_staff_and_foreign_origin(member: Any) -> None:
    client = AsyncClient()
    await client.aforce_login(member)
    assert_error(await post(client, "live:staff", {"data": 1}, {}), 403, "forbidden")
    own = f"/api/streams/user:{member.pk}/messages"
    assert (await client.get(own)).status_code == 200
    assert (await client.get(own, headers={"Origin": "http://testserver"})).status_code == 200
    # The same host name on another port is another site: its cookie is not a credential.
    assert_error(await client.get(own, headers={"Origin": "http://testserver:8001"}), 403, "forbidden")
    assert_error(await client.get(own, headers={"Origin": "https://evil.example"}), 403, "forbidden")
    member.is_staff = True
    await member.asave()
    assert (await post(client, "live:staff", {"data": 1}, {})).status_code == 201
