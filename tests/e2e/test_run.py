"""`make run` (config.serve): serves, answers a WebSocket ping, stops without orphans,
finds its data again, several processes on one REDIS_URL form a cluster, archive
retention runs at start and again after a failure, a PORT that is not a number is
refused with a message, and the data directory and the embedded Redis are its owner's only."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil
import pytest
import redis

from config.embedded_redis import EmbeddedRedis, free_port
from config.interrupt import default_sigint
from config.serve import PeriodicCommand
from tests.health import wait_until_healthy
from tests.wsclient import Client

BASE_DIR = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def start_run(data_dir: Path, port: int, **env: str) -> subprocess.Popen[bytes]:
    full_env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "RT_KEY_PREFIX")}
    full_env.update(RT_DATA_DIR=str(data_dir), PORT=str(port), RT_ARCHIVER="0", LOG_LEVEL="WARNING", **env)
    # SIGINT at its default whatever ours is (a backgrounded `make test` ignores it).
    proc = subprocess.Popen([sys.executable, "-m", "config.serve"], cwd=BASE_DIR, env=full_env, preexec_fn=default_sigint)
    try:
        wait_until_healthy(proc, f"http://127.0.0.1:{port}", 60, "make run")
    except AssertionError:
        proc.kill()
        raise
    return proc


def descendants(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    return psutil.Process(proc.pid).children(recursive=True)


def gone(processes: list[psutil.Process], timeout: float = 15) -> bool:
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    return not alive


async def ping(port: int) -> dict[str, object]:
    client = await Client.connect(f"ws://127.0.0.1:{port}/ws/")
    try:
        return await client.request({"type": "ping"})
    finally:
        await client.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_run_serves_and_stops_without_orphans(tmp_path: Path, sig: int) -> None:
    port = free_port()
    proc = start_run(tmp_path, port)
    kids = descendants(proc)
    names = {p.name() for p in kids}
    assert any("redis-server" in n for n in names), names
    assert await ping(port) == {"type": "pong"}
    assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
    proc.send_signal(sig)
    assert proc.wait(30) == 0
    assert gone(kids), [p for p in kids if p.is_running()]


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.setsid()  # a group of its own, as a terminal's job: Ctrl-C goes to the whole group


async def test_make_run_started_with_sigint_ignored_stops_on_ctrl_c(tmp_path: Path) -> None:
    """`make run &` from a script: SIGINT arrives ignored; Ctrl-C (SIGINT to the group) still
    stops the server and its children, and make exits 0."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "RT_KEY_PREFIX", "MAKEFLAGS", "MAKELEVEL")}
    env.update(RT_DATA_DIR=str(tmp_path), PORT=str(port), RT_ARCHIVER="0", LOG_LEVEL="WARNING")
    proc = subprocess.Popen(["make", "--no-print-directory", "run"], cwd=BASE_DIR, env=env, preexec_fn=_ignore_sigint)
    try:
        wait_until_healthy(proc, f"http://127.0.0.1:{port}", 90, "make run")
        kids = descendants(proc)
        assert any("redis-server" in p.name() for p in kids), [p.name() for p in kids]
        assert await ping(port) == {"type": "pong"}
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(30) == 0
        assert gone(kids), [p for p in kids if p.is_running()]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


async def test_run_finds_its_data_after_a_crash(tmp_path: Path) -> None:
    port = free_port()
    proc = start_run(tmp_path, port)
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "RT_KEY_PREFIX")}
    seed = subprocess.run(
        [sys.executable, "manage.py", "publish", "room:persist", '{"text": "kept"}'],
        cwd=BASE_DIR, env={**env, "RT_DATA_DIR": str(tmp_path)}, capture_output=True, text=True,
    )
    assert seed.returncode == 0, seed.stderr
    client = await Client.connect(f"ws://127.0.0.1:{port}/ws/")
    first = await client.subscribe("room:persist")
    await client.close()
    kids = descendants(proc)
    proc.kill()  # no cleanup at all: the children follow their parent (PR_SET_PDEATHSIG)
    proc.wait()
    assert gone(kids)
    proc = start_run(tmp_path, port)
    client = await Client.connect(f"ws://127.0.0.1:{port}/ws/")
    again = await client.subscribe("room:persist")
    await client.close()
    assert again["epoch"] == first["epoch"]
    assert again["seq"] == first["seq"] == 1
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


async def test_two_runs_on_one_redis_form_a_cluster(tmp_path: Path, redis_server: EmbeddedRedis) -> None:
    ports = [free_port(), free_port()]
    env = {"REDIS_URL": redis_server.url, "RT_KEY_PREFIX": "cluster" + str(ports[0])}
    procs = [start_run(tmp_path, port, **env) for port in ports]
    try:
        assert not any("redis-server" in p.name() for proc in procs for p in descendants(proc))
        sub = await Client.connect(f"ws://127.0.0.1:{ports[1]}/ws/")
        await sub.subscribe("room:both")
        import jwt

        from tests.tokens import mint

        secret = (tmp_path / "rt_token_secret.secret").read_text().strip()
        token = mint(secret=secret, sub="7", name="seven")
        assert jwt.decode(token, secret, algorithms=["HS256"])["sub"] == "7"
        pub = await Client.connect(f"ws://127.0.0.1:{ports[0]}/ws/?token={token}")
        ack = await pub.request({"type": "publish", "stream": "room:both", "data": {"text": "hi"}, "id": "x"})
        assert ack["type"] == "ack", ack
        [msg] = await sub.messages("room:both", 1)
        assert msg["data"] == {"text": "hi"} and msg["sender"] == {"id": "7", "name": "seven"}
        await sub.close()
        await pub.close()
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            assert proc.wait(30) == 0


_OLD_AND_NEW_ROWS = """
import time
from realtime.models import ArchivedMessage
now = int(time.time() * 1000)
ArchivedMessage.objects.create(stream="room:old", epoch="e", seq=1, ts=now - 400 * 86_400_000, data={"text": "old"})
ArchivedMessage.objects.create(stream="room:old", epoch="e", seq=2, ts=now, data={"text": "new"})
"""


def archived_seqs(data_dir: Path) -> list[int]:
    with sqlite3.connect(data_dir / "db.sqlite3") as db:
        return [seq for (seq,) in db.execute("SELECT seq FROM realtime_archivedmessage ORDER BY seq")]


async def test_run_applies_archive_retention_at_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "RT_KEY_PREFIX")}
    env.update(RT_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="config.settings")
    for command in (["migrate", "--noinput", "-v", "0"], ["shell", "-c", _OLD_AND_NEW_ROWS]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=BASE_DIR, env=env, check=True)
    assert archived_seqs(tmp_path) == [1, 2]
    proc = start_run(tmp_path, free_port())
    try:
        deadline = time.monotonic() + 30
        while archived_seqs(tmp_path) != [2] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert archived_seqs(tmp_path) == [2]  # past RT_ARCHIVE_DAYS_ROOM (365): deleted; recent: kept
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


def test_a_failing_periodic_command_is_reported_and_run_again(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    script = f"open({str(runs)!r}, 'a').write('x'); raise SystemExit(3)"
    job = PeriodicCommand("flaky", [sys.executable, "-c", script], os.environ, interval=0.3)
    try:
        deadline = time.monotonic() + 30
        while (not runs.exists() or len(runs.read_text()) < 2) and time.monotonic() < deadline:
            job.tick()
            time.sleep(0.05)
        assert len(runs.read_text()) >= 2  # failed once, then ran again at its next turn
        assert "[run] flaky failed with exit code 3" in capsys.readouterr().out
    finally:
        job.stop()


def test_run_refuses_a_port_that_is_not_a_number(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(RT_DATA_DIR=str(tmp_path), PORT="eighty")
    done = subprocess.run([sys.executable, "-m", "config.serve"], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert "PORT='eighty': expected a port number" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "redis").exists()  # refused before starting anything


def _modes(data_dir: Path) -> dict[str, str]:
    return {str(p.relative_to(data_dir)): oct(p.stat().st_mode & 0o777) for p in [data_dir, *data_dir.rglob("*")]}


async def test_run_keeps_its_data_private_and_its_redis_behind_a_password(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    left_before = data_dir / "rt_token_secret.secret"  # as a run under a loose umask left it
    left_before.write_text(secrets.token_urlsafe(48))
    left_before.chmod(0o644)
    port = free_port()
    out = tmp_path / "run.out"
    full_env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "RT_KEY_PREFIX")}
    full_env.update(RT_DATA_DIR=str(data_dir), PORT=str(port), RT_ARCHIVER="0", LOG_LEVEL="INFO")
    with open(out, "wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "config.serve"], cwd=BASE_DIR, env=full_env, preexec_fn=default_sigint,
            stdout=sink, stderr=subprocess.STDOUT,
        )
    try:
        wait_until_healthy(proc, f"http://127.0.0.1:{port}", 60, "make run")
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
        assert await ping(port) == {"type": "pong"}
        modes = _modes(data_dir)
        for name in (".", "db.sqlite3", "rt_token_secret.secret", "django_secret_key.secret", "demo-password.txt",
                     "redis", "redis/appendonly.aof", "redis/password", "redis/url"):
            assert name in modes, (name, modes)
        loose = {name: mode for name, mode in modes.items() if int(mode, 8) & 0o077}
        assert loose == {}, loose
        assert modes["."] == modes["redis"] == "0o700" and modes["redis/appendonly.aof"] == "0o600"

        password = (data_dir / "redis" / "password").read_text().strip()
        url = (data_dir / "redis" / "url").read_text().strip()
        assert url == f"redis://:{password}@127.0.0.1:{urlsplit(url).port}/0" and len(password) >= 32
        with socket.create_connection(("127.0.0.1", urlsplit(url).port), timeout=5) as anonymous:
            anonymous.sendall(b"PING\r\n")
            assert anonymous.recv(100).startswith(b"-NOAUTH")
        assert redis.Redis.from_url(url).ping() is True
        # a command run beside it (settings read the URL file) reaches it with the password
        published = subprocess.run(
            [sys.executable, "manage.py", "publish", "room:private", '{"text": "hi"}'],
            cwd=BASE_DIR, env={**full_env, "DJANGO_SETTINGS_MODULE": "config.settings"}, capture_output=True, text=True,
        )
        assert published.returncode == 0, published.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    printed = out.read_text()
    assert "embedded Redis redis://127.0.0.1:" in printed, printed
    assert password not in printed

    proc = start_run(data_dir, free_port())  # a second run reuses the password
    try:
        assert (data_dir / "redis" / "password").read_text().strip() == password
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
