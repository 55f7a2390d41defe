"""Stopping the processes a test fixture started: by their PIDs, never by a pattern."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterable


def stop_processes(processes: Iterable[subprocess.Popen[bytes]]) -> None:
    """Stop processes this fixture started, by their PIDs: SIGCONT (one may be paused),
    SIGTERM, and SIGKILL for any still running after 10 s."""
    started = list(processes)
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)
            process.terminate()
    for process in started:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
