"""Sign-in and sign-up against real servers: django-axes locks a username out from an
address after RT_LOGIN_FAILURE_LIMIT wrong passwords, even for the right one, until the
cool-off passes; sign-up attempts per address are limited across the whole cluster."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import BASE_DIR

pytestmark = pytest.mark.slow
PASSWORD = "correct horse battery staple"
COOLOFF = 3.0


def make_user(server_env: dict[str, str], username: str) -> None:
    code = (
        "from django.contrib.auth import get_user_model\n"
        f"get_user_model().objects.create_user({username!r}, password={PASSWORD!r})\n"
    )
    subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=BASE_DIR, env=server_env, check=True)


def form_post(http: httpx.Client, path: str, fields: dict[str, str]) -> httpx.Response:
    """GET the page for its CSRF token, then POST the form as a browser would."""
    page = http.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert found, page.text
    return http.post(path, data={"csrfmiddlewaretoken": found[1], **fields})


def sign_in(http: httpx.Client, username: str, password: str) -> httpx.Response:
    http.cookies.pop("sessionid", None)
    return form_post(http, "/accounts/login/", {"username": username, "password": password})


def signed_in(reply: httpx.Response) -> bool:
    return reply.status_code == 302 and reply.headers["location"] == "/rooms/" and "sessionid" in reply.cookies


@pytest.mark.parametrize("kind", ["uvicorn", "daphne"])
def test_the_sixth_attempt_is_refused_even_with_the_right_password_until_the_cool_off(
    kind: str, start_server: Any, server_env: dict[str, str], rt_settings: str
) -> None:
    victim, neighbour = f"{rt_settings}-victim", f"{rt_settings}-neighbour"
    make_user(server_env, victim)
    make_user(server_env, neighbour)
    server = start_server(kind, RT_LOGIN_FAILURE_LIMIT="5", RT_LOGIN_COOLOFF=str(COOLOFF))
    with httpx.Client(base_url=server.http, timeout=15) as http:
        for _ in range(4):
            wrong = sign_in(http, victim, "wrong password")
            assert wrong.status_code == 200 and "didn" in wrong.text  # the form again, with its error
        fifth = sign_in(http, victim, "wrong password")
        assert fifth.status_code == 429
        sixth = sign_in(http, victim, PASSWORD)
        assert sixth.status_code == 429 and not signed_in(sixth)
        assert "Sign-in locked" in sixth.text and int(sixth.headers["Retry-After"]) >= 1
        assert signed_in(sign_in(http, neighbour, PASSWORD))  # the lock is for that username from this address
        time.sleep(COOLOFF + 0.5)
        assert signed_in(sign_in(http, victim, PASSWORD))


def test_a_success_clears_the_count(start_server: Any, server_env: dict[str, str], rt_settings: str) -> None:
    username = f"{rt_settings}-forgetful"
    make_user(server_env, username)
    server = start_server("uvicorn", RT_LOGIN_FAILURE_LIMIT="3")
    with httpx.Client(base_url=server.http, timeout=15) as http:
        for _ in range(2):
            assert sign_in(http, username, "wrong password").status_code == 200
        assert signed_in(sign_in(http, username, PASSWORD))
        for _ in range(2):
            assert sign_in(http, username, "wrong password").status_code == 200
        assert signed_in(sign_in(http, username, PASSWORD))


def sign_up(http: httpx.Client, username: str) -> httpx.Response:
    http.cookies.pop("sessionid", None)
    fields = {"username": username, "password1": PASSWORD, "password2": PASSWORD}
    return form_post(http, "/accounts/signup/", fields)


def test_a_sign_up_flood_gets_429_on_every_process_of_the_cluster(start_server: Any) -> None:
    limits = {"RT_SIGNUP_LIMIT": "3", "RT_SIGNUP_WINDOW": "600"}
    first, second = start_server("uvicorn", **limits), start_server("daphne", **limits)
    with httpx.Client(base_url=first.http, timeout=15) as a, httpx.Client(base_url=second.http, timeout=15) as b:
        assert signed_in(sign_up(a, "flood-" + uuid.uuid4().hex[:8]))
        assert sign_up(a, "bad name!").status_code == 200  # a refused form counts as an attempt too
        assert signed_in(sign_up(b, "flood-" + uuid.uuid4().hex[:8]))
        for http in (b, a):
            flooded = sign_up(http, "flood-" + uuid.uuid4().hex[:8])
            assert flooded.status_code == 429, flooded.text
            assert "Too many sign-ups" in flooded.text
            assert 1 <= int(flooded.headers["Retry-After"]) <= 600
        assert a.get("/accounts/signup/").status_code == 200  # the page itself still shows
