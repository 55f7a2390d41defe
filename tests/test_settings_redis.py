"""Redis topology settings: a malformed list or an unsupported topology stops the settings
with a message that says what to use, instead of falling back to a local Redis."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_settings_secrets import load_settings

pytestmark = pytest.mark.slow  # each case imports the settings in a process of its own


def test_cluster_nodes_switch_the_layer_and_the_bucket_count(tmp_path: Path) -> None:
    show = "settings.REDIS_CLUSTER_NODES, settings.RT_BUCKETS, settings.CHANNEL_LAYERS['default']['BACKEND']"
    done = load_settings(tmp_path, show=show, REDIS_CLUSTER_NODES=" 10.0.0.1:7000,10.0.0.2:7001 ")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "[('10.0.0.1', 7000), ('10.0.0.2', 7001)] 1024 realtime.cluster_layer.ShardedChannelLayer"
    )


def test_one_redis_keeps_sixteen_buckets_and_channels_redis(tmp_path: Path) -> None:
    done = load_settings(tmp_path, show="settings.RT_BUCKETS, settings.CHANNEL_LAYERS['default']['BACKEND']")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "16 channels_redis.pubsub.RedisPubSubChannelLayer"


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"REDIS_CLUSTER_NODES": "10.0.0.1:7000,node-two"}, "expected host:port"),
        ({"REDIS_CLUSTER_NODES": "10.0.0.1:7000", "REDIS_SENTINELS": "10.0.0.1:26379"}, "REDIS_SENTINELS are both set"),
        ({"REDIS_CLUSTER_NODES": "10.0.0.1:7000", "RT_REDIS_WAIT_REPLICAS": "1"}, "RT_REDIS_WAIT_REPLICAS is not supported"),
    ],
)
def test_a_wrong_cluster_setting_is_refused_with_why(tmp_path: Path, env: dict[str, str], said: str) -> None:
    done = load_settings(tmp_path, **env)
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr and said in done.stderr


def test_a_sentinel_list_that_is_not_host_port_is_refused(tmp_path: Path) -> None:
    done = load_settings(tmp_path, REDIS_SENTINELS="127.0.0.1:26379,sentinel-two")
    assert done.returncode != 0
    assert "REDIS_SENTINELS=" in done.stderr and "expected host:port" in done.stderr


def test_sentinel_hosts_are_read_as_host_port_pairs(tmp_path: Path) -> None:
    done = load_settings(tmp_path, show="settings.REDIS_SENTINELS", REDIS_SENTINELS=" 10.0.0.1:26379, [::1]:26380 ")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[('10.0.0.1', 26379), ('::1', 26380)]"
