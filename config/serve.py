"""`make run`: Redis (embedded unless REDIS_URL is set), migrations and demo data under a
lock, then the ASGI server and the archiver, all stopped together on Ctrl-C or SIGTERM.
`manage.py archive_retention` runs at start and then every day beside them.

Several of these with one REDIS_URL and DATABASE_URL and distinct PORTs form a cluster.

The data directory holds the database, Redis's data and password, and the secrets: it and
everything in it are its owner's only (umask 077 for what is made, chmod at start for
what a run before this one left).
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from config.embedded_redis import _die_with_parent, public_url
from config.interrupt import answer_ctrl_c

BASE_DIR = Path(__file__).resolve().parent.parent
PY = sys.executable


def server_command(server: str, host: str, port: int, env: Mapping[str, str] | None = None) -> list[str]:
    """The exact command line that serves `config.asgi:application` (bench/README.md shows it).

    `env` is the environment the server will run with (default: this process's)."""
    env = os.environ if env is None else env
    ping_interval = env.get("RT_WS_PING_INTERVAL", "20")
    ping_timeout = env.get("RT_WS_PING_TIMEOUT", "20")
    if server == "uvicorn":
        # Behind a proxy: the client address and scheme from X-Forwarded-For and
        # X-Forwarded-Proto, believed only from the proxy's addresses (comma-separated IPs or
        # networks). Unset: uvicorn's own default, which believes 127.0.0.1 and ::1 only.
        forwarded = env.get("FORWARDED_ALLOW_IPS", "").strip()
        proxy = ["--proxy-headers", "--forwarded-allow-ips", forwarded] if forwarded else []
        # WORKERS=N: N server processes on one port, each with its own hub (the channel
        # layer carries every message to each of them, as between replicas).
        workers = _workers(env)
        several = ["--workers", str(workers)] if workers > 1 else []
        # permessage-deflate: off unless RT_WS_DEFLATE=1. Per socket it costs a zlib
        # context (about 34 KiB, bench/frame_cost.py) and a compression of every frame, and such a
        # socket cannot take the frame bytes shared by all (realtime/wire.py).
        deflate = "true" if _deflate(env) else "false"
        return [
            PY, "-m", "uvicorn", "config.asgi:application",
            "--host", host, "--port", str(port),
            "--loop", "uvloop", "--http", "httptools", "--ws", "config.uvicorn_ws:DeadlineWebSocketProtocol",
            "--ws-max-size", str(1024 * 1024), "--ws-per-message-deflate", deflate,
            "--ws-ping-interval", ping_interval,
            "--ws-ping-timeout", ping_timeout,
            "--lifespan", "off", "--no-access-log", "--timeout-graceful-shutdown", "5",
            *proxy,
            *several,
        ]
    if server == "daphne":
        if _workers(env) > 1:
            raise SystemExit("WORKERS above 1 needs SERVER=uvicorn (daphne serves one process per port)")
        return [
            PY, "-m", "config.daphne_server", "-b", host, "-p", str(port),
            "--ping-interval", ping_interval, "--ping-timeout", ping_timeout,
            "config.asgi:application",
        ]
    raise SystemExit(f"SERVER={server!r}: use uvicorn or daphne")


def _child_name(child: subprocess.Popen[bytes]) -> str:
    """What a child started here runs: `uvicorn`, `config.daphne_server`, `run_archiver`."""
    args = child.args
    return str(args[2]) if isinstance(args, list) and len(args) > 2 else str(args)


def _workers(env: Mapping[str, str]) -> int:
    raw = env.get("WORKERS", "1").strip() or "1"
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"WORKERS={raw!r}: expected a whole number, 1 or more")
    return int(raw)


def _deflate(env: Mapping[str, str]) -> bool:
    raw = env.get("RT_WS_DEFLATE", "0").strip() or "0"
    if raw not in ("0", "1"):
        raise SystemExit(f"RT_WS_DEFLATE={raw!r}: expected 0 (off, the default) or 1")
    return raw == "1"


def _say(text: str) -> None:
    print(f"[run] {text}", flush=True)


def _lock(path: Path, blocking: bool) -> IO[str] | None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        handle.close()
        return None
    return handle


def make_private(data_dir: Path) -> None:
    """`data_dir` and everything under it: directories 0700, files 0600 (symlinks left alone)."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for path in [data_dir, *data_dir.rglob("*")]:
        if path.is_symlink():
            continue
        try:
            path.chmod(0o700 if path.is_dir() else 0o600)
        except OSError as exc:  # not ours, or gone meanwhile
            _say(f"could not make {path} private: {exc}")


def _write_private(path: Path, text: str) -> None:
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(text)


class PeriodicCommand:
    """A command run now and then every `interval` seconds, one at a time, by the supervisor's
    loop: a failure is reported and retried at the next turn, never stops the server."""

    def __init__(self, name: str, command: list[str], env: Mapping[str, str], interval: float) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.interval = interval
        self.next_at = time.monotonic()
        self.process: subprocess.Popen[bytes] | None = None

    def tick(self) -> None:
        """Called often: reports a finished run, starts one that is due."""
        if self.process is not None:
            code = self.process.poll()
            if code is None:
                return
            self.process = None
            if code != 0:
                _say(f"{self.name} failed with exit code {code}; next try in {self.interval:g} s")
        if time.monotonic() >= self.next_at:
            self.next_at = time.monotonic() + self.interval
            try:
                self.process = subprocess.Popen(self.command, env=dict(self.env), preexec_fn=_die_with_parent)
            except OSError as exc:
                _say(f"{self.name} could not start: {exc}; next try in {self.interval:g} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def main() -> int:
    os.umask(0o077)  # before anything is made: every file of this run and its children is private
    os.chdir(BASE_DIR)
    data_dir = Path(os.environ.get("RT_DATA_DIR", BASE_DIR / "var")).resolve()
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings", PYTHONUNBUFFERED="1")
    host = env.get("HOST", "127.0.0.1")
    try:
        port = int(env.get("PORT", "8000"))
    except ValueError:
        raise SystemExit(f"PORT={env['PORT']!r}: expected a port number") from None
    server = env.get("SERVER", "uvicorn")
    make_private(data_dir)

    from config.embedded_redis import EmbeddedRedis

    redis: EmbeddedRedis | None = None
    if not any(env.get(name) for name in ("REDIS_URL", "REDIS_SENTINELS", "REDIS_CLUSTER_NODES")):
        redis_dir = data_dir / "redis"
        owner = _lock(redis_dir / "owner.lock", blocking=False)
        if owner is None:
            env["REDIS_URL"] = (redis_dir / "url").read_text().strip()
            _say(f"using the embedded Redis another `make run` started: {public_url(env['REDIS_URL'])}")
        else:
            redis = EmbeddedRedis(redis_dir)
            redis.start()
            _write_private(redis_dir / "url", redis.url)
            env["REDIS_URL"] = redis.url
            _say(f"embedded Redis {redis.public_url} (pid {redis.process.pid if redis.process else '?'}), data in {redis_dir}")
    children: list[subprocess.Popen[bytes]] = []
    retention = PeriodicCommand(
        "archive_retention",
        [PY, "manage.py", "archive_retention"],
        env,
        float(env.get("RT_RETENTION_INTERVAL", "86400")),
    )

    def shutdown(signum: int = signal.SIGTERM, frame: object = None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, shutdown)
    answer_ctrl_c()
    code = 0
    try:
        setup = _lock(data_dir / "setup.lock", blocking=True)
        try:
            subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], env=env, check=True)
            subprocess.run([PY, "manage.py", "seed_demo"], env=env, check=True)
        finally:
            assert setup is not None
            setup.close()
        children.append(subprocess.Popen(server_command(server, host, port, env), env=env, preexec_fn=_die_with_parent))
        if env.get("RT_ARCHIVER", "1") != "0":
            children.append(subprocess.Popen([PY, "manage.py", "run_archiver"], env=env, preexec_fn=_die_with_parent))
        shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
        _say(f"{server} serving on http://{shown}:{port}/  (Ctrl-C stops everything)")
        _say(f"  chat:    http://{shown}:{port}/rooms/lobby/")
        _say(f"  scores:  http://{shown}:{port}/live/demo/   (make a match: .venv/bin/python manage.py simulate_match live:demo)")
        _say("  embed:   make demo-embed   (another site with the notification widget, on :8001)")
        _say(f"  admin:   http://{shown}:{port}/admin/")
        _say(f"  health:  http://{shown}:{port}/healthz   metrics: http://{shown}:{port}/metrics")
        while True:
            retention.tick()
            for child in children:
                if child.poll() is not None:
                    _say(f"{_child_name(child)} exited with {child.returncode}; stopping")
                    code = child.returncode or 1
                    raise KeyboardInterrupt
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    except subprocess.CalledProcessError as exc:
        _say(f"setup failed: {exc}")
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        retention.stop()
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in children:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if redis is not None:
            redis.stop()
            _say("embedded Redis stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
