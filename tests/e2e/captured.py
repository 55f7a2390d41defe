"""A server process whose stdout and stderr are kept in files, for tests that read its log."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

from config.serve import server_command
from tests.conftest import BASE_DIR, ServerProcess
from tests.health import wait_until_healthy


class CapturedServer(ServerProcess):
    def __init__(self, kind: str, env: dict[str, str], logs: Path) -> None:
        super().__init__(kind, env)
        self.out = logs / f"{kind}-{self.port}.out"
        self.err = logs / f"{kind}-{self.port}.err"

    def start(self) -> None:
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            command = server_command(self.kind, "127.0.0.1", self.port, self.env)
            self.process = subprocess.Popen(command, cwd=BASE_DIR, env=self.env, stdout=out, stderr=err)
        wait_until_healthy(self.process, self.http, 30, self.kind)

    def output(self) -> str:
        """Everything the process wrote so far, stdout then stderr."""
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")


@contextlib.contextmanager
def captured(server_env: dict[str, str], logs: Path, kind: str = "uvicorn", **extra_env: str) -> Iterator[CapturedServer]:
    """A running CapturedServer with `server_env` and `extra_env`, stopped afterwards."""
    proc = CapturedServer(kind, dict(server_env, **extra_env), logs)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()
