"""examples/embed_host.py, the demo site that embeds the feed: it mints tokens for whoever
asks, so it listens on loopback only and answers only requests addressed to it by its
loopback names (a DNS name pointed at 127.0.0.1 is a rebinding attack)."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from examples.embed_host import HostConfig, HostServer, require_loopback

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def host() -> Iterator[HostServer]:
    httpd = HostServer(("127.0.0.1", 0), HostConfig(server="http://127.0.0.1:9", secret="s" * 32, user_id="7"))
    httpd.serve_in_thread()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def ask(httpd: HostServer, method: str, path: str, host_header: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", httpd.server_address[1], timeout=10)
    try:
        connection.putrequest(method, path, skip_host=True)
        connection.putheader("Host", host_header)
        connection.putheader("Content-Length", "0")
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_requests_by_another_host_name_are_refused_and_mint_nothing(host: HostServer) -> None:
    port = host.server_address[1]
    for wrong in (f"rebind.example:{port}", "rebind.example", f"127.0.0.1:{port + 1}", "127.0.0.1", ""):
        assert ask(host, "GET", "/token", wrong)[0] == 403, wrong
        assert ask(host, "GET", "/", wrong)[0] == 403, wrong
        assert ask(host, "POST", "/notify", wrong)[0] == 403, wrong
    assert host.tokens == 0 and host.sent == 0

    for right in (f"127.0.0.1:{port}", f"localhost:{port}"):
        status, body = ask(host, "GET", "/token", right)
        assert status == 200 and b'"token"' in body, right
        assert ask(host, "GET", "/", right)[0] == 200
    assert host.tokens == 2


@pytest.mark.parametrize("address", ["0.0.0.0", "192.0.2.10", "::", "example.com", ""])
def test_it_refuses_to_listen_on_anything_but_loopback(address: str) -> None:
    with pytest.raises(ValueError, match="127.0.0.1 only"):
        require_loopback(address)
    with pytest.raises(ValueError, match="refusing to listen"):
        HostServer((address, 0), HostConfig(server="http://127.0.0.1:9", secret="s" * 32))


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.2", "localhost", "::1"])
def test_loopback_addresses_are_allowed(address: str) -> None:
    require_loopback(address)


@pytest.mark.slow
def test_the_command_stops_with_a_clear_error_on_a_public_address() -> None:
    env = {**os.environ, "RT_TOKEN_SECRET": "s" * 32}
    done = subprocess.run(
        [sys.executable, "-m", "examples.embed_host", "--host", "0.0.0.0", "--port", "0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode != 0
    assert "refusing to listen on '0.0.0.0'" in done.stderr
    assert "Another site: open" not in done.stdout


def test_a_notification_the_server_does_not_take_is_answered_502_with_why(host: HostServer) -> None:
    """The fixture's realtime server (port 9) does not listen: the demo says so."""
    status, body = ask(host, "POST", "/notify", f"127.0.0.1:{host.server_address[1]}")
    assert status == 502 and b"cannot be reached" in body


@pytest.mark.slow  # starts the demo host as a process of its own
def test_ctrl_c_stops_the_command_even_when_started_with_sigint_ignored() -> None:
    """`make demo-embed &` from a script: SIGINT comes in ignored, and Ctrl-C still stops it."""
    env = {**os.environ, "RT_TOKEN_SECRET": "s" * 32, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "examples.embed_host", "--port", "0"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        assert proc.stdout is not None
        assert "Another site: open" in proc.stdout.readline()  # serving
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
