"""`make run`: Redis (embedded unless REDIS_URL is set), migrations and demo data under a
lock, then the ASGI server and the archiver, all stopped together on Ctrl-C or SIGTERM.
`manage.py archive_retention` runs at start and then every day beside them.

Several of these with one REDIS_URL and DATABASE_URL and distinct PORTs form a cluster.
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

from config.embedded_redis import _die_with_parent
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
        return [
            PY, "-m", "uvicorn", "config.asgi:application",
            "--host", host, "--port", str(port),
            "--loop", "uvloop", "--http", "httptools", "--ws", "config.uvicorn_ws:DeadlineWebSocketProtocol",
            "--ws-max-size", str(1024 * 1024),
            "--ws-ping-interval", ping_interval,
            "--ws-ping-timeout", ping_timeout,
            "--lifespan", "off", "--no-access-log", "--timeout-graceful-shutdown", "5",
        ]
    if server == "daphne":
        return [
            PY, "-m", "config.daphne_server", "-b", host, "-p", str(port),
            "--ping-interval", ping_interval, "--ping-timeout", ping_timeout,
            "config.asgi:application",
        ]
    raise SystemExit(f"SERVER={server!r}: use uvicorn or daphne")


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
    os.chdir(BASE_DIR)
    data_dir = Path(os.environ.get("RT_DATA_DIR", BASE_DIR / "var")).resolve()
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings", PYTHONUNBUFFERED="1")
    host = env.get("HOST", "127.0.0.1")
    try:
        port = int(env.get("PORT", "8000"))
    except ValueError:
        raise SystemExit(f"PORT={env['PORT']!r}: expected a port number") from None
    server = env.get("SERVER", "uvicorn")

    from config.embedded_redis import EmbeddedRedis

    redis: EmbeddedRedis | None = None
    if not env.get("REDIS_URL"):
        redis_dir = data_dir / "redis"
        owner = _lock(redis_dir / "owner.lock", blocking=False)
        if owner is None:
            env["REDIS_URL"] = (redis_dir / "url").read_text().strip()
            _say(f"using the embedded Redis another `make run` started: {env['REDIS_URL']}")
        else:
            redis = EmbeddedRedis(redis_dir)
            redis.start()
            (redis_dir / "url").write_text(redis.url)
            env["REDIS_URL"] = redis.url
            _say(f"embedded Redis {redis.url} (pid {redis.process.pid if redis.process else '?'}), data in {redis_dir}")
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
                    _say(f"{child.args[2] if len(child.args) > 2 else child.args} exited with {child.returncode}; stopping")
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
