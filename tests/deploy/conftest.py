"""docker-compose.yml run for real, once per module that asks for `stack` (or brings up
a stack of its own with `compose_stack`, as ha_profile.py does with the `ha` profile).

The engine: Debian's docker.io started by hand (deploy/engine.sh), once per test run, and
stopped at the end if this run started it. The base images: stand-ins made by
deploy/base-images.sh (cached), unless RT_DEPLOY_BASE_IMAGES=pull asks for the real ones
from a registry; they and the app and proxy images are built once per test run. Then each
stack comes up under a project name of its own, and at the end it goes down with its
volumes, leaving nothing of it on the engine. Every step prints a progress line; the
output of each command is kept in a log file named in the line.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from config.embedded_redis import free_port

BASE = Path(__file__).resolve().parents[2]
DOCKER = "/usr/bin/docker"  # Debian's client, matching Debian's dockerd
PREFIX = "rtdeploy"
SERVICES = ("redis", "web1", "web2", "archiver", "proxy")
HA_SERVICES = ("redis-replica", "sentinel1", "sentinel2", "sentinel3")  # the `ha` profile
# The `cluster` profile's nodes (its cluster-init runs once and exits: not watched).
CLUSTER_SERVICES = tuple(f"redis-node{n}" for n in range(1, 7))


class Progress:
    """Lines on the terminal as the run goes (pytest's capture is set aside for each)."""

    def __init__(self, config: pytest.Config) -> None:
        self.capture = config.pluginmanager.getplugin("capturemanager")
        self.started = time.monotonic()

    def __call__(self, text: str) -> None:
        line = f"[deploy {time.monotonic() - self.started:6.1f}s] {text}"
        if self.capture is None:
            print(line, flush=True)
            return
        with self.capture.global_and_fixture_disabled():
            print(line, flush=True)


@pytest.fixture(scope="session")
def progress(request: pytest.FixtureRequest) -> Progress:
    return Progress(request.config)


def run(command: Sequence[str], log: Path, *, env: dict[str, str] | None = None, timeout: float = 600,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `command`, its output appended to `log`; on failure the error names the log and quotes its end."""
    with log.open("a") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        done = subprocess.run(command, cwd=BASE, env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    if check and done.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-25:])
        raise AssertionError(f"{command[0]} {' '.join(command[1:3])} exited with {done.returncode}; {log}:\n{tail}")
    return done


def output(command: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    done = subprocess.run(command, cwd=BASE, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(command)}: {done.stderr.strip()}"
    return done.stdout


@pytest.fixture(scope="session")
def container_engine(tmp_path_factory: pytest.TempPathFactory, progress: Progress) -> Iterator[Path]:
    """A running dockerd; skips only when none can run here. Yields the directory of logs."""
    logs = tmp_path_factory.mktemp("deploy-logs")
    engine = str(BASE / "deploy/engine.sh")
    if os.geteuid() != 0 and subprocess.run([DOCKER, "info"], capture_output=True).returncode != 0:
        pytest.skip("no container engine: not root, so none can be installed or started, and none answers")
    progress(f"installing docker.io, docker-compose and mmdebstrap where missing (log: {logs / 'engine.log'})")
    run([engine, "install"], logs / "engine.log", timeout=900)
    started = subprocess.run([engine, "start", str(logs / "dockerd")], capture_output=True, text=True, timeout=120)
    answer = started.stdout.strip()
    if started.returncode == 3 and answer.startswith("unusable:"):
        pytest.skip(f"no container engine can run here: {answer.removeprefix('unusable:').strip()}")
    assert started.returncode == 0, f"deploy/engine.sh start: {started.stdout}{started.stderr}"
    pid = int(answer.split()[1]) if answer.startswith("started ") else None
    progress(f"dockerd started by this run, pid {pid}" if pid else "dockerd was already running: left as it is")
    try:
        yield logs
    finally:
        if pid is not None:
            progress(f"stopping dockerd {pid}")
            subprocess.run([engine, "stop", str(pid)], timeout=60)


@dataclass
class Stack:
    """One compose project, reached only through the proxy's published port."""

    project: str
    env: dict[str, str]
    port: int
    logs: Path
    net: str = "172.30.57"
    replicas: dict[str, str] = field(default_factory=dict)  # "address:port" -> service
    profiles: tuple[str, ...] = ()
    services: tuple[str, ...] = SERVICES

    @property
    def flags(self) -> list[str]:
        """`--profile NAME` for each profile: `ps`, `logs` and `down` see those services too."""
        return [arg for profile in self.profiles for arg in ("--profile", profile)]

    @property
    def command(self) -> list[str]:
        return ["docker-compose", "-p", self.project, *self.flags]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/"

    def compose(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run([*self.command, *args], self.logs / "compose.log", env=self.env, timeout=timeout, check=check)

    def compose_output(self, *args: str) -> str:
        return output([*self.command, *args], env=self.env)

    def container(self, service: str) -> str:
        ids = self.compose_output("ps", "-q", service).split()
        assert len(ids) == 1, (service, ids)
        return ids[0]

    def inspect(self, service: str) -> dict:  # type: ignore[type-arg]
        return json.loads(output([DOCKER, "inspect", self.container(service)]))[0]  # type: ignore[no-any-return]

    def address(self, service: str) -> str:
        """The container's address on the compose network (`docker inspect`)."""
        networks = self.inspect(service)["NetworkSettings"]["Networks"]
        assert len(networks) == 1, (service, list(networks))
        return next(iter(networks.values()))["IPAddress"]  # type: ignore[no-any-return]

    def replica(self, upstream: str) -> str:
        """The service that answered, from the proxy's X-Upstream header (the last address
        tried is the one that answered)."""
        return self.replicas[upstream.split(",")[-1].strip()]


def compose_env(port: int) -> dict[str, str]:
    """This environment, the generated secrets, the published address, and pip settings
    only where they name something a build can reach (not a path on this machine)."""
    env = dict(os.environ)
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
        if name in env and not env[name].startswith(("http://", "https://")):
            del env[name]
    env.update(
        RT_TOKEN_SECRET=secrets.token_urlsafe(48),
        DJANGO_SECRET_KEY=secrets.token_urlsafe(48),
        RT_HTTP_PORT=f"127.0.0.1:{port}",
        COMPOSE_DOCKER_CLI_BUILD="0",  # docker-compose's own builder, whichever docker CLI is on the PATH
        DOCKER_BUILDKIT="0",
    )
    return env


def projects_left(env: dict[str, str]) -> set[str]:
    """Compose projects of earlier runs of this test that still have something on the engine."""
    names: set[str] = set()
    label = '{{ .Label "com.docker.compose.project" }}'
    for kind in ("container ls -a", "network ls", "volume ls"):
        listed = output([DOCKER, *kind.split(), "--filter", "label=com.docker.compose.project", "--format", label], env=env)
        names |= {n for n in listed.split() if n.startswith(PREFIX)}
    return names


def wait_healthy(stack: Stack, progress: Progress, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    seen: dict[str, str] = {}
    while True:
        states = {}
        for service in stack.services:
            state = stack.inspect(service)["State"]
            assert state["Status"] == "running", f"{service} is {state['Status']} (exit {state.get('ExitCode')}); logs in {stack.logs}"
            states[service] = state.get("Health", {}).get("Status", "none")
        if states != seen:
            progress("health: " + ", ".join(f"{k} {v}" for k, v in states.items()))
            seen = states
        if all(v == "healthy" for v in states.values()):
            return
        assert time.monotonic() < deadline, f"not healthy within {seconds:g} s: {states}"
        time.sleep(1)


@pytest.fixture(scope="session")
def images(container_engine: Path, progress: Progress) -> Path:
    """The base images, then the app and proxy images, made once per test run. Returns the directory of logs."""
    assert shutil.which("docker-compose"), "docker-compose is missing after deploy/engine.sh install"
    logs = container_engine
    env = compose_env(free_port())
    if env.get("RT_DEPLOY_BASE_IMAGES") == "pull":
        build = ["build", "--force-rm", "--pull"]
        progress("base images: pulled from the registry (RT_DEPLOY_BASE_IMAGES=pull)")
    else:
        build = ["build", "--force-rm"]
        progress(f"base images: stand-ins made with mmdebstrap where missing (log: {logs / 'base-images.log'})")
        started = time.monotonic()
        with (logs / "base-images.log").open("w") as log:
            making = subprocess.Popen([str(BASE / "deploy/base-images.sh")], cwd=BASE, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
            assert making.stdout is not None
            for line in making.stdout:  # its own progress lines, as they come
                log.write(line)
                if line.startswith("[base-images]"):
                    progress(line.removeprefix("[base-images] ").rstrip())
            assert making.wait(1500) == 0, f"deploy/base-images.sh failed: see {logs / 'base-images.log'}"
        progress(f"base images ready in {time.monotonic() - started:.0f} s")
    progress(f"docker-compose build (log: {logs / 'compose.log'})")
    started = time.monotonic()
    run(["docker-compose", "-p", f"{PREFIX}build", *build], logs / "compose.log", env=env, timeout=1500)
    progress(f"images built in {time.monotonic() - started:.0f} s")
    return logs


@contextlib.contextmanager
def compose_stack(logs: Path, progress: Progress, *, profiles: tuple[str, ...] = (),
                  env: dict[str, str] | None = None) -> Iterator[Stack]:
    """A project of its own brought up from the built images (with `profiles`, and `env`
    over the generated environment), healthy; down with its volumes at the end."""
    port = free_port()
    stack = Stack(project=f"{PREFIX}{uuid.uuid4().hex[:8]}", env={**compose_env(port), **(env or {})}, port=port,
                  logs=logs, profiles=profiles)
    stack.net = stack.env.get("RT_NET", stack.net)
    stack.replicas = {f"{stack.net}.11:8000": "web1", f"{stack.net}.12:8000": "web2"}
    if "ha" in profiles:
        stack.services = SERVICES + HA_SERVICES
    if "cluster" in profiles:
        stack.services = SERVICES + CLUSTER_SERVICES
    for old in sorted(projects_left(stack.env)):
        progress(f"removing {old}, left by an earlier run")
        run(["docker-compose", "-p", old, *stack.flags, "down", "-v", "--remove-orphans"], logs / "compose.log",
            env=stack.env)
    try:
        progress(f"{' '.join(stack.command)} up -d, proxy on {stack.base} (log: {logs / 'compose.log'})")
        started = time.monotonic()
        stack.compose("up", "-d", timeout=300)
        wait_healthy(stack, progress)
        progress(f"every service is healthy, {time.monotonic() - started:.0f} s after up")
        yield stack
    finally:
        with contextlib.suppress(Exception):
            (logs / f"{stack.project}.log").write_text(stack.compose_output("logs", "--no-color", "--timestamps"))
        progress(f"{' '.join(stack.command)} down -v (service logs: {logs / (stack.project + '.log')})")
        stack.compose("down", "-v", "--remove-orphans", "--timeout", "10", check=False)
        left = projects_left(stack.env) & {stack.project}
        running = output([DOCKER, "ps", "-q", "--filter", f"label=com.docker.compose.project={stack.project}"])
        assert not left and not running.strip(), f"{stack.project} left behind: {left} {running}"
        progress(f"nothing of {stack.project} is left on the engine")


@pytest.fixture(scope="module")
def stack(images: Path, progress: Progress) -> Iterator[Stack]:
    with compose_stack(images, progress) as up:
        yield up
