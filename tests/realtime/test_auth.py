"""Tokens and the rights table of docs/protocol.md ("Streams", "Tokens"), without a database."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from django.conf import settings

from realtime.auth import ANONYMOUS, Principal, Via, can_publish, can_subscribe, origin_allowed, verify_token
from realtime.errors import Unauthorized
from realtime.names import parse_stream
from tests.tokens import mint


def test_a_good_token_gives_its_claims() -> None:
    who = verify_token(mint(sub="42", name="alice", subs=["live:*"], pubs=["room:a"]))
    assert (who.via, who.user_id, who.name, who.subs, who.pubs) == (Via.TOKEN, "42", "alice", ("live:*",), ("room:a",))
    assert who.is_staff is False and who.sender.public == {"id": "42", "name": "alice"}


def test_a_token_principal_carries_its_exp() -> None:
    exp = int(time.time()) + 120
    token = jwt.encode({"exp": exp, "sub": "3"}, settings.RT_TOKEN_SECRET, algorithm="HS256")
    assert verify_token(token).expires_at == float(exp)
    assert ANONYMOUS.expires_at is None  # sessions and anonymous connections do not expire


def test_an_integer_sub_is_refused() -> None:
    """docs/protocol.md: `sub` is a user id as a string (PyJWT enforces it, as RFC 7519 does)."""
    with pytest.raises(Unauthorized):
        verify_token(jwt.encode({"exp": int(time.time()) + 60, "sub": 7}, settings.RT_TOKEN_SECRET))


def unsigned(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, key=None, algorithm="none")


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(mint(ttl=-10, sub="1"), id="expired"),
        pytest.param(mint(secret="another-secret-of-enough-length-32b", sub="1"), id="wrong-secret"),
        pytest.param(unsigned({"exp": int(time.time()) + 60, "sub": "1"}), id="alg-none"),
        pytest.param("", id="empty"),
        pytest.param("not.a.jwt", id="malformed"),
        pytest.param(mint(sub=["1"]), id="sub-list"),
        pytest.param(mint(sub=""), id="sub-empty"),
        pytest.param(mint(sub=True), id="sub-bool"),
        pytest.param(mint(name=5), id="name-int"),
        pytest.param(mint(subs="live:*"), id="subs-string"),
        pytest.param(mint(pubs=["room:*", 3]), id="pubs-with-int"),
    ],
)
def test_bad_tokens_are_unauthorized(token: str) -> None:
    with pytest.raises(Unauthorized) as refused:
        verify_token(token)
    assert refused.value.code == "unauthorized" and refused.value.status == 401


def test_a_token_without_exp_is_refused() -> None:
    token = jwt.encode({"sub": "1"}, settings.RT_TOKEN_SECRET, algorithm="HS256")
    with pytest.raises(Unauthorized):
        verify_token(token)


def test_a_token_signed_with_another_hmac_algorithm_is_refused() -> None:
    token = jwt.encode({"exp": int(time.time()) + 60}, settings.RT_TOKEN_SECRET, algorithm="HS512")
    with pytest.raises(Unauthorized):
        verify_token(token)


def test_sender_of_a_token_is_sub_else_jti_else_the_token() -> None:
    assert verify_token(mint(sub="5", jti="j")).sender_key == "u:5"
    assert verify_token(mint(jti="j1")).sender_key == "j:j1"
    bare = mint(pubs=["room:*"])
    assert verify_token(bare).sender_key == "t:" + bare
    assert verify_token(bare).sender.public is None  # no sub: published as nobody in particular


SIGNED_IN = Principal(Via.SESSION, user_id="1", name="one", sender_key="u:1")
STAFF = Principal(Via.SESSION, user_id="9", name="boss", is_staff=True, sender_key="u:9")
TOKEN_1 = Principal(Via.TOKEN, user_id="1", sender_key="u:1")
GRANTS = Principal(Via.TOKEN, subs=("user:*",), pubs=("live:scores", "user:2"), sender_key="j:g")

# (who, stream, may subscribe, may publish): the rights table row by row.
TABLE = [
    (ANONYMOUS, "room:a", True, False),
    (SIGNED_IN, "room:a", True, True),
    (TOKEN_1, "room:a", True, True),
    (ANONYMOUS, "live:a", True, False),
    (SIGNED_IN, "live:a", True, False),
    (TOKEN_1, "live:a", True, False),
    (STAFF, "live:a", True, True),
    (GRANTS, "live:scores", True, True),
    (GRANTS, "live:other", True, False),
    (ANONYMOUS, "user:1", False, False),
    (SIGNED_IN, "user:1", True, False),
    (SIGNED_IN, "user:2", False, False),
    (TOKEN_1, "user:1", True, False),
    (TOKEN_1, "user:2", False, False),
    (STAFF, "user:1", False, True),
    (GRANTS, "user:1", True, False),
    (GRANTS, "user:2", True, True),
]


@pytest.mark.parametrize(("who", "stream", "subscribe", "publish"), TABLE)
def test_rights_table(who: Principal, stream: str, subscribe: bool, publish: bool) -> None:
    name = parse_stream(stream)
    assert (can_subscribe(who, name), can_publish(who, name)) == (subscribe, publish)


def test_star_matches_any_run_and_nothing_else_is_special() -> None:
    who = Principal(Via.TOKEN, subs=("user:1*",), pubs=("room:a.b",), sender_key="j:x")
    assert can_subscribe(who, parse_stream("user:123")) and not can_subscribe(who, parse_stream("user:2"))
    assert can_publish(who, parse_stream("room:a.b")) and not can_publish(who, parse_stream("room:aXb"))


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        ("http://127.0.0.1:8000", "127.0.0.1:8000", True),
        ("https://localhost", "localhost", True),  # a proxy ended TLS: the scheme is not compared
        ("http://127.0.0.1:8001", "127.0.0.1:8000", False),  # same host, another app's port
        ("http://evil.example", "127.0.0.1:8000", False),
        ("http://evil.example", "evil.example", False),  # same origin, but not one of ALLOWED_HOSTS
        ("null", "127.0.0.1:8000", False),
        ("", "127.0.0.1:8000", False),
        ("http://127.0.0.1:8000", "", False),
        ("https://app.trusted.example", "127.0.0.1:8000", True),
        ("http://app.trusted.example", "127.0.0.1:8000", False),  # trusted for https only
        ("https://trusted.example.evil", "127.0.0.1:8000", False),
    ],
)
def test_a_session_counts_only_from_the_site_itself_or_a_trusted_origin(
    settings: Any, origin: str, host: str, allowed: bool
) -> None:
    settings.CSRF_TRUSTED_ORIGINS = ["https://*.trusted.example"]
    assert origin_allowed(origin, host) is allowed
