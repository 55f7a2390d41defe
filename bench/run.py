"""`make bench`: fan-out, idle connections, replay and publish throughput of the product
under uvicorn and daphne, beside two baselines measured in the same run; then signed-in
rooms as `make run` serves them (presence, the archiver, metrics scraped): a room filling
up, fan-out in a full room beside a `live:` stream, idle signed-in members, and the
occupancy figure while viewers come and go.

    python -m bench.run            # full
    python -m bench.run --quick    # a few minutes
    python -m bench.run --smoke    # seconds: proves the harness works (tests/bench)
    python -m bench.run --quick --only rooms --servers uvicorn   # some scenarios only

It starts its own Redis (EmbeddedRedis) and each server in turn, pins the server to core
0 and the load generator (bench/load.js, Node + `ws`) and Redis to core 1 with `taskset`,
checks every delivery for loss, duplicates and order while it measures, and writes
bench/results/results.md, results.json and fanout.png. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import jwt
import psutil

from config.embedded_redis import EmbeddedRedis, _die_with_parent, free_port
from config.interrupt import answer_ctrl_c
from config.log_redaction import redact
from config.serve import server_command

BASE_DIR = Path(__file__).resolve().parent.parent
BENCH_DIR = BASE_DIR / "bench"
LOAD_JS = BENCH_DIR / "load.js"
PY = sys.executable
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Where the rate search starts, per server and subscriber count (publishes/s). Only a
# starting point to save steps: the search goes up by `factor` until a step fails, or
# down until one holds, then bisects.
START_RATES = {
    100: {"uvicorn": 600, "uvicorn-2w": 600, "daphne": 200, "tutorial": 20, "raw": 1000},
    1000: {"uvicorn": 40, "uvicorn-2w": 40, "daphne": 10, "tutorial": 2, "raw": 100},
}

#: `uvicorn-2w` is the product with WORKERS=2, fan-out only: two processes on one port,
#: not pinned (they share the machine with the load generator and Redis), CPU and RSS
#: summed over the process tree.
SERVERS = ("uvicorn", "uvicorn-2w", "daphne", "tutorial", "raw")

PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {
        "fanout": [{"subs": 5, "rates": [20]}],
        "slow": [],
        "step_seconds": 0.5,
        "drain": 3.0,
        "idle": [20],
        "idle_sources": 2,
        "idle_hold_ms": 500,
        "replay_messages": 50,
        "replay_repeats": 1,
        "http_seconds": 0.5,
        "sync_seconds": 0.5,
        "sync_max": 50,
        # The room scenarios under uvicorn only: the harness is the same for daphne, and
        # tests/bench runs this profile within a time limit.
        "room_servers": ["uvicorn"],
        "room_idle": [20],
        "room_fill": [20],
        "room_settle_ms": 1500,
        "room_fanout": [{"subs": 5, "rates": [20]}],
        "occupancy": {"viewers": 20, "churn_seconds": 1.5, "settle_seconds": 2.5, "max_settle_seconds": 5.0},
    },
    "quick": {
        "fanout": [
            {"subs": 100, "factor": 1.5, "max_steps": 4},
            {"subs": 1000, "factor": 1.5, "max_steps": 4},
        ],
        "slow": [1000],
        "step_seconds": 1.0,
        "drain": 4.0,
        "half_step": True,
        "idle": [1000],
        "idle_hold_ms": 1000,
        "replay_messages": 1000,
        "replay_repeats": 3,
        "http_seconds": 1.0,
        "sync_seconds": 1.5,
        "sync_max": 1_000_000,
        "room_idle": [1000],
        "room_fill": [1000, 5000],
        "room_settle_ms": 2500,
        "room_fanout": [
            {"subs": 100, "factor": 1.5, "max_steps": 6, "bisect": 1.1},
            {"subs": 1000, "factor": 1.5, "max_steps": 6, "bisect": 1.1},
        ],
        "occupancy": {"viewers": 1000, "churn_seconds": 6.0, "settle_seconds": 5.0, "max_settle_seconds": 45.0},
    },
    "full": {
        "fanout": [
            {"subs": 100, "factor": 1.4, "max_steps": 9},
            {"subs": 1000, "factor": 1.4, "max_steps": 9},
        ],
        "slow": [100, 1000],
        "step_seconds": 3.0,
        "drain": 10.0,
        "half_step": True,
        "idle": [1000, 5000, 10000],
        # One process holding 50,000: the product under uvicorn only (issue targets).
        "idle_big": [50000],
        "idle_hold_ms": 3000,
        "replay_messages": 1000,
        "replay_repeats": 10,
        "http_seconds": 5.0,
        "sync_seconds": 5.0,
        "sync_max": 1_000_000,
        "room_idle": [10000],
        "room_fill": [1000, 5000],
        "room_settle_ms": 3000,
        "room_fanout": [
            {"subs": 100, "factor": 1.4, "max_steps": 10, "bisect": 1.05},
            {"subs": 1000, "factor": 1.4, "max_steps": 10, "bisect": 1.05},
        ],
        "occupancy": {"viewers": 1000, "churn_seconds": 10.0, "settle_seconds": 6.0, "max_settle_seconds": 45.0},
    },
}


# What `--only` selects. The first six run in each server's own process; the room ones
# (product only) in a fresh process of the product with the archiver beside it, as
# `make run` starts them; `rooms` names all four.
SCENARIOS = ("idle", "fanout", "slow", "replay", "http", "sync", "room-idle", "room-fill", "room-fanout", "occupancy")
ROOM_SCENARIOS = ("room-idle", "room-fill", "room-fanout", "occupancy")

# A room member subscribes as the room page does (static/chat/room.js: `history` is
# chat/views.py's HISTORY, and `occupancy` for rooms past the presence cap).
ROOM_SUBSCRIBE = {"history": 50, "occupancy": True}

# Targets the room tables are read against (docs/protocol.md "Presence", "Occupancy").
PRESENCE_FRAMES_TARGET = 20  # presence frames per member while a room fills: under this
ROOM_LIVE_TARGET = 0.9  # room fan-out deliveries/s at least this share of a live: stream's
OCCUPANCY_LAG_S = 2.0  # the occupancy figure may lag the truth this long


def say(text: str) -> None:
    print(f"[bench] {text}", flush=True)


def pin(core: int) -> list[str]:
    """`taskset -c CORE` where it exists and the machine has that core."""
    if shutil.which("taskset") and (os.cpu_count() or 1) > core:
        return ["taskset", "-c", str(core)]
    return []


#: Open files the bench wants (50,000 idle sockets on each side, and some), and the
#: connections one loopback source address opens at most (the ephemeral port range is
#: about 28,000 ports).
FD_WANTED = 1 << 17
PER_SOURCE_ADDRESS = 20_000
#: Files a server or the load client holds besides its sockets.
FD_MARGIN = 500


def raise_fd_limit() -> tuple[int, int]:
    """The soft limit up to the hard one; the hard one up to FD_WANTED where this
    process may (root). The servers and the load client inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < FD_WANTED:
        with contextlib.suppress(ValueError, OSError):  # not allowed: keep the hard limit
            resource.setrlimit(resource.RLIMIT_NOFILE, (FD_WANTED, FD_WANTED))
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def machine_facts() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "node": node,
        "kernel": platform.release(),
        "taskset": bool(shutil.which("taskset")),
        "fd_limit": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
    }


# ---------------------------------------------------------------- processes


def core_busy_seconds(core: int) -> float:
    """Busy time of one CPU core (every process on it), from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            fields = [int(x) for x in line.split()[1:]]
            idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
            return (sum(fields[:8]) - idle) / CLK_TCK
    return 0.0


class Server:
    """One server process pinned to core 0, with RSS and CPU read from /proc."""

    def __init__(
        self, name: str, kind: str, command: list[str], env: dict[str, str], port: int, log_dir: Path,
        log_name: str | None = None, core: int | None = 0,
    ) -> None:
        self.name, self.kind, self.command, self.env, self.port = name, kind, command, env, port
        self.log_path = log_dir / f"{log_name or name}.log"
        self.core = core
        self.process: subprocess.Popen[bytes] | None = None
        self.rss_fresh_kib = 0
        self.samples: list[tuple[float, float, float]] = []
        self._sampling = False

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 40.0) -> None:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            (pin(self.core) if self.core is not None else []) + self.command, env=self.env, cwd=BASE_DIR, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}: {self.log_tail()}")
            if self._ready():
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"{self.name} did not answer within {timeout}s: {self.log_tail()}")
        self.rss_fresh_kib = self.rss_kib()
        self._sampling = True
        threading.Thread(target=self._sample, daemon=True).start()

    def _ready(self) -> bool:
        if self.kind == "worker":  # no port: started is ready
            time.sleep(0.5)
            return True
        if self.kind == "workers" and len(self._pids()) < 3:  # the master and its two workers
            return False
        if self.kind == "raw":
            import socket

            try:
                socket.create_connection((HOST, self.port), timeout=0.3).close()
                return True
            except OSError:
                return False
        try:
            with urllib.request.urlopen(f"http://{HOST}:{self.port}/healthz", timeout=1) as reply:
                return bool(reply.status == 200)
        except Exception:
            return False

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-1500:]
        except OSError:
            return ""

    def _pids(self) -> list[int]:
        """The server and its children (uvicorn's workers with WORKERS=N)."""
        try:
            return [self.pid, *(child.pid for child in psutil.Process(self.pid).children(recursive=True))]
        except psutil.Error:
            return [self.pid]

    def rss_kib(self) -> int:
        total = 0
        for pid in self._pids():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        return total

    def cpu_seconds(self) -> float:
        total = 0.0
        for pid in self._pids():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / CLK_TCK
        return total

    def _sample(self) -> None:
        while self._sampling and self.process is not None and self.process.poll() is None:
            try:
                self.samples.append((time.time(), self.cpu_seconds(), core_busy_seconds(0)))
            except OSError:
                return
            time.sleep(0.1)

    def cpu_pct(self, t0: float, t1: float, field: int = 1) -> float | None:
        """The server's CPU (% of one core) between two wall-clock times; field 2: all of core 0."""
        inside = [s for s in self.samples if t0 - 0.1 <= s[0] <= t1 + 0.1]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return None
        return 100.0 * (inside[-1][field] - inside[0][field]) / (inside[-1][0] - inside[0][0])

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        self._sampling = False
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# The figures of /metrics the room scenarios keep (a scraper reads it as Prometheus would).
SCRAPED = (
    "rt_connections", "rt_subscriptions", "rt_archive_queued", "rt_archive_processing", "rt_archive_dead",
    "rt_archive_oldest_seconds", 'rt_messages_published_total{kind="room"}', "rt_messages_delivered_total",
    "rt_errors_total",
)


def read_metrics(port: int, timeout: float = 5.0) -> dict[str, float]:
    """The SCRAPED figures from a product server's /metrics (rt_errors_total: all codes)."""
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=timeout) as reply:
        text = reply.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("rt_"):
            continue
        name, _, value = line.rpartition(" ")
        if name.startswith("rt_errors_total{"):
            out["rt_errors_total"] = out.get("rt_errors_total", 0.0) + float(value)
        elif name in SCRAPED:
            out[name] = float(value)
    return out


class Scraper:
    """Reads /metrics every `every` seconds in a thread while the room scenarios run."""

    def __init__(self, port: int, every: float = 5.0) -> None:
        self.port, self.every = port, every
        self.samples: list[dict[str, float]] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.samples.append({"t": time.time()} | read_metrics(self.port))
            except Exception:
                self.failures += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def summary(self) -> dict[str, Any]:
        def most(key: str) -> float | None:
            values = [x[key] for x in self.samples if key in x]
            return max(values) if values else None

        last = self.samples[-1] if self.samples else {}
        return {
            "scrapes": len(self.samples),
            "failures": self.failures,
            "archive_queued_max": most("rt_archive_queued"),
            "archive_oldest_s_max": most("rt_archive_oldest_seconds"),
            "last": last,
            "samples": self.samples,
        }


def run_load(config: dict[str, Any], timeout: float, on_event: Any = None) -> dict[str, Any]:
    """Run bench/load.js with `config`; return its `result` event (raise on its `error`)."""
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            pin(1) + ["node", str(LOAD_JS), json.dumps(config)],
            cwd=BENCH_DIR, stdout=subprocess.PIPE, stderr=errors, text=True, preexec_fn=_die_with_parent,
        )
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        result: dict[str, Any] | None = None
        failure = None
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if not line.startswith("{"):
                    continue
                event = json.loads(line)
                if event["event"] == "result":
                    result = event
                elif event["event"] == "error":
                    failure = event["error"]
                elif on_event is not None:
                    on_event(event)
            proc.wait()
        finally:
            timer.cancel()
        if result is None:
            errors.seek(0)
            raise RuntimeError(f"load generator failed ({config['mode']}): {failure or errors.read().decode()[-1500:]}")
        return result


# ---------------------------------------------------------------- scenarios


class Bench:
    def __init__(self, profile: str, servers: list[str], out_dir: Path, only: tuple[str, ...] = SCENARIOS) -> None:
        self.profile_name = profile
        self.p = PROFILES[profile]
        self.server_names = servers
        self.out_dir = out_dir
        self.only = only
        self.work = Path(tempfile.mkdtemp(prefix="rt-bench-"))
        self.secret = secrets.token_urlsafe(32)
        self.token = jwt.encode({"exp": int(time.time()) + 3 * 3600, "sub": "bench", "pubs": ["live:*"]}, self.secret, "HS256")
        self.redis = EmbeddedRedis(self.work / "redis")
        self.results: dict[str, Any] = {"profile": profile, "servers": {}, "only": list(only)}

    def mint(self, sub: str, name: str) -> str:
        """A signed-in user's token, as a site's backend mints them (the bench's secret)."""
        return jwt.encode({"exp": int(time.time()) + 3 * 3600, "sub": sub, "name": name}, self.secret, "HS256")

    def tokens_file(self, kind: str, count: int) -> str:
        """A JSON list of `count` tokens for the load generator (too many for its command
        line): `distinct` users u0, u1, ... or `tabs`, one user's token for every tab."""
        path = self.work / f"tokens-{kind}-{count}.json"
        if not path.exists():
            if kind == "tabs":
                tokens = [self.mint("tabs", "One user, many tabs")]
            else:
                tokens = [self.mint(f"u{i}", f"User {i}") for i in range(count)]
            path.write_text(json.dumps(tokens))
        return str(path)

    def env(self, prefix: str) -> dict[str, str]:
        return dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="config.settings",
            PYTHONUNBUFFERED="1",
            REDIS_URL=self.redis.url,
            RT_DATA_DIR=str(self.work / "data"),
            RT_TOKEN_SECRET=self.secret,
            DJANGO_SECRET_KEY=self.secret + "-django",
            RT_PUBLISH_RATE="0", RT_BACKEND_PUBLISH_RATE="0",
            RT_KEY_PREFIX=prefix,
            RT_CHANNEL_PREFIX=prefix,
            LOG_LEVEL="WARNING",
        )

    def server(self, name: str) -> Server:
        port = free_port()
        env = self.env(f"bench-{name}")
        if name in ("uvicorn", "daphne"):
            return Server(name, "product", server_command(name, HOST, port, env), env, port, self.work)
        if name == "uvicorn-2w":
            env = env | {"WORKERS": "2"}
            return Server(name, "workers", server_command("uvicorn", HOST, port, env), env, port, self.work, core=None)
        if name == "tutorial":
            command = server_command("uvicorn", HOST, port)
            command[command.index("config.asgi:application")] = "bench.baselines.tutorial_asgi:application"
            command[command.index("config.uvicorn_ws:DeadlineWebSocketProtocol")] = "websockets-sansio"  # stock uvicorn
            return Server(name, "tutorial", command, env, port, self.work)
        if name == "raw":
            command = [PY, "-m", "bench.baselines.raw_server", "--port", str(port), "--redis", self.redis.url, "--prefix", "bench-raw"]
            return Server(name, "raw", command, env, port, self.work)
        raise SystemExit(f"unknown server {name!r}: use {', '.join(SERVERS)}")

    def base_config(self, srv: Server, mode: str) -> dict[str, Any]:
        return {
            "mode": mode,
            "proto": {"product": "product", "workers": "product", "tutorial": "tutorial", "raw": "raw"}[srv.kind],
            "url": f"ws://{HOST}:{srv.port}/ws/",
            "token": self.token if srv.kind in ("product", "workers") else None,
            "stream": "live:bench",
            "idPrefix": f"{mode}-{uuid.uuid4().hex[:8]}-",
            "drain": self.p["drain"],
        }

    # -- setup

    def setup(self) -> None:
        say(f"work dir {self.work}; fd limit {raise_fd_limit()}")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=BENCH_DIR, check=True)
        self.redis.start()
        if pin(1) and self.redis.process is not None:
            subprocess.run(["taskset", "-pc", "1", str(self.redis.process.pid)], check=True, capture_output=True)
        say(f"redis {self.redis.public_url}")
        subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=BASE_DIR, env=self.env("bench"), check=True)

    def close(self) -> None:
        self.redis.stop()
        shutil.rmtree(self.work, ignore_errors=True)

    # -- scenarios per server

    def idle(self, srv: Server, conns: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        before = srv.rss_kib()
        seen: dict[str, Any] = {}

        def on_event(event: dict[str, Any]) -> None:
            if event["event"] == "opened":
                time.sleep(1.0)
                seen["rss_open"] = srv.rss_kib()
            elif event["event"] == "progress":
                say(f"{srv.name}: room idle {conns}: {event['subscribed']}/{conns} subscribed after {event['seconds']:.1f} s")

        # Past PER_SOURCE_ADDRESS, connections come from 127.0.0.2 and on as well (the
        # smoke run uses two addresses whatever the count, so that the harness tests it).
        sources = max(self.p.get("idle_sources", 1), -(-conns // PER_SOURCE_ADDRESS))
        config = self.base_config(srv, "idle") | {"conns": conns, "concurrency": 200, "holdMs": self.p["idle_hold_ms"],
                                                  "sources": sources}
        config |= extra or {}
        result = run_load(config, timeout=120 + conns / 50, on_event=on_event)
        opened = result["opened"]
        rss_open = seen.get("rss_open", srv.rss_kib())
        out = {
            "conns": conns,
            "opened": opened,
            "still_open": result["still_open"],
            "failed": result["failed"],
            "first_error": result["first_error"],
            "conns_per_s": result["conns_per_s"],
            "rss_before_kib": before,
            "rss_open_kib": rss_open,
            # Against the fresh process: memory freed by an earlier, smaller run is reused
            # by this one, so "just before" would understate the cost of the larger counts.
            "rss_fresh_kib": srv.rss_fresh_kib,
            "kib_per_conn": (rss_open - srv.rss_fresh_kib) / opened if opened else None,
            "kib_per_conn_vs_before": (rss_open - before) / opened if opened else None,
            "valid": opened == conns and result["still_open"] == conns and srv.alive(),
        }
        if extra:  # signed-in room members: every one subscribed and answered, no error frame
            out |= {"subscribed": result["subscribed"], "all_answered": result["all_answered"], "extras": result["extras"]}
            errors = (result["extras"] or {}).get("errors", 0)
            out["valid"] = out["valid"] and result["subscribed"] == conns and bool(result["all_answered"]) and not errors
        time.sleep(1.0)  # let the server see the closes before the next scenario
        return out

    def fanout(
        self, srv: Server, spec: dict[str, Any], slow: bool, extra: dict[str, Any] | None = None,
        side: Server | None = None, label: str = "",
    ) -> dict[str, Any]:
        subs = spec["subs"]
        config = self.base_config(srv, "fanout") | {
            "subs": subs,
            "slow": slow,
            "stepSeconds": self.p["step_seconds"],
            "halfStep": self.p.get("half_step", False),
        } | (extra or {})
        if "rates" in spec:
            config["rates"] = spec["rates"]
        else:
            start = spec.get("start") or START_RATES.get(subs, {}).get(srv.name, 10)
            config |= {"startRate": start, "factor": spec["factor"], "maxSteps": spec["max_steps"]}
            if "bisect" in spec:
                config["bisectRatio"] = spec["bisect"]

        def on_event(event: dict[str, Any]) -> None:
            if label and event["event"] == "connected":
                say(f"{label}: {event['subscribers']} subscribers in {event['seconds']:.1f} s")
            elif label and event["event"] == "step":
                say(
                    f"{label}: {event['offered_rate']} msg/s -> {num(event['deliveries_per_s'])} deliveries/s, "
                    f"p99 {num(event['p99_ms'], 1)} ms, {'sustained' if event['sustained'] else 'not sustained'}"
                )

        result = run_load(config, timeout=900, on_event=on_event)
        steps = result["steps"]
        for step in steps:
            if side is not None:
                step["archiver_cpu_pct"] = side.cpu_pct(step["t_start"], step["t_end"])
            step["server_cpu_pct"] = srv.cpu_pct(step["t_start"], step["t_end"])
            step["core0_busy_pct"] = srv.cpu_pct(step["t_start"], step["t_end"], field=2)
            # Something else ran on the server's core (this machine is shared): the figure
            # understates the server.
            step["contended"] = bool(
                step["core0_busy_pct"] is not None and step["server_cpu_pct"] is not None
                and step["core0_busy_pct"] - step["server_cpu_pct"] > 15
            )
        summary = summarize_fanout(subs, slow, steps, result.get("slow_closed_code"), srv.alive())
        summary["extras"] = result.get("extras")
        summary["history_frames"] = result.get("history_frames")
        return summary

    def replay(self, srv: Server) -> dict[str, Any]:
        config = self.base_config(srv, "replay") | {
            "stream": f"live:replay-{uuid.uuid4().hex[:8]}",
            "messages": self.p["replay_messages"],
            "repeats": self.p["replay_repeats"],
        }
        return run_load(config, timeout=120)

    def http(self, srv: Server) -> dict[str, Any]:
        config = self.base_config(srv, "http") | {
            "httpUrl": f"http://{HOST}:{srv.port}/api/streams/live:bench/messages",
            "seconds": self.p["http_seconds"],
            "concurrency": 16,
        }
        return run_load(config, timeout=120)

    def sync_publish(self) -> dict[str, Any]:
        command = pin(0) + [PY, "-m", "bench.sync_publish", str(self.p["sync_seconds"]), str(self.p["sync_max"])]
        done = subprocess.run(command, cwd=BASE_DIR, env=self.env("bench-sync"), capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"sync publish failed: {done.stderr[-1500:]}")
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    def run_server(self, name: str) -> dict[str, Any]:
        srv = self.server(name)
        shown = [redact(part) for part in srv.command]  # the Redis URL of a baseline has a password
        out: dict[str, Any] = {"command": shown, "kind": srv.kind, "loadavg_before": os.getloadavg()}
        say(f"{name}: {' '.join(shown)}")
        srv.start()
        try:
            out["idle"] = []
            big = self.p.get("idle_big", []) if name == "uvicorn" else []
            for conns in [*self.p["idle"], *big] if "idle" in self.only and srv.kind != "workers" else []:
                files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
                if conns + FD_MARGIN > files:  # each side needs a file per socket
                    out["idle"].append({"conns": conns, "not_run": (
                        f"the open-files limit is {files:,} (raising the hard limit needs CAP_SYS_RESOURCE): "
                        f"one process cannot hold {conns:,} sockets here")})
                    say(f"{name}: idle {conns}: not run: {out['idle'][-1]['not_run']}")
                    continue
                out["idle"].append(self.idle(srv, conns))
                say(f"{name}: idle {conns}: {fmt_idle(out['idle'][-1])}")
            out["fanout"] = []
            for spec in self.p["fanout"] if "fanout" in self.only else []:
                res = self.fanout(srv, spec, slow=False)
                out["fanout"].append(res)
                say(f"{name}: fan-out {spec['subs']}: {fmt_fanout(res)}")
            for subs in self.p["slow"] if "slow" in self.only and srv.kind != "workers" else []:
                # Its own rate search, from the all-read maximum: a single step at exactly
                # that edge fails about half the time for any server, slow reader or not.
                normal = next((f for f in out["fanout"] if f["subs"] == subs), None)
                spec = next(s for s in self.p["fanout"] if s["subs"] == subs)
                if normal is not None and normal["max_rate"]:
                    spec = spec | {"start": int(normal["max_rate"])}
                res = self.fanout(srv, spec, slow=True)
                out["fanout"].append(res)
                say(f"{name}: fan-out {subs} + 1 slow: {fmt_fanout(res)}")
            if srv.kind == "product" and "replay" in self.only:
                out["replay"] = self.replay(srv)
                say(f"{name}: replay: {out['replay'].get('replay_ms_median')} ms, valid {out['replay'].get('valid')}")
            if srv.kind == "product" and "http" in self.only:
                out["http"] = self.http(srv)
                say(f"{name}: http publish: {out['http']}")
            out["rss_end_kib"] = srv.rss_kib()
            out["loadavg_after"] = os.getloadavg()
            out["alive_at_end"] = srv.alive()
        except Exception as exc:
            out["error"] = f"{type(exc).__name__}: {exc}"
            say(f"{name}: FAILED: {out['error']}\n{srv.log_tail()}")
        finally:
            srv.stop()
        return out

    # -- signed-in rooms, served the way `make run` serves them

    def room_env(self, prefix: str) -> dict[str, str]:
        """`make run`'s environment (config/serve.py: the caller's, plus the settings module
        and REDIS_URL): presence, occupancy, the archive and the log level at their defaults
        or as the caller set them. The bench's own additions stay: its token secret, key
        prefix and data directory, and no publish limits, so that one publisher can offer
        the rates the search needs (a room's members would each publish far less)."""
        env = self.env(prefix)
        if "LOG_LEVEL" in os.environ:
            env["LOG_LEVEL"] = os.environ["LOG_LEVEL"]
        else:
            del env["LOG_LEVEL"]
        return env

    def wait_quiet(self, srv: Server, timeout: float = 60.0) -> float:
        """Until the server's /metrics counts no connection (the last scenario's closes,
        each with its presence leave, are done); seconds waited."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            try:
                if read_metrics(srv.port).get("rt_connections", 0) == 0:
                    break
            except Exception:
                pass
            time.sleep(0.25)
        return time.monotonic() - t0

    def room_config(self, srv: Server, mode: str, stream: str, tokens_file: str) -> dict[str, Any]:
        return self.base_config(srv, mode) | {
            "stream": stream,
            "tokensFile": tokens_file,
            "subscribeExtra": ROOM_SUBSCRIBE,
            "presenceQuery": True,
        }

    def room_idle(self, srv: Server, conns: int) -> dict[str, Any]:
        """Idle connections as the existing scenario holds them, but each a signed-in member
        of one room (subscribed, presence on): RSS per connection against the fresh process."""
        stream = f"room:idle-{uuid.uuid4().hex[:8]}"
        extra = self.room_config(srv, "idle", stream, self.tokens_file("distinct", conns))
        return self.idle(srv, conns, extra) | {"variant": "signed in, one room"}

    def room_fill(self, srv: Server, conns: int, variant: str) -> dict[str, Any]:
        """`conns` signed-in connections join one room: distinct users, or one user's tabs."""
        users = conns if variant == "distinct" else 1
        stream = f"room:fill-{variant}-{conns}-{uuid.uuid4().hex[:8]}"
        config = self.room_config(srv, "fill", stream, self.tokens_file(variant, conns)) | {
            "conns": conns,
            "concurrency": 200,
            "settleMs": self.p["room_settle_ms"],
            "expectUsers": users,
        }
        seen: dict[str, Any] = {}

        def on_event(event: dict[str, Any]) -> None:
            if event["event"] == "progress":
                say(f"{srv.name}: room fill {conns} {variant}: {event['subscribed']}/{conns} subscribed after {event['seconds']:.1f} s")
            elif event["event"] == "filled":
                seen["rss_filled"] = srv.rss_kib()

        res = run_load(config, timeout=300 + conns / 20, on_event=on_event)
        extras = res["extras"] or {}
        check = res.get("check") or {}
        problems = []
        if res["failed"] or res["subscribed"] != conns:
            problems.append(f"{conns - res['subscribed']} not subscribed ({res['first_error']})")
        if not res["all_answered"]:
            problems.append("presence answers missing")
        if extras.get("errors"):
            problems.append(f"{extras['errors']} error frames ({extras.get('first_error')})")
        if res["closed_early"]:
            problems.append(f"{res['closed_early']} closed by the server")
        if check.get("total") != users:
            problems.append(f"presence total {check.get('total', check.get('error'))}, expected {users}")
        if variant == "tabs" and check.get("connections_of_first") != conns:
            problems.append(f"the user's connections {check.get('connections_of_first')}, expected {conns}")
        if res["occupancy_right"] != conns:
            problems.append(
                f"{conns - res['occupancy_right']} members' last occupancy frame wrong (e.g. {res['occupancy_wrong_example']})"
            )
        cpu = srv.cpu_pct(res["t_start"], res["t_subscribed"])
        core0 = srv.cpu_pct(res["t_start"], res["t_subscribed"], field=2)
        frames = extras.get("presence_frames") or {}
        rss = seen.get("rss_filled")
        return res | {
            "variant": variant,
            "users": users,
            "server_cpu_pct": cpu,
            "core0_busy_pct": core0,
            "contended": bool(cpu is not None and core0 is not None and core0 - cpu > 15),
            "rss_filled_kib": rss,
            "kib_per_member_filled": (rss - srv.rss_fresh_kib) / conns if rss and conns else None,
            "presence_frames_mean": frames.get("mean"),
            "presence_frames_max": frames.get("max"),
            "presence_target_met": frames.get("max") is not None and frames["max"] < PRESENCE_FRAMES_TARGET,
            "problems": problems,
            "valid": not problems and srv.alive(),
        }

    def room_fanout(self, srv: Server, archiver: Server, spec: dict[str, Any]) -> dict[str, Any]:
        """The max sustained fan-out to `subs` signed-in members of one room, beside the same
        search on a `live:` stream (anonymous subscribers, the existing scenario) in the same
        process just before it; the room's search starts from the live maximum."""
        subs = spec["subs"]
        tag = uuid.uuid4().hex[:8]
        live = self.fanout(srv, spec, slow=False, extra={"stream": f"live:ref-{subs}-{tag}"}, label=f"{srv.name}: live {subs}")
        say(f"{srv.name}: live fan-out {subs}: {fmt_fanout(live)}")
        self.wait_quiet(srv)
        room_spec = dict(spec)
        if live["max_rate"] and "rates" not in spec:
            room_spec["start"] = int(live["max_rate"])
        extra = self.room_config(srv, "fanout", f"room:fan-{subs}-{tag}", self.tokens_file("distinct", subs))
        room = self.fanout(srv, room_spec, slow=False, extra=extra, side=archiver, label=f"{srv.name}: room {subs}")
        say(f"{srv.name}: room fan-out {subs}: {fmt_fanout(room)}")
        self.wait_quiet(srv)
        ratio = None
        if room["max_deliveries_per_s"] and live["max_deliveries_per_s"]:
            ratio = room["max_deliveries_per_s"] / live["max_deliveries_per_s"]
        best = next((st for st in room["steps"] if st["sustained"] and st["offered_rate"] == room["max_rate"]), None)
        return {
            "subs": subs,
            "live": live,
            "room": room,
            "ratio": ratio,
            "target_met": ratio is not None and ratio >= ROOM_LIVE_TARGET and live["valid"] and room["valid"],
            "judged": bool(live["valid"] and room["valid"] and not live.get("contended") and not room.get("contended")),
            "archiver_cpu_pct": best.get("archiver_cpu_pct") if best else None,
        }

    def occupancy(self, srv: Server) -> dict[str, Any]:
        """The `occupancy` figure one subscriber sees while viewers come and go, against the
        number of connections (and users) really open (load.js `occupancy`)."""
        o = self.p["occupancy"]
        viewers = o["viewers"]
        users = max(1, viewers * 3 // 4)  # a quarter of the viewers have a second tab
        config = self.room_config(srv, "occupancy", f"room:occ-{uuid.uuid4().hex[:8]}", self.tokens_file("distinct", users)) | {
            "viewers": viewers,
            "users": users,
            "watcherToken": self.mint("watcher", "Watcher"),
            "churnSeconds": o["churn_seconds"],
            "settleSeconds": o["settle_seconds"],
            "maxSettleSeconds": o["max_settle_seconds"],
            "lagSeconds": OCCUPANCY_LAG_S,
            "churnPerSecond": 0.1,
            "concurrency": 200,
        }

        def on_event(event: dict[str, Any]) -> None:
            if event["event"] == "progress" and "users" in event:
                say(
                    f"{srv.name}: occupancy: {event['seconds']:.1f} s, waiting for the figures: {event['shown']} of "
                    f"{event['open']} connections, {event['shown_users']} of {event['users']} users shown"
                )
            elif event["event"] == "progress":
                say(f"{srv.name}: occupancy: {event['seconds']:.1f} s, {event['open']} open, figure shown {event['shown']}")

        res = run_load(config, timeout=120 + o["churn_seconds"] + o["max_settle_seconds"], on_event=on_event)
        problems = []
        if res["failed"]:
            problems.append(f"{res['failed']} viewers failed ({res['first_error']})")
        if res["closed_by_server"]:
            problems.append(f"{res['closed_by_server']} viewers closed by the server")
        if res["negative"]:
            problems.append("a negative figure")
        if res["peak"] < viewers + 1:
            problems.append(f"only {res['peak'] - 1} of {viewers} viewers were in at once")
        if not res["frames"]:
            problems.append("no occupancy frame")
        return res | {"problems": problems, "valid": not problems and srv.alive()}

    def run_rooms(self, name: str) -> dict[str, Any]:
        """The room scenarios on a fresh process of `name`, with the archiver beside it and
        /metrics scraped every 5 s, as `make run` runs them."""
        port = free_port()
        env = self.room_env(f"bench-{name}-rooms")
        srv = Server(name, "product", server_command(name, HOST, port, env), env, port, self.work, log_name=f"{name}-rooms")
        archiver = Server(
            "archiver", "worker", [PY, "manage.py", "run_archiver"], env, 0, self.work, log_name=f"{name}-archiver", core=1
        )
        scraper = Scraper(port)
        out: dict[str, Any] = {
            "command": srv.command,
            "archiver_command": archiver.command,
            "log_level": env.get("LOG_LEVEL", "INFO (default)"),
            "loadavg_before": os.getloadavg(),
            "idle": [], "fill": [], "fanout": [],
        }
        say(f"{name} rooms: {' '.join(srv.command)}; archiver: manage.py run_archiver (core 1)")
        srv.start()
        try:
            archiver.start()
            scraper.start()
            out["rss_fresh_kib"] = srv.rss_fresh_kib
            for conns in self.p["room_idle"] if "room-idle" in self.only else []:
                say(f"{name}: room idle {conns}: opening")
                res = self.room_idle(srv, conns)
                out["idle"].append(res)
                say(f"{name}: room idle {conns}: {fmt_idle(res)}, valid {res['valid']}")
                self.wait_quiet(srv)
            for conns in self.p["room_fill"] if "room-fill" in self.only else []:
                for variant in ("distinct", "tabs"):
                    res = self.room_fill(srv, conns, variant)
                    out["fill"].append(res)
                    say(f"{name}: room fill {conns} {variant}: {fmt_fill(res)}")
                    self.wait_quiet(srv)
            for spec in self.p["room_fanout"] if "room-fanout" in self.only else []:
                res = self.room_fanout(srv, archiver, spec)
                out["fanout"].append(res)
                say(f"{name}: room/live at {spec['subs']}: {num(res['ratio'], 2)}")
            if "occupancy" in self.only:
                out["occupancy"] = self.occupancy(srv)
                say(f"{name}: occupancy: {fmt_occupancy(out['occupancy'])}")
            out["rss_end_kib"] = srv.rss_kib()
            out["alive_at_end"] = srv.alive()
            out["archiver_alive_at_end"] = archiver.alive()
            if not archiver.alive():
                raise RuntimeError(f"the archiver exited: {archiver.log_tail()}")
        except Exception as exc:
            out["error"] = f"{type(exc).__name__}: {exc}"
            say(f"{name} rooms: FAILED: {out['error']}\n{srv.log_tail()}")
        finally:
            scraper.stop()
            out["metrics"] = scraper.summary()
            archiver.stop()
            srv.stop()
            out["loadavg_after"] = os.getloadavg()
        return out

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        self.results["meta"] = machine_facts() | {
            "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "pinning": "server on core 0; load generator and Redis on core 1" if pin(1) else "no pinning",
        }
        self.setup()
        per_server = [s for s in ("idle", "fanout", "slow", "replay", "http") if s in self.only]
        rooms = [s for s in ROOM_SCENARIOS if s in self.only]
        try:
            for name in self.server_names:
                if per_server:
                    self.results["servers"][name] = self.run_server(name)
            for name in self.server_names:
                if rooms and name in self.p.get("room_servers", ("uvicorn", "daphne")):
                    out = self.results["servers"].setdefault(name, {"kind": "product"})
                    out["rooms"] = self.run_rooms(name)
                    if "error" in out["rooms"] and "error" not in out:
                        out["error"] = f"rooms: {out['rooms']['error']}"
            if "sync" in self.only:
                self.results["sync_publish"] = self.sync_publish()
                say(f"sync publish: {self.results['sync_publish']}")
        finally:
            self.close()
        self.results["meta"]["seconds"] = round(time.monotonic() - started, 1)
        return self.results


# ---------------------------------------------------------------- summaries


def workers_lines(servers: dict[str, Any]) -> list[str]:
    """How deliveries/s scale from WORKERS=1 to WORKERS=2 (all-read fan-out)."""
    one = {f["subs"]: f for f in servers.get("uvicorn", {}).get("fanout", []) if not f["slow"]}
    two = {f["subs"]: f for f in servers.get("uvicorn-2w", {}).get("fanout", []) if not f["slow"]}
    ratios = [
        f"{subs:,} subscribers {two[subs]['max_deliveries_per_s'] / one[subs]['max_deliveries_per_s']:.2f}x"
        for subs in sorted(one.keys() & two.keys())
        if one[subs]["max_deliveries_per_s"] and two[subs]["max_deliveries_per_s"]
    ]
    if not ratios:
        return []
    return ["", "WORKERS=2 against WORKERS=1 (uvicorn-2w against uvicorn, deliveries/s): " + ", ".join(ratios)
            + ". uvicorn-2w is not pinned: its two processes share the machine's cores with the load "
            "generator and Redis."]


def summarize_fanout(subs: int, slow: bool, steps: list[dict[str, Any]], slow_code: Any, alive: bool) -> dict[str, Any]:
    good = [s for s in steps if s["sustained"]]
    best = max(good, key=lambda s: s["offered_rate"]) if good else None
    half = None
    if best is not None:
        lower = [s for s in steps if s["offered_rate"] <= best["offered_rate"] / 2 + 0.5 and s["sustained"]]
        half = max(lower, key=lambda s: s["offered_rate"]) if lower else None
    failed_above = [s for s in steps if not s["sustained"] and (best is None or s["offered_rate"] > best["offered_rate"])]
    limit_step = min(failed_above, key=lambda s: s["offered_rate"]) if failed_above else None
    # The load generator was the limit if it was saturated where the server gave out,
    # or (nothing failed) at the top rate reached.
    top = limit_step or best
    client_bound = bool(top and top["client_bound"])
    invalid = [s for s in steps if not s["valid"]]
    return {
        "subs": subs,
        "slow": slow,
        "max_rate": best["offered_rate"] if best else None,
        "max_deliveries_per_s": best["deliveries_per_s"] if best else None,
        "p50_ms": best["p50_ms"] if best else None,
        "p99_ms": best["p99_ms"] if best else None,
        "half_p50_ms": half["p50_ms"] if half else None,
        "half_p99_ms": half["p99_ms"] if half else None,
        "server_cpu_pct": best.get("server_cpu_pct") if best else None,
        "client_cpu_pct": best["client_cpu_pct"] if best else None,
        "limit_step_server_cpu_pct": limit_step.get("server_cpu_pct") if limit_step else None,
        "limit_step_client_cpu_pct": limit_step["client_cpu_pct"] if limit_step else None,
        "ceiling_found": limit_step is not None,
        "client_bound": client_bound,
        "contended": bool(top and top.get("contended")),
        "core0_busy_pct": top.get("core0_busy_pct") if top else None,
        "valid": not invalid and alive,
        "recovered_false": sum(s.get("recovered_false", 0) for s in steps),
        "slow_closed_code": slow_code,
        "steps": steps,
    }


def num(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def fmt_fanout(res: dict[str, Any]) -> str:
    return (
        f"max {num(res['max_rate'])} msg/s = {num(res['max_deliveries_per_s'])} deliveries/s, "
        f"p50 {num(res['p50_ms'], 1)} ms p99 {num(res['p99_ms'], 1)} ms, valid {res['valid']}, client-bound {res['client_bound']}"
    )


def fmt_idle(res: dict[str, Any]) -> str:
    return (
        f"{res['opened']}/{res['conns']} opened, {res['still_open']} still open, {num(res['conns_per_s'])} conn/s, "
        f"{num(res['kib_per_conn'], 1)} KiB/conn"
    )


def fmt_fill(res: dict[str, Any]) -> str:
    return (
        f"{res['subscribed']}/{res['conns']} subscribed in {num(res['subscribed_s'], 2)} s "
        f"({num(res['conns_per_s'])} conn/s), presence frames per member mean {num(res['presence_frames_mean'], 1)} "
        f"max {num(res['presence_frames_max'])}, valid {res['valid']}{'' if res['valid'] else ' ' + '; '.join(res['problems'])}"
    )


def fmt_occupancy(res: dict[str, Any]) -> str:
    c, u = res["connections"], res["users_figure"]
    return (
        f"{res['frames']} frames; connections: max error {c['max_error_lagged']} ({num(OCCUPANCY_LAG_S, 0)} s lag), "
        f"settled after {num(c['settle_s'], 1)} s, last {c['last_figure']} of {c['truth']}; users: max error "
        f"{u['max_error_lagged']}, settled after {num(u['settle_s'], 1)} s, last {u['last_figure']} of {u['truth']}; "
        f"valid {res['valid']}"
    )


def notes_for(res: dict[str, Any]) -> str:
    notes = []
    if not res["valid"]:
        notes.append("INVALID (loss/dup/reorder or reader closed)")
    if res.get("recovered_false"):
        notes.append(f"{res['recovered_false']} `subscribed` recovered:false mid-stream")
    if res["client_bound"]:
        notes.append("client-bound")
    if res.get("contended"):
        notes.append(f"core 0 shared (busy {num(res.get('core0_busy_pct'))} %)")
    if not res["ceiling_found"] and res["max_rate"] is not None:
        notes.append("ceiling not reached")
    if res["max_rate"] is None:
        notes.append("no step sustained")
    if res["slow"]:
        code = res["slow_closed_code"]
        notes.append(f"slow socket closed {code}" if code else "slow socket kept open")
    return "; ".join(notes)


def tables(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        f"# Benchmark results ({results['profile']})",
        "",
        f"{meta['started']}, {meta['seconds']} s. Machine: {meta['nproc']} CPUs, {meta['cpu_model']}; "
        f"Python {meta['python']}, Node {meta['node']}, Linux {meta['kernel']}; {meta['pinning']}; "
        f"fd limit {meta['fd_limit'][0]}. Load average per server (before/after): "
        + ", ".join(
            f"{n} {srv.get('loadavg_before', [0])[0]:.1f}/{srv.get('loadavg_after', [0])[0]:.1f}"
            for n, srv in results["servers"].items()
        )
        + ".",
        "",
        "## Fan-out: one stream, max sustained rate (no loss, no duplicate, in order, no growing queue)",
        "",
        "| server | subscribers | variant | max msg/s | deliveries/s | p50 ms | p99 ms | p50 @ half | p99 @ half "
        "| server CPU % | load CPU % | notes |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, srv in results["servers"].items():
        for res in srv.get("fanout", []):
            lines.append(
                f"| {name} | {res['subs']:,} | {'1 slow reader' if res['slow'] else 'all read'} | {num(res['max_rate'])} "
                f"| {num(res['max_deliveries_per_s'])} | {num(res['p50_ms'], 1)} | {num(res['p99_ms'], 1)} "
                f"| {num(res['half_p50_ms'], 1)} | {num(res['half_p99_ms'], 1)} | {num(res['server_cpu_pct'])} "
                f"| {num(res['client_cpu_pct'])} | {notes_for(res)} |"
            )
        if "error" in srv:
            lines.append(f"| {name} | | | | | | | | | | | FAILED: {srv['error'][:120]} |")
    lines += workers_lines(results["servers"])
    lines += [
        "",
        "## Idle connections",
        "",
        "| server | connections | opened | still open | conn/s | RSS KiB per conn | notes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, srv in results["servers"].items():
        for res in srv.get("idle", []):
            if "not_run" in res:
                lines.append(f"| {name} | {res['conns']:,} | | | | | not run: {res['not_run']} |")
                continue
            note = "" if res["valid"] else f"INVALID {res['first_error'] or ''}"
            lines.append(
                f"| {name} | {res['conns']:,} | {res['opened']:,} | {res['still_open']:,} | {num(res['conns_per_s'])} "
                f"| {num(res['kib_per_conn'], 1)} | {note} |"
            )
    lines += [
        "",
        "## Replay and publish",
        "",
        "| server | replay of N missed msgs (subscribe to last frame), ms | HTTP POST publish req/s | notes |",
        "| --- | --- | --- | --- |",
    ]
    for name, srv in results["servers"].items():
        if srv.get("kind") != "product":
            continue
        rep = srv.get("replay") or {}
        http = srv.get("http") or {}
        if not rep and not http:
            continue
        replay_text = (
            f"{num(rep.get('replay_ms_median'), 1)} (min {num(rep.get('replay_ms_min'), 1)}, N={rep.get('messages')})"
            if rep else "-"
        )
        http_text = num(http.get("requests_per_s")) if http.get("available") else ("n/a (404)" if http else "-")
        notes = []
        if rep and not rep.get("valid"):
            notes.append("replay INVALID")
        if http.get("available") and not http.get("valid"):
            notes.append(f"http errors {http.get('statuses')}")
        lines.append(f"| {name} | {replay_text} | {http_text} | {'; '.join(notes)} |")
    sync = results.get("sync_publish")
    if sync:
        lines += [
            "",
            f"`realtime.publish` from a sync loop (core 0, no server running): {num(sync['messages_per_s'])} msg/s "
            f"({sync['messages']} messages{'' if sync['valid'] else ', INVALID seqs'}); "
            f"`realtime.publish_many`, {sync['batch']} per call (pipelined): {num(sync['batched_messages_per_s'])} msg/s "
            f"({sync['batched_messages']} messages{'' if sync['batched_valid'] else ', INVALID seqs'}).",
        ]
    lines += room_tables(results)
    return "\n".join(lines) + "\n"


def pair(a: Any, b: Any, digits: int = 0) -> str:
    return f"{num(a, digits)} / {num(b, digits)}"


def room_tables(results: dict[str, Any]) -> list[str]:
    """The signed-in room tables (none when no room scenario ran)."""
    rooms = {name: srv["rooms"] for name, srv in results["servers"].items() if "rooms" in srv}
    if not rooms:
        return []
    lines = [
        "",
        "## Signed-in rooms, as `make run` serves them",
        "",
        "Each product server again, in a fresh process with `manage.py run_archiver` beside it (core 1; `room:` "
        "messages are queued for the archive) and `/metrics` scraped every 5 s; the server's environment is "
        "`make run`'s (log level included) but for the bench's secret, key prefix and no publish limits. Members "
        "sign in with their own token (`sub`), subscribe as the room page does (`history` 50, `occupancy`) and ask "
        f"who is here. Targets: under {PRESENCE_FRAMES_TARGET} presence frames per member while a room fills; room "
        f"fan-out at least {ROOM_LIVE_TARGET} x a `live:` stream's in the same process; the occupancy figure "
        f"right within about {num(OCCUPANCY_LAG_S)} s of a change. Load average (before/after): "
        + ", ".join(
            f"{n} {r.get('loadavg_before', [0])[0]:.1f}/{r.get('loadavg_after', [0])[0]:.1f}" for n, r in rooms.items()
        )
        + ".",
    ]
    fills = [(n, f) for n, r in rooms.items() for f in r.get("fill", [])]
    if fills:
        lines += [
            "",
            "### A room filling up",
            "",
            "Connections open 200 at a time; time from the first connect until every one is subscribed; presence "
            "frames (answers and change frames) each member got from its connect until the room had been full "
            "for a few seconds.",
            "",
            "| server | connections | users | all subscribed, s | conn/s | join p99 ms | presence frames per member, "
            "mean / max | presence KiB per member | server CPU % | notes |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for name, res in fills:
            extras = res.get("extras") or {}
            notes = [] if res["valid"] else ["INVALID: " + "; ".join(res["problems"])]
            notes.append("target met" if res["presence_target_met"] else f"over the target ({PRESENCE_FRAMES_TARGET})")
            if res["contended"]:
                notes.append(f"core 0 shared (busy {num(res['core0_busy_pct'])} %)")
            lines.append(
                f"| {name} | {res['conns']:,} | {res['users']:,}{' (tabs)' if res['variant'] == 'tabs' else ''} "
                f"| {num(res['subscribed_s'], 2)} | {num(res['conns_per_s'])} | {num((res.get('join_ms') or {}).get('p99'), 1)} "
                f"| {pair(res['presence_frames_mean'], res['presence_frames_max'], 1)} "
                f"| {num((extras.get('presence_kib') or {}).get('mean'), 1)} | {num(res['server_cpu_pct'])} | {'; '.join(notes)} |"
            )
    fans = [(n, f) for n, r in rooms.items() for f in r.get("fanout", [])]
    if fans:
        lines += [
            "",
            "### Fan-out in a full room, beside a `live:` stream",
            "",
            "Max sustained deliveries/s (same rule as above), the `live:` search first (anonymous subscribers), then "
            "the room's, from the live maximum, in the same process; the room's subscribers are its signed-in "
            "members, the publisher a signed-in user.",
            "",
            "| server | subscribers | live deliveries/s | room deliveries/s | room / live | live p50 / p99 ms "
            "| room p50 / p99 ms | archiver CPU % | notes |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for name, res in fans:
            live, room = res["live"], res["room"]
            notes = []
            if res["ratio"] is not None and not (live["valid"] and room["valid"]):
                notes.append("not judged (a step was INVALID)")
            elif res["ratio"] is not None and (live.get("contended") or room.get("contended")):
                notes.append("not judged (core 0 shared: the ratio says more about the machine than the server)")
            elif res["ratio"] is not None:
                notes.append("target met" if res["target_met"] else f"under the target ({ROOM_LIVE_TARGET})")
            if notes_for(live):
                notes.append(f"live: {notes_for(live)}")
            if notes_for(room):
                notes.append(f"room: {notes_for(room)}")
            lines.append(
                f"| {name} | {res['subs']:,} | {num(live['max_deliveries_per_s'])} | {num(room['max_deliveries_per_s'])} "
                f"| {num(res['ratio'], 2)} | {pair(live['p50_ms'], live['p99_ms'], 1)} | {pair(room['p50_ms'], room['p99_ms'], 1)} "
                f"| {num(res['archiver_cpu_pct'])} | {'; '.join(notes)} |"
            )
    idles = [(n, i) for n, r in rooms.items() for i in r.get("idle", [])]
    if idles:
        lines += [
            "",
            "### Idle signed-in members of one room",
            "",
            "As the idle scenario above (opened 200 at a time, held, RSS against the fresh process), but each "
            "connection signed in, subscribed to one `room:` and answered who is here.",
            "",
            "| server | connections | opened | subscribed | still open | conn/s | RSS KiB per conn "
            "| same count, anonymous without a stream | notes |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for name, res in idles:
            plain = next((i for i in results["servers"][name].get("idle", []) if i["conns"] == res["conns"] and "not_run" not in i), None)
            note = "" if res["valid"] else f"INVALID {res['first_error'] or (res.get('extras') or {}).get('first_error') or ''}"
            lines.append(
                f"| {name} | {res['conns']:,} | {res['opened']:,} | {num(res.get('subscribed'))} | {res['still_open']:,} "
                f"| {num(res['conns_per_s'])} | {num(res['kib_per_conn'], 1)} | {num(plain['kib_per_conn'], 1) if plain else '-'} "
                f"| {note} |"
            )
    occs = [(n, r["occupancy"]) for n, r in rooms.items() if r.get("occupancy")]
    if occs:
        lines += [
            "",
            "### Occupancy while viewers come and go",
            "",
            "One signed-in subscriber with `\"occupancy\": true` records the figures while signed-in viewers (a "
            "quarter with a second tab) come and go: all connect (200 at a time), then over some seconds they are "
            "replaced at 10 %/s, go down to 40 %, are replaced again; then nothing changes. Error over time: how "
            "far the figure shown "
            f"was from every value the truth had in the {num(OCCUPANCY_LAG_S)} s before; settle: from the last "
            "change until the figure is right for good (watched for at least a few seconds, and up to 45 s "
            "while it is still wrong); after settling: the largest error from "
            f"{num(OCCUPANCY_LAG_S)} s after the last change on.",
            "",
                "| server | viewers (users) | all in, s | frames | max error over time, connections / users | settle s, "
            "connections / users | max abs error after settling | last figure / truth (connections) | notes |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for name, res in occs:
            c, u = res["connections"], res["users_figure"]
            notes = [] if res["valid"] else ["INVALID: " + "; ".join(res["problems"])]
            if c["settle_s"] is None or u["settle_s"] is None:
                notes.append("never settled")
            for what, fig in (("connections", c), ("users", u)):
                if fig["settle_s"] is not None and fig["settle_s"] > OCCUPANCY_LAG_S + 1:
                    notes.append(f"{what} figure wrong for {num(fig['settle_s'], 1)} s after the last change")
            lines.append(
                f"| {name} | {res['viewers']:,} ({res['users']:,}) | {num(res['all_in_s'], 1)} | {res['frames']} "
                f"| {pair(c['max_error_lagged'], u['max_error_lagged'])} | {pair(c['settle_s'], u['settle_s'], 1)} "
                f"| {pair(c['max_abs_error_after_settling'], u['max_abs_error_after_settling'])} "
                f"| {num(c['last_figure'])} / {num(c['truth'])} | {'; '.join(notes)} |"
            )
    lines += [""]
    for name, r in rooms.items():
        m = r.get("metrics") or {}
        last = m.get("last") or {}
        text = (
            f"{name}: archive queue at most {num(m.get('archive_queued_max'))} messages (oldest "
            f"{num(m.get('archive_oldest_s_max'), 1)} s), {num(last.get('rt_archive_queued'))} at the last scrape, "
            f"{num(last.get('rt_archive_dead'))} dead-lettered; {m.get('scrapes', 0)} scrapes of /metrics"
            f"{', ' + str(m['failures']) + ' failed' if m.get('failures') else ''}"
        )
        if "error" in r:
            text += f"; FAILED: {r['error'][:200]}"
        lines.append(f"* {text}.")
    return lines


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_rate, ax_lat) = plt.subplots(1, 2, figsize=(13, 5.2))
    colors = {"uvicorn": "tab:blue", "uvicorn-2w": "tab:purple", "daphne": "tab:orange", "tutorial": "tab:red", "raw": "tab:green"}
    styles = {100: "o-", 1000: "s--"}
    for name, srv in results["servers"].items():
        for res in srv.get("fanout", []):
            if res["slow"]:
                continue
            steps = sorted(res["steps"], key=lambda s: s["offered_deliveries"])
            xs = [s["offered_deliveries"] for s in steps]
            label = f"{name}, {res['subs']} subs"
            style = styles.get(res["subs"], "^:")
            ax_rate.plot(xs, [s["deliveries_per_s"] for s in steps], style, color=colors.get(name), label=label)
            ax_lat.plot(xs, [s["p99_ms"] or float("nan") for s in steps], style, color=colors.get(name), label=label)
            bad = [s for s in steps if not s["sustained"]]
            ax_rate.plot([s["offered_deliveries"] for s in bad], [s["deliveries_per_s"] for s in bad], "x", color="black")
    lim = ax_rate.get_xlim()
    ax_rate.plot([0, lim[1]], [0, lim[1]], ":", color="grey", linewidth=0.8, label="delivered = offered")
    ax_rate.set_xlabel("offered deliveries/s (publish rate x subscribers)")
    ax_rate.set_ylabel("deliveries/s received")
    ax_rate.set_title("Fan-out throughput (x: step not sustained)")
    ax_lat.set_xlabel("offered deliveries/s")
    ax_lat.set_ylabel("p99 publish-to-receive latency, ms")
    ax_lat.set_yscale("log")
    ax_lat.set_title("p99 latency")
    for ax in (ax_rate, ax_lat):
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    meta = results["meta"]
    fig.suptitle(f"{results['profile']} run, {meta['nproc']} CPUs {meta['cpu_model']}; {meta['pinning']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="under 3 minutes")
    mode.add_argument("--smoke", action="store_true", help="tiny numbers: checks that the harness works")
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated subset")
    parser.add_argument(
        "--only", default="",
        help=f"comma-separated scenarios: {','.join(SCENARIOS)}, or rooms (the last four); default: all",
    )
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results", help="where results.* and fanout.png go")
    parser.add_argument(
        "--idle", default="",
        help="comma-separated idle connection counts instead of the profile's (e.g. 50000; past 20,000 the "
             "load client opens them from 127.0.0.2 and on as well)",
    )
    args = parser.parse_args(argv)
    answer_ctrl_c()  # a run started in the background still stops, cleaning up, on SIGINT
    os.chdir(BASE_DIR)
    profile = "smoke" if args.smoke else "quick" if args.quick else "full"
    servers = [s for s in args.servers.split(",") if s]
    # Refused before npm ci, Redis and the first server's run, not after them.
    unknown = [s for s in servers if s not in SERVERS]
    if unknown:
        parser.error(f"--servers: unknown {', '.join(map(repr, unknown))}; use a subset of {','.join(SERVERS)}")
    asked = [s for s in args.only.split(",") if s]
    bad = [s for s in asked if s not in SCENARIOS and s != "rooms"]
    if bad:
        parser.error(f"--only: unknown {', '.join(map(repr, bad))}; use a subset of {','.join(SCENARIOS)} or rooms")
    only = tuple(s for s in SCENARIOS if not asked or s in asked or (s in ROOM_SCENARIOS and "rooms" in asked))
    missing = [tool for tool in ("node", "npm") if not shutil.which(tool)]
    if missing:
        parser.exit(1, f"bench: the load client (bench/load.js) needs Node and npm; not found on PATH: {', '.join(missing)}\n")
    try:
        idle = [int(n) for n in args.idle.split(",") if n]
    except ValueError:
        parser.error(f"--idle: whole numbers, comma-separated, not {args.idle!r}")
    bench = Bench(profile, servers, args.out, only)
    if idle:
        bench.p = bench.p | {"idle": idle, "idle_big": []}
    results = bench.run()
    args.out.mkdir(parents=True, exist_ok=True)
    text = tables(results)
    results["table_md"] = text
    (args.out / "results.md").write_text(text)
    (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    try:
        plot(results, args.out / "fanout.png")
    except Exception as exc:  # the numbers matter more than the picture
        say(f"plot failed: {exc}")
    print()
    print(text)
    say(f"wrote {args.out}/results.md, results.json, fanout.png")
    failed = [name for name, srv in results["servers"].items() if "error" in srv]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
