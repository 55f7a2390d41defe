"""Who may read /metrics: RT_METRICS_ALLOW addresses (loopback by default) and holders of
RT_METRICS_TOKEN; everyone else gets 403 in the API's error shape."""

from __future__ import annotations

import ipaddress
import os
import secrets
import subprocess
import sys
from typing import Any

import httpx
import pytest
from django.test import Client, override_settings

from tests.conftest import BASE_DIR

TOKEN = secrets.token_urlsafe(32)


def scrape(remote_addr: str, **headers: str) -> Any:
    return Client(REMOTE_ADDR=remote_addr, headers=headers).get("/metrics")


def assert_refused(reply: Any) -> None:
    assert reply.status_code == 403
    assert reply.json()["error"]["code"] == "forbidden"
    assert b"rt_connections" not in reply.content


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_loopback_is_served_by_default(address: str) -> None:
    reply = scrape(address)
    assert reply.status_code == 200 and b"rt_connections" in reply.content


@pytest.mark.parametrize("address", ["203.0.113.9", "10.0.0.5", "::ffff:10.0.0.5", "2001:db8::1", "not-an-ip"])
def test_other_addresses_are_refused_by_default(address: str) -> None:
    assert_refused(scrape(address))


def test_a_configured_network_is_served_and_loopback_then_is_not() -> None:
    with override_settings(RT_METRICS_ALLOW=[ipaddress.ip_network("10.1.0.0/16")]):
        assert scrape("10.1.2.3").status_code == 200
        assert_refused(scrape("10.2.0.1"))
        assert_refused(scrape("127.0.0.1"))


def test_the_bearer_token_opens_it_from_anywhere_and_a_wrong_one_does_not() -> None:
    with override_settings(RT_METRICS_TOKEN=TOKEN):
        assert scrape("203.0.113.9", Authorization=f"Bearer {TOKEN}").status_code == 200
        assert_refused(scrape("203.0.113.9", Authorization=f"Bearer {TOKEN}x"))
        assert_refused(scrape("203.0.113.9", Authorization=TOKEN))
        assert_refused(scrape("203.0.113.9"))
    assert_refused(scrape("203.0.113.9", Authorization="Bearer "))  # no token configured: no token works


def settings_error(**env: str) -> str:
    full = {k: v for k, v in os.environ.items() if not k.startswith("RT_METRICS")}
    full.update(DJANGO_SETTINGS_MODULE="config.settings", **env)
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], cwd=BASE_DIR, env=full, capture_output=True, text=True
    )
    assert done.returncode != 0
    return done.stderr


@pytest.mark.slow
def test_bad_settings_are_refused_with_the_variable_named() -> None:
    assert "RT_METRICS_ALLOW='10.0.0.0/33'" in settings_error(RT_METRICS_ALLOW="10.0.0.0/33")
    assert "RT_METRICS_TOKEN is shorter than 32 bytes" in settings_error(RT_METRICS_TOKEN="prometheus")


@pytest.mark.slow
def test_a_real_server_applies_both(start_server: Any) -> None:
    open_to_loopback = start_server("uvicorn")
    assert httpx.get(open_to_loopback.http + "/metrics").status_code == 200
    closed = start_server("daphne", RT_METRICS_ALLOW="192.0.2.0/24", RT_METRICS_TOKEN=TOKEN)
    refused = httpx.get(closed.http + "/metrics")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    allowed = httpx.get(closed.http + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert allowed.status_code == 200 and "rt_connections" in allowed.text
