"""Redis topology settings: a malformed list or an unsupported topology stops the settings
with a message that says what to use, instead of falling back to a local Redis."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_settings_secrets import load_settings

pytestmark = pytest.mark.slow  # each case imports the settings in a process of its own


def test_redis_cluster_nodes_is_refused_with_what_to_use_instead(tmp_path: Path) -> None:
    done = load_settings(tmp_path, REDIS_CLUSTER_NODES="127.0.0.1:7000,127.0.0.1:7001")
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr and "REDIS_CLUSTER_NODES" in done.stderr
    assert "REDIS_SENTINELS" in done.stderr


def test_a_sentinel_list_that_is_not_host_port_is_refused(tmp_path: Path) -> None:
    done = load_settings(tmp_path, REDIS_SENTINELS="127.0.0.1:26379,sentinel-two")
    assert done.returncode != 0
    assert "REDIS_SENTINELS=" in done.stderr and "expected host:port" in done.stderr


def test_sentinel_hosts_are_read_as_host_port_pairs(tmp_path: Path) -> None:
    done = load_settings(tmp_path, show="settings.REDIS_SENTINELS", REDIS_SENTINELS=" 10.0.0.1:26379, [::1]:26380 ")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[('10.0.0.1', 26379), ('::1', 26380)]"
