"""The served OpenAPI document, checked against the live server by schemathesis: no 5xx,
every answer in the documented status codes, content types and schemas, and data outside
the schema refused.

schemathesis' lazy `pytest.from_fixture` needs pytest internals that pytest 9 removed
(`Function._nodeid`), so the operations are driven here with `as_strategy()` instead.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from schemathesis.generation.modes import GenerationMode

from tests.tokens import mint

EXAMPLES = 30


NO_INPUT = {"GET /api/conversations"}


def _ascending(stream: str) -> bool:
    low, _, high = stream[3:].partition(".")
    return low < high


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_matches_its_openapi_document(start_server: Any, mode: GenerationMode) -> None:
    server = start_server("uvicorn", RT_PUBLISH_RATE="0", RT_BACKEND_PUBLISH_RATE="0")
    schema = schemathesis.openapi.from_url(server.http + "/api/openapi.json")
    token = {"Authorization": "Bearer " + mint(sub="fuzz", subs=["*"], pubs=["*"])}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} == {
        "GET /api/streams/{stream}/messages",
        "POST /api/streams/{stream}/messages",
        "POST /api/messages",
        "GET /api/streams/{stream}/occupancy",
        "GET /api/feed/{user_id}/read",
        "POST /api/feed/{user_id}/read",
        "PUT /api/groups/{name}",
        "GET /api/groups/{name}/members",
        "PUT /api/groups/{name}/members/{user_id}",
        "DELETE /api/groups/{name}/members/{user_id}",
        "PUT /api/streams/{stream}/mutes/{user_id}",
        "DELETE /api/streams/{stream}/mutes/{user_id}",
        "PUT /api/streams/{stream}/bans/{user_id}",
        "DELETE /api/streams/{stream}/bans/{user_id}",
        "GET /api/read/{stream}",
        "POST /api/read/{stream}",
        "GET /api/conversations",
    }
    statuses: set[int] = set()

    for operation in operations:
        if mode is GenerationMode.NEGATIVE and operation.label in NO_INPUT:
            continue  # no parameter and no body: there is nothing to get wrong

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: Any) -> None:
            # `dm:A.B` needs A < B, which the document says but no pattern can: the
            # server's 400 for the other order is tested in tests/e2e/test_conversations.py.
            stream = unquote((case.path_parameters or {}).get("stream", ""))
            assume(not (mode is GenerationMode.POSITIVE and stream.startswith("dm:") and not _ascending(stream)))
            response = case.call_and_validate(headers=token)
            assert response.status_code < 500
            statuses.add(response.status_code)

        try:
            check()
        except Exception as exc:
            raise AssertionError(f"{operation.label}: {exc}") from exc
    # Both ways through were exercised: accepted requests, and refused ones.
    assert statuses & {200, 201} if mode is GenerationMode.POSITIVE else statuses & {400}
