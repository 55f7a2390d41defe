"""Another site that embeds the notification feed: `make demo-embed` (docs/embed.md).

It serves, from its own port and so from another origin than the realtime server, a page
with the one-tag embed and the two small endpoints such a site's backend needs:

- `GET /token`: a fresh token for the person the page shows, minted with PyJWT and the
  shared secret (`{"token": JWT}`), which the widget fetches before `exp` and after a 4501;
- `POST /notify`: sends that person a notification through the server's HTTP API, with a
  token whose `pubs` grant allows it, as the site's backend would on a real event.

The widget's token lives in the page's JavaScript, where any script of the page can read
it, so it grants no more than reading the feed: `subs: ["user:<id>"]` and no `sub` (a
`sub` would count as that user signed in, free to post in chat rooms as them).

A local demo, listening on a loopback address only (it refuses any other): `/token` checks
no session (it mints for the configured user whoever asks) and `/notify` has no CSRF
protection. It answers 403 to a request whose Host is not 127.0.0.1 or localhost with its
port, so that a page of another site cannot reach it through a DNS name pointed at
127.0.0.1 (DNS rebinding). A real site checks its own session in the first and protects
the second like any other form.

Only the standard library and PyJWT, so that it reads like what another team would write.
"""

from __future__ import annotations

import argparse
import html
import ipaddress
import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt

BASE_DIR = Path(__file__).resolve().parent.parent


def shared_secret() -> str:
    """RT_TOKEN_SECRET, else the one `make run` generated into the data directory."""
    secret = os.environ.get("RT_TOKEN_SECRET")
    if secret:
        return secret
    path = Path(os.environ.get("RT_DATA_DIR", BASE_DIR / "var")) / "rt_token_secret.secret"
    if not path.exists():
        raise SystemExit(f"{path} does not exist: start the server once with `make run`, or set RT_TOKEN_SECRET.")
    return path.read_text().strip()


@dataclass
class HostConfig:
    server: str  # the realtime server's origin, e.g. http://127.0.0.1:8000
    secret: str
    user_id: str = "1"  # the person this site shows as signed in
    ttl: int = 300  # seconds a minted token lives
    pages: dict[str, str] = field(default_factory=dict)  # more pages, by path

    def mint(self, **claims: object) -> str:
        """A token with `claims`; `iat` lets the widget measure its life on its own clock."""
        now = int(time.time())
        return jwt.encode({"iat": now, "exp": now + self.ttl, **claims}, self.secret, algorithm="HS256")

    def feed_token(self) -> str:
        """The widget's token: reads the person's feed and read position, nothing more."""
        return self.mint(subs=[f"user:{self.user_id}"])

    def embed_tag(self, classic: bool = False, **attrs: str) -> str:
        """The tag that embeds the widget: a classic `<script>`, or `type="module"`."""
        attrs = {"user": self.user_id, **attrs}  # the token has no `sub` to name the feed
        extra = "".join(f' data-{k.replace("_", "-")}="{html.escape(v)}"' for k, v in attrs.items())
        src = html.escape(self.server.rstrip("/") + "/static/realtime/embed.js")
        kind = "" if classic else ' type="module"'
        return f'<script{kind} src="{src}" data-token-url="/token"{extra}></script>'


PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Another site</title>
  <link rel="icon" href="data:,">
  <style>
    body {{ margin: 0; font: 17px/1.5 Georgia, serif; background: #fbf7ef; color: #3b2f2f; }}
    header {{ display: flex; align-items: center; justify-content: space-between; gap: 1rem;
      padding: .75rem 1rem; background: #3b2f2f; color: #fbf7ef; }}
    main {{ max-width: 36rem; margin: 1.5rem auto; padding: 0 1rem; }}
    button {{ font: inherit; padding: .5rem 1rem; border: 2px solid #3b2f2f; background: #f3c969; cursor: pointer; }}
  </style>
</head>
<body>
  <header><strong>Another site</strong> {embed}</header>
  <main>
    <h1>A page on another origin</h1>
    <p>The bell comes from {server}: one script tag, a token minted by this site's backend
      for user {user_id}, styles kept apart by a shadow root.</p>
    <form method="post" action="/notify"><button type="submit">Send me a notification</button></form>
  </main>
</body>
</html>
"""


def require_loopback(host: str) -> None:
    """ValueError unless `host` is a loopback address: the demo mints tokens for anyone who asks."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"refusing to listen on {host!r}: this demo mints feed tokens for whoever asks, so it listens on 127.0.0.1 only"
        )


class HostHandler(BaseHTTPRequestHandler):
    server: HostServer

    def _host_allowed(self) -> bool:
        """Only our own name for ourselves: another name pointed at 127.0.0.1 is DNS rebinding."""
        if self.headers.get("Host", "") in self.server.host_names:
            return True
        self._send(403, "text/plain", b"forbidden: unexpected Host header")
        return False

    def do_GET(self) -> None:
        if not self._host_allowed():
            return
        config = self.server.config
        path = self.path.split("?", 1)[0]
        if path == "/":
            page = PAGE.format(embed=config.embed_tag(classic=True, align="end"), server=html.escape(config.server), user_id=html.escape(config.user_id))
            self._send(200, "text/html; charset=utf-8", page.encode())
        elif path == "/token":
            # A real site checks its own session here and mints for that person only.
            self.server.tokens += 1
            self._send(200, "application/json", json.dumps({"token": config.feed_token()}).encode())
        elif path in config.pages:
            self._send(200, "text/html; charset=utf-8", config.pages[path].encode())
        else:
            self._send(404, "text/plain", b"not found")

    def do_POST(self) -> None:
        # No CSRF token: a demo on 127.0.0.1. A real site protects this like any other form.
        if not self._host_allowed():
            return
        if self.path != "/notify":
            self._send(404, "text/plain", b"not found")
            return
        config = self.server.config
        self.server.sent += 1
        body = {"data": {"title": f"Hello #{self.server.sent}", "body": "Sent by the other site's backend.", "url": config.server}}
        request = urllib.request.Request(
            f"{config.server}/api/streams/user:{config.user_id}/messages",
            data=json.dumps(body).encode(),
            headers={"Authorization": "Bearer " + config.mint(pubs=[f"user:{config.user_id}"]), "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10):
                pass
        except urllib.error.HTTPError as refused:
            self._send(502, "text/plain", f"the realtime server refused the notification: {refused.code} {refused.read()[:300]!r}".encode())
            return
        except OSError as exc:  # URLError, refused connection, timeout
            self._send(502, "text/plain", f"the realtime server at {config.server} cannot be reached: {exc}".encode())
            return
        self.send_response(303)
        self.send_header("Location", "/")
        self.end_headers()

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the terminal shows what to open


class HostServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], config: HostConfig) -> None:
        require_loopback(address[0])
        super().__init__(address, HostHandler)
        self.config = config
        port = self.server_address[1]
        #: The Host headers answered: this server by its loopback names.
        self.host_names = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}
        self.sent = 0  # notifications sent with the button
        self.tokens = 0  # tokens minted

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def serve_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="embed-host", daemon=True)
        thread.start()
        return thread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("EMBED_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("EMBED_PORT", "8001")))
    parser.add_argument("--server", default=os.environ.get("EMBED_SERVER", "http://127.0.0.1:8000"), help="the realtime server")
    parser.add_argument("--user", default=os.environ.get("EMBED_USER", "1"), help="user id whose feed the page shows")
    parser.add_argument("--ttl", type=int, default=300, help="seconds each minted token lives")
    args = parser.parse_args()
    # Ctrl-C stops it even when started in the background, where SIGINT comes in ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        require_loopback(args.host)
    except ValueError as exc:
        raise SystemExit(f"embed_host: {exc}") from None
    config = HostConfig(server=args.server.rstrip("/"), secret=shared_secret(), user_id=args.user, ttl=args.ttl)
    httpd = HostServer((args.host, args.port), config)
    try:
        print(f"Another site: open {httpd.url}/ (the feed of user {config.user_id}, from {config.server})")
        print("Press 'Send me a notification' there, or from server code: feed.notify(user, title, body).")
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()
