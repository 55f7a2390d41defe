"""`make bench`: fan-out, idle connections, replay and publish throughput of the product
under uvicorn and daphne, beside two baselines measured in the same run.

    python -m bench.run            # full (about 10 minutes)
    python -m bench.run --quick    # under 3 minutes
    python -m bench.run --smoke    # seconds: proves the harness works (tests/bench)

It starts its own Redis (EmbeddedRedis) and each server in turn, pins the server to core
0 and the load generator (bench/load.js, Node + `ws`) and Redis to core 1 with `taskset`,
checks every delivery for loss, duplicates and order while it measures, and writes
bench/results/results.md, results.json and fanout.png. See bench/README.md.
"""

from __future__ import annotations

import argparse
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

from config.embedded_redis import EmbeddedRedis, _die_with_parent, free_port
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
    100: {"uvicorn": 600, "daphne": 200, "tutorial": 20, "raw": 1000},
    1000: {"uvicorn": 40, "daphne": 10, "tutorial": 2, "raw": 100},
}

SERVERS = ("uvicorn", "daphne", "tutorial", "raw")

PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {
        "fanout": [{"subs": 5, "rates": [20]}],
        "slow": [],
        "step_seconds": 0.5,
        "drain": 3.0,
        "idle": [20],
        "idle_hold_ms": 500,
        "replay_messages": 50,
        "replay_repeats": 1,
        "http_seconds": 0.5,
        "sync_seconds": 0.5,
        "sync_max": 50,
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
        "idle_hold_ms": 3000,
        "replay_messages": 1000,
        "replay_repeats": 10,
        "http_seconds": 5.0,
        "sync_seconds": 5.0,
        "sync_max": 1_000_000,
    },
}


def say(text: str) -> None:
    print(f"[bench] {text}", flush=True)


def pin(core: int) -> list[str]:
    """`taskset -c CORE` where it exists and the machine has that core."""
    if shutil.which("taskset") and (os.cpu_count() or 1) > core:
        return ["taskset", "-c", str(core)]
    return []


def raise_fd_limit() -> tuple[int, int]:
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

    def __init__(self, name: str, kind: str, command: list[str], env: dict[str, str], port: int, log_dir: Path) -> None:
        self.name, self.kind, self.command, self.env, self.port = name, kind, command, env, port
        self.log_path = log_dir / f"{name}.log"
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
            pin(0) + self.command, env=self.env, cwd=BASE_DIR, stdout=log, stderr=subprocess.STDOUT,
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

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

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
    def __init__(self, profile: str, servers: list[str], out_dir: Path) -> None:
        self.profile_name = profile
        self.p = PROFILES[profile]
        self.server_names = servers
        self.out_dir = out_dir
        self.work = Path(tempfile.mkdtemp(prefix="rt-bench-"))
        self.secret = secrets.token_urlsafe(32)
        self.token = jwt.encode({"exp": int(time.time()) + 3 * 3600, "sub": "bench", "pubs": ["live:*"]}, self.secret, "HS256")
        self.redis = EmbeddedRedis(self.work / "redis")
        self.results: dict[str, Any] = {"profile": profile, "servers": {}}

    def env(self, prefix: str) -> dict[str, str]:
        return dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="config.settings",
            PYTHONUNBUFFERED="1",
            REDIS_URL=self.redis.url,
            RT_DATA_DIR=str(self.work / "data"),
            RT_TOKEN_SECRET=self.secret,
            DJANGO_SECRET_KEY=self.secret + "-django",
            RT_PUBLISH_RATE="0",
            RT_KEY_PREFIX=prefix,
            RT_CHANNEL_PREFIX=prefix,
            LOG_LEVEL="WARNING",
        )

    def server(self, name: str) -> Server:
        port = free_port()
        env = self.env(f"bench-{name}")
        if name in ("uvicorn", "daphne"):
            return Server(name, "product", server_command(name, HOST, port, env), env, port, self.work)
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
            "proto": {"product": "product", "tutorial": "tutorial", "raw": "raw"}[srv.kind],
            "url": f"ws://{HOST}:{srv.port}/ws/",
            "token": self.token if srv.kind == "product" else None,
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
        say(f"redis {self.redis.url}")
        subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=BASE_DIR, env=self.env("bench"), check=True)

    def close(self) -> None:
        self.redis.stop()
        shutil.rmtree(self.work, ignore_errors=True)

    # -- scenarios per server

    def idle(self, srv: Server, conns: int) -> dict[str, Any]:
        before = srv.rss_kib()
        seen: dict[str, Any] = {}

        def on_event(event: dict[str, Any]) -> None:
            if event["event"] == "opened":
                time.sleep(1.0)
                seen["rss_open"] = srv.rss_kib()

        config = self.base_config(srv, "idle") | {"conns": conns, "concurrency": 200, "holdMs": self.p["idle_hold_ms"]}
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
        time.sleep(1.0)  # let the server see the closes before the next scenario
        return out

    def fanout(self, srv: Server, spec: dict[str, Any], slow: bool) -> dict[str, Any]:
        subs = spec["subs"]
        config = self.base_config(srv, "fanout") | {
            "subs": subs,
            "slow": slow,
            "stepSeconds": self.p["step_seconds"],
            "halfStep": self.p.get("half_step", False),
        }
        if "rates" in spec:
            config["rates"] = spec["rates"]
        else:
            start = spec.get("start") or START_RATES.get(subs, {}).get(srv.name, 10)
            config |= {"startRate": start, "factor": spec["factor"], "maxSteps": spec["max_steps"]}
        result = run_load(config, timeout=600)
        steps = result["steps"]
        for step in steps:
            step["server_cpu_pct"] = srv.cpu_pct(step["t_start"], step["t_end"])
            step["core0_busy_pct"] = srv.cpu_pct(step["t_start"], step["t_end"], field=2)
            # Something else ran on the server's core (this machine is shared): the figure
            # understates the server.
            step["contended"] = bool(
                step["core0_busy_pct"] is not None and step["server_cpu_pct"] is not None
                and step["core0_busy_pct"] - step["server_cpu_pct"] > 15
            )
        return summarize_fanout(subs, slow, steps, result.get("slow_closed_code"), srv.alive())

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
        out: dict[str, Any] = {"command": srv.command, "kind": srv.kind, "loadavg_before": os.getloadavg()}
        say(f"{name}: {' '.join(srv.command)}")
        srv.start()
        try:
            out["idle"] = []
            for conns in self.p["idle"]:
                out["idle"].append(self.idle(srv, conns))
                say(f"{name}: idle {conns}: {fmt_idle(out['idle'][-1])}")
            out["fanout"] = []
            for spec in self.p["fanout"]:
                res = self.fanout(srv, spec, slow=False)
                out["fanout"].append(res)
                say(f"{name}: fan-out {spec['subs']}: {fmt_fanout(res)}")
            for subs in self.p["slow"]:
                # Its own rate search, from the all-read maximum: a single step at exactly
                # that edge fails about half the time for any server, slow reader or not.
                normal = next(f for f in out["fanout"] if f["subs"] == subs)
                spec = next(s for s in self.p["fanout"] if s["subs"] == subs)
                if normal["max_rate"]:
                    spec = spec | {"start": int(normal["max_rate"])}
                res = self.fanout(srv, spec, slow=True)
                out["fanout"].append(res)
                say(f"{name}: fan-out {subs} + 1 slow: {fmt_fanout(res)}")
            if srv.kind == "product":
                out["replay"] = self.replay(srv)
                say(f"{name}: replay: {out['replay'].get('replay_ms_median')} ms, valid {out['replay'].get('valid')}")
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

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        self.results["meta"] = machine_facts() | {
            "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "pinning": "server on core 0; load generator and Redis on core 1" if pin(1) else "no pinning",
        }
        self.setup()
        try:
            for name in self.server_names:
                self.results["servers"][name] = self.run_server(name)
            self.results["sync_publish"] = self.sync_publish()
            say(f"sync publish: {self.results['sync_publish']}")
        finally:
            self.close()
        self.results["meta"]["seconds"] = round(time.monotonic() - started, 1)
        return self.results


# ---------------------------------------------------------------- summaries


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


def notes_for(res: dict[str, Any]) -> str:
    notes = []
    if not res["valid"]:
        notes.append("INVALID (loss/dup/reorder or reader closed)")
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
    lines += [
        "",
        "## Idle connections",
        "",
        "| server | connections | opened | still open | conn/s | RSS KiB per conn | notes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, srv in results["servers"].items():
        for res in srv.get("idle", []):
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
            f"({sync['messages']} messages{'' if sync['valid'] else ', INVALID seqs'}).",
        ]
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_rate, ax_lat) = plt.subplots(1, 2, figsize=(13, 5.2))
    colors = {"uvicorn": "tab:blue", "daphne": "tab:orange", "tutorial": "tab:red", "raw": "tab:green"}
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
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results", help="where results.* and fanout.png go")
    args = parser.parse_args(argv)
    os.chdir(BASE_DIR)
    profile = "smoke" if args.smoke else "quick" if args.quick else "full"
    servers = [s for s in args.servers.split(",") if s]
    # Refused before npm ci, Redis and the first server's run, not after them.
    unknown = [s for s in servers if s not in SERVERS]
    if unknown:
        parser.error(f"--servers: unknown {', '.join(map(repr, unknown))}; use a subset of {','.join(SERVERS)}")
    missing = [tool for tool in ("node", "npm") if not shutil.which(tool)]
    if missing:
        parser.exit(1, f"bench: the load client (bench/load.js) needs Node and npm; not found on PATH: {', '.join(missing)}\n")
    bench = Bench(profile, servers, args.out)
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
