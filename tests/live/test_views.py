"""The scoreboard page: a shell that costs no database work for an anonymous viewer."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db


def page_config(html: str) -> dict[str, object]:
    found = re.search(r'<script id="live-config" type="application/json">(.*?)</script>', html, re.S)
    assert found, "the page carries its config as json_script"
    return json.loads(found.group(1))  # type: ignore[no-any-return]


def test_anonymous_view_makes_no_query_and_writes_no_session() -> None:
    client = Client()
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/live/demo/")
    assert response.status_code == 200
    assert [q["sql"] for q in queries.captured_queries] == []
    assert "sessionid" not in response.cookies
    assert page_config(response.content.decode()) == {"stream": "live:demo", "history": 1}
    assert b"/static/live/scoreboard.js" in response.content


def test_the_query_counter_does_see_a_signed_in_viewer() -> None:
    """The check above can fail: the same page for a session user reads the session and user."""
    client = Client()
    client.force_login(get_user_model().objects.create_user("viewer"))
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/live/demo/")
    assert response.status_code == 200
    assert len(queries.captured_queries) > 0
    assert b"viewer" in response.content


@pytest.mark.parametrize("name", ["a", "Cup_final-2026.1", "x" * 64])
def test_any_valid_stream_name_has_a_scoreboard(name: str) -> None:
    response = Client().get(f"/live/{name}/")
    assert response.status_code == 200
    assert page_config(response.content.decode())["stream"] == f"live:{name}"


@pytest.mark.parametrize("path", ["/live/bad%20name/", "/live/room:x/", "/live/" + "x" * 65 + "/", "/live//", "/live/a<b/"])
def test_a_bad_stream_name_is_not_found(path: str) -> None:
    assert Client().get(path).status_code == 404


def test_the_site_navigation_links_to_the_live_demo() -> None:
    html = Client().get("/live/elsewhere/").content.decode()
    assert 'href="/live/demo/"' in html


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_the_page_only_answers_reads(method: str) -> None:
    assert getattr(Client(), method)("/live/demo/").status_code == 405
    assert Client().head("/live/demo/").status_code == 200
