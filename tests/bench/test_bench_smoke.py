"""The benchmark harness runs end to end with tiny numbers and writes its report, and
refuses an unknown server name or a machine without Node before it starts anything.

Only completion and the shape of results.json are checked, never timings: this machine's
speed is not a test result.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(90),
]


def test_smoke_run_writes_results(tmp_path: Path) -> None:
    # The load client is Node `ws`: a machine without Node must fail here, not skip.
    assert shutil.which("node") and shutil.which("npm"), "the benchmark's load client needs Node and npm"
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=85,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert {"profile", "meta", "servers", "sync_publish", "table_md"} <= results.keys()
    assert results["profile"] == "smoke"
    assert {"nproc", "cpu_model", "pinning"} <= results["meta"].keys()
    assert set(results["servers"]) == {"uvicorn", "uvicorn-2w", "daphne", "tutorial", "raw"}
    for name, server in results["servers"].items():
        assert "error" not in server, (name, server.get("error"))
        assert {"command", "idle", "fanout"} <= server.keys()
        fanout = server["fanout"][0]
        assert {"subs", "max_rate", "max_deliveries_per_s", "p50_ms", "p99_ms", "valid", "client_bound", "steps"} <= fanout.keys()
        assert fanout["valid"], (name, fanout)
        if name == "uvicorn-2w":  # WORKERS=2: fan-out only
            assert server["idle"] == [] and "--workers" in server["command"]
            continue
        assert {"conns", "opened", "still_open", "conns_per_s", "kib_per_conn"} <= server["idle"][0].keys()
        # From two loopback source addresses (as past 20,000 connections): all held.
        assert server["idle"][0]["opened"] == server["idle"][0]["still_open"] == 20, (name, server["idle"][0])
    for name in ("uvicorn", "daphne"):
        assert {"replay", "http"} <= results["servers"][name].keys()
    assert {"messages_per_s", "valid", "batched_messages_per_s", "batched_valid"} <= results["sync_publish"].keys()
    assert results["sync_publish"]["valid"] and results["sync_publish"]["batched_valid"]
    assert (tmp_path / "results.md").read_text().startswith("# Benchmark results")
    assert (tmp_path / "fanout.png").stat().st_size > 0


def test_idle_counts_that_are_not_numbers_are_refused_before_anything_starts(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--idle", "50k", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 2 and "--idle: whole numbers" in done.stderr, done.stderr
    assert not any(tmp_path.iterdir())


def test_an_unknown_server_name_is_refused_before_anything_starts(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--servers", "uvicorn,nginx", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 2
    assert "--servers: unknown 'nginx'" in done.stderr
    assert "Traceback" not in done.stderr
    assert "npm" not in done.stdout and not any(tmp_path.iterdir())


def test_a_missing_node_is_reported_by_name(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--servers", "raw", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=30, env={"PATH": str(tmp_path)},
    )
    assert done.returncode == 1
    assert "needs Node and npm; not found on PATH: node, npm" in done.stderr
    assert "Traceback" not in done.stderr


def test_cluster_scale_smoke_run_counts_every_delivery(tmp_path: Path) -> None:
    """bench/cluster_scale.py on a one-shard cluster, tiny: publishes are acknowledged,
    each reaches its subscribers with no hole or repeat, and the shard's CPU is read."""
    out = tmp_path / "cluster.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.cluster_scale", "--seconds", "0.5", "--streams", "3", "--subs", "1",
         "--shards", "1", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=85,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (result,) = json.loads(out.read_text())["results"]
    assert result["shards"] == 1
    publish, fan_out = result["publish"], result["fan-out"]
    assert publish["publishes_per_s"] > 0 and publish["deliveries_per_s"] == 0
    # 1 subscriber per stream on each of the 2 servers: 2 deliveries per publish.
    assert fan_out["published"] > 0 and fan_out["delivered"] == 2 * fan_out["published"]
    assert (fan_out["holes"], fan_out["repeats"]) == (0, 0)
    (shard,) = fan_out["shards"]
    assert shard["publishes"] > 0 and shard["cpu_s"] > 0
    assert "| 1 | fan-out |" in done.stdout
