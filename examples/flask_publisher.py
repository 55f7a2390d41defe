"""Another site's backend talking to the realtime server, in plain Python: Flask + PyJWT.

It holds the shared secret, so it mints its own tokens (PROTOCOL.md "Tokens") and publishes
with the HTTP API (PROTOCOL.md "HTTP"); it never touches Redis or Django.

    RT_SERVER_URL=http://127.0.0.1:8000 RT_TOKEN_SECRET=... flask --app examples/flask_publisher.py run -p 5001
    curl -X POST localhost:5001/rooms/lobby/announce -H 'content-type: application/json' -d '{"text": "hi"}'
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import jwt
from flask import Flask, jsonify, request

TOKEN_TTL = 60  # seconds: a publish needs the token for one request only


def mint_token(secret: str, ttl: int = TOKEN_TTL, **claims: Any) -> str:
    """An HS256 JWT the realtime server accepts; `exp` is required there."""
    return jwt.encode({"exp": int(time.time()) + ttl, **claims}, secret, algorithm="HS256")


def post_json(url: str, body: dict[str, Any], token: str) -> tuple[int, dict[str, Any]]:
    """POST with a bearer token; the server answers errors as JSON too, so both are returned."""
    data = json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as failed:
        text = failed.read()
        try:
            return failed.code, json.loads(text)
        except ValueError:  # not the server's JSON: a proxy's error page, say
            return 502, upstream_error(f"{failed.code} from {url}: {text[:200]!r}")
    except OSError as exc:  # URLError, refused connection, timeout
        return 502, upstream_error(f"{url} cannot be reached: {exc}")


def upstream_error(message: str) -> dict[str, Any]:
    """The realtime server's error shape, for failures that never reached it."""
    return {"error": {"code": "upstream", "message": message}}


def create_app(server_url: str | None = None, secret: str | None = None) -> Flask:
    app = Flask(__name__)
    app.config["RT_SERVER_URL"] = (server_url or os.environ.get("RT_SERVER_URL", "http://127.0.0.1:8000")).rstrip("/")
    app.config["RT_TOKEN_SECRET"] = secret or os.environ["RT_TOKEN_SECRET"]

    @app.post("/rooms/<room>/announce")
    def announce(room: str) -> Any:
        """Publish the posted text to room:<room>; a retried request (same X-Request-Id) is stored once."""
        stream = f"room:{room}"
        token = mint_token(app.config["RT_TOKEN_SECRET"], sub="flask-site", name="Flask site", pubs=[stream])
        body = {"data": {"text": (request.get_json(silent=True) or {}).get("text", "")}}
        body["id"] = request.headers.get("X-Request-Id") or uuid.uuid4().hex
        status, answer = post_json(f"{app.config['RT_SERVER_URL']}/api/streams/{stream}/messages", body, token)
        return jsonify(answer), status

    @app.get("/token/<user_id>")
    def browser_token(user_id: str) -> Any:
        """A token for the browser to embed the feed: it may read user:<id> and nothing more
        (no `sub`: a token with one counts as that user signed in, who may write in rooms)."""
        return jsonify(token=mint_token(app.config["RT_TOKEN_SECRET"], ttl=3600, subs=[f"user:{user_id}"]))

    return app


if __name__ == "__main__":
    create_app().run(port=int(os.environ.get("PORT", "5001")))
