"""The deployment files parse, name only what exists, and demand the secrets, without a
container engine (tests/deploy/test_compose.py runs them for real)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy import topology

BASE = Path(__file__).resolve().parent.parent


def test_compose_parses_and_builds_from_files_that_exist() -> None:
    compose = yaml.safe_load((BASE / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"redis", "web1", "web2", "archiver", "proxy"} <= set(services)
    assert "--appendonly" in services["redis"]["command"] and "healthcheck" in services["redis"]
    for name, service in services.items():
        # A one-shot service (cluster-init) runs and exits: nothing to watch.
        assert "healthcheck" in service or service.get("restart") == "no", name
        assert ("ports" in service) == (name == "proxy"), f"{name}: only the proxy is published"
        if "build" in service:
            build = service["build"]
            assert (BASE / (build["context"] if isinstance(build, dict) else build) / "Dockerfile").exists(), name
    assert (BASE / "deploy/proxy/nginx.conf").exists()
    for name in ("web1", "web2", "archiver"):
        service = services[name]
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert service["environment"]["REDIS_URL"].startswith("${REDIS_URL:-redis://redis:")
    for name in ("web1", "web2"):
        assert services[name]["environment"]["RT_ARCHIVER"] == "0"
    assert services["archiver"]["command"][-1] == "run_archiver"
    assert (BASE / "realtime/management/commands").is_dir()


def test_compose_requires_both_secrets_instead_of_a_published_default() -> None:
    text = (BASE / "docker-compose.yml").read_text()
    compose = yaml.safe_load(text)
    for name in ("RT_TOKEN_SECRET", "DJANGO_SECRET_KEY"):
        for service in ("web1", "web2", "archiver"):
            value = compose["services"][service]["environment"][name]
            assert re.fullmatch(r"\$\{%s:\?[^}]+\}" % name, value), (service, name, value)
    assert "change-me" not in text


def test_dockerfile_installs_like_make() -> None:
    dockerfile = (BASE / "Dockerfile").read_text()
    makefile = (BASE / "Makefile").read_text()
    flags = "--require-hashes -r requirements.lock"
    assert flags in dockerfile and flags in makefile
    for src in re.findall(r"^COPY (\S+)", dockerfile, re.M):
        assert src == "." or (BASE / src).exists(), src
    assert 'CMD ["python", "-m", "config.serve"]' in dockerfile


def test_the_ha_profile_adds_a_replica_and_three_sentinels_watching_redis() -> None:
    compose = yaml.safe_load((BASE / "docker-compose.yml").read_text())
    services = compose["services"]
    ha = {name for name, service in services.items() if "ha" in service.get("profiles", [])}
    assert ha == {"redis-replica", "sentinel1", "sentinel2", "sentinel3"}
    assert services["redis-replica"]["command"][1:4] == ["--replicaof", "redis", "6379"]
    for name in ("sentinel1", "sentinel2", "sentinel3"):
        script = services[name]["command"][-1]
        assert "sentinel monitor mymaster redis 6379 2" in script and "--sentinel" in script
    # The app containers find the three Sentinels by name (deploy/topology.py); an explicit
    # REDIS_SENTINELS wins, and WAIT is set apart.
    env = services["web1"]["environment"]
    assert env["RT_HA_SENTINELS"] == "sentinel1:26379,sentinel2:26379,sentinel3:26379"
    assert env["REDIS_SENTINELS"] == "${REDIS_SENTINELS:-}" and "RT_REDIS_WAIT_REPLICAS" in env
    # They are looked for once `redis` is healthy: the Sentinels must not wait for anything.
    assert all("depends_on" not in services[name] for name in ("sentinel1", "sentinel2", "sentinel3"))
    assert services["web1"]["depends_on"] == {"redis": {"condition": "service_healthy"}}
    assert all("profiles" not in services[name] for name in ("redis", "web1", "web2", "archiver", "proxy"))


def test_the_cluster_profile_runs_six_cluster_nodes_formed_once_with_a_replica_each() -> None:
    compose = yaml.safe_load((BASE / "docker-compose.yml").read_text())
    services = compose["services"]
    nodes = [f"redis-node{n}" for n in range(1, 7)]
    in_profile = {name for name, service in services.items() if "cluster" in service.get("profiles", [])}
    assert in_profile == {*nodes, "cluster-init"}
    addresses = set()
    for name in nodes:
        command = services[name]["command"]
        assert command[command.index("--cluster-enabled") + 1] == "yes"
        assert command[command.index("--appendonly") + 1] == "yes"
        assert any(volume.endswith(":/data") for volume in services[name]["volumes"])
        addresses.add(services[name]["networks"]["default"]["ipv4_address"])
    assert len(addresses) == 6
    init = services["cluster-init"]
    assert set(init["depends_on"]) == set(nodes) and init["restart"] == "no"
    script = init["command"][-1]
    assert "--cluster create" in script and "--cluster-replicas 1" in script
    assert all(address.replace("${RT_NET:-172.30.57}", "$$N") + ":6379" in script for address in addresses)
    env = services["web1"]["environment"]
    assert env["RT_CLUSTER_NODES"] == ",".join(f"{name}:6379" for name in nodes)
    assert env["REDIS_CLUSTER_NODES"] == "${REDIS_CLUSTER_NODES:-}"


def test_the_entry_point_puts_the_app_on_the_cluster_it_finds() -> None:
    env = {"RT_CLUSTER_NODES": "localhost:7000,127.0.0.1:7001"}
    assert topology.choose(env) == "Redis Cluster (localhost:7000,127.0.0.1:7001): the cluster profile runs"
    assert env["REDIS_CLUSTER_NODES"] == "localhost:7000,127.0.0.1:7001" and "REDIS_SENTINELS" not in env
    # One node stopped (its name no longer resolves): still the cluster, never the standalone Redis.
    env = {"RT_CLUSTER_NODES": "localhost:7000,redis-node2.invalid:6379"}
    assert topology.choose(env) == "Redis Cluster (localhost:7000): the cluster profile runs"
    env = {"RT_CLUSTER_NODES": "redis-node1.invalid:6379,redis-node2.invalid:6379"}  # no cluster profile
    assert topology.choose(env) == "one Redis (REDIS_URL)" and "REDIS_CLUSTER_NODES" not in env
    env = {"RT_CLUSTER_NODES": "localhost:7000", "REDIS_CLUSTER_NODES": "10.0.0.9:7000"}
    assert topology.choose(env) == "as configured" and env["REDIS_CLUSTER_NODES"] == "10.0.0.9:7000"
    with pytest.raises(SystemExit, match="the ha and the cluster profiles both run"):
        topology.choose({"RT_CLUSTER_NODES": "localhost:7000", "RT_HA_SENTINELS": "localhost:26379"})


def test_the_entry_point_waits_for_the_cluster_and_says_why_it_gives_up(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing listens on the port: the wait names the states it saw, and gives up."""
    from config.embedded_redis import free_port

    with pytest.raises(SystemExit, match=r"was not formed within 1 s \(states: \['ConnectionError'\]\)"):
        topology.wait_for_cluster(f"127.0.0.1:{free_port()}", timeout=1)
    assert "waiting for the Redis Cluster to be formed" in capsys.readouterr().err


def test_the_entry_point_puts_the_app_on_the_sentinels_it_finds() -> None:
    """deploy/topology.py, the image's entry point: the ha profile's Sentinels when every
    name resolves, else one Redis; a REDIS_SENTINELS set by hand wins."""
    env = {"RT_HA_SENTINELS": "localhost:26379,127.0.0.1:26380"}
    assert topology.choose(env) == "Sentinel (localhost:26379,127.0.0.1:26380): the ha profile runs"
    assert env["REDIS_SENTINELS"] == "localhost:26379,127.0.0.1:26380"
    env = {"RT_HA_SENTINELS": "localhost:26379,sentinel2.invalid:26379"}  # no ha profile
    assert topology.choose(env) == "one Redis (REDIS_URL)" and "REDIS_SENTINELS" not in env
    assert topology.choose({}) == "one Redis (REDIS_URL)"
    env = {"RT_HA_SENTINELS": "localhost:26379", "REDIS_SENTINELS": "10.0.0.9:26379"}
    assert topology.choose(env) == "as configured" and env["REDIS_SENTINELS"] == "10.0.0.9:26379"


@pytest.mark.slow
def test_the_entry_point_runs_the_command_with_its_choice() -> None:
    """As the image runs it: `python deploy/topology.py CMD...`, the command exec'd."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_")}
    done = subprocess.run(
        [sys.executable, "deploy/topology.py", sys.executable, "-c", "import os; print(os.environ['REDIS_SENTINELS'])"],
        cwd=BASE, env={**base, "RT_HA_SENTINELS": "localhost:26379"}, capture_output=True, text=True, timeout=30, check=True)
    assert (done.stdout, done.stderr) == ("localhost:26379\n", "[topology] Redis: Sentinel (localhost:26379): the ha profile runs\n")
    assert 'ENTRYPOINT ["python", "deploy/topology.py"]' in (BASE / "Dockerfile").read_text()


def test_the_entry_point_stops_at_once_when_the_nodes_refuse_the_password(
        redis_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong REDIS_PASSWORD is not something waiting mends: said at once, not after 180 s."""
    monkeypatch.setenv("REDIS_PASSWORD", "not-" + redis_server.password)
    started = time.monotonic()
    with pytest.raises(SystemExit, match="refused REDIS_PASSWORD"):
        topology.wait_for_cluster(f"127.0.0.1:{redis_server.port}", timeout=30)
    assert time.monotonic() - started < 10
