"""Waiting for a server process the tests started to answer its health check."""

from __future__ import annotations

import contextlib
import subprocess
import time

import httpx


def wait_until_healthy(process: subprocess.Popen[bytes], base: str, seconds: float, what: str) -> None:
    """Until `base`/healthz answers 200; fails at once if `process` exits meanwhile."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{what} exited with {process.returncode}"
        with contextlib.suppress(httpx.HTTPError):  # not listening yet
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"{what} did not serve {base}/healthz within {seconds:g} s")
