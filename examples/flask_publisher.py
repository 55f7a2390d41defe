"""Another site's backend talking to the realtime server, in plain Python: Flask + PyJWT.

It holds the shared secret, so it mints its own tokens (docs/protocol.md "Tokens") and publishes
with the HTTP API (docs/protocol.md "HTTP"); it never touches Redis or Django.

Whoever holds a token minted here has what its claims grant, so the two routes decide
carefully who gets one:

- `GET /rt-token`: the signed-in person's own feed token, for the embedded widget. The
  person comes from this site's session (its own sign-in sets `session["user_id"]`),
  never from the request, and the id must be a plain id: a `*` in a `subs` pattern
  would read every feed.
- `POST /rooms/<room>/announce`: a service endpoint for this site's other backends (a
  Celery task, a cron job), so it takes a shared secret, `Authorization: Bearer
  $ANNOUNCE_SECRET`, rather than a browser session that a cross-site form could ride on.
  Without ANNOUNCE_SECRET set it refuses every request.

    RT_SERVER_URL=http://127.0.0.1:8000 RT_TOKEN_SECRET=... FLASK_SECRET_KEY=... ANNOUNCE_SECRET=... \\
        flask --app examples/flask_publisher.py run -p 5001
    curl -X POST localhost:5001/rooms/lobby/announce -H "Authorization: Bearer $ANNOUNCE_SECRET" \\
        -H 'content-type: application/json' -d '{"text": "hi"}'
"""

from __future__ import annotations

import hmac
import json
import os
import re
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import jwt
from flask import Flask, jsonify, request, session

TOKEN_TTL = 60  # seconds: a publish needs the token for one request only
BROWSER_TOKEN_TTL = 600  # the widget fetches a fresh one before `exp`
PLAIN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # no `*`, `:` or `.`: one feed, never a pattern
ROOM_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # docs/protocol.md "Streams"


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


def refused(status: int, code: str, message: str) -> tuple[Any, int]:
    """An answer in the realtime server's error shape."""
    return jsonify(error={"code": code, "message": message}), status


def service_caller_allowed(expected: str | None) -> bool:
    """The request carries `Authorization: Bearer <expected>` (compared in constant time)."""
    given = request.headers.get("Authorization", "")
    if not expected or not given.startswith("Bearer "):
        return False
    return hmac.compare_digest(given.removeprefix("Bearer ").encode(), expected.encode())


def create_app(server_url: str | None = None, secret: str | None = None, *,
               session_key: str | None = None, announce_secret: str | None = None) -> Flask:
    app = Flask(__name__)
    app.config["RT_SERVER_URL"] = (server_url or os.environ.get("RT_SERVER_URL", "http://127.0.0.1:8000")).rstrip("/")
    app.config["RT_TOKEN_SECRET"] = secret or os.environ["RT_TOKEN_SECRET"]
    app.config["SECRET_KEY"] = session_key or os.environ["FLASK_SECRET_KEY"]  # signs this site's session
    app.config["ANNOUNCE_SECRET"] = announce_secret or os.environ.get("ANNOUNCE_SECRET")
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"

    @app.post("/rooms/<room>/announce")
    def announce(room: str) -> Any:
        """Publish the posted text to room:<room>; a retried request (same X-Request-Id) is stored once."""
        if not service_caller_allowed(app.config["ANNOUNCE_SECRET"]):
            return refused(403, "forbidden", "announce needs Authorization: Bearer <ANNOUNCE_SECRET>")
        if not ROOM_NAME.fullmatch(room):
            return refused(400, "bad_request", "not a room name")
        stream = f"room:{room}"
        token = mint_token(app.config["RT_TOKEN_SECRET"], sub="flask-site", name="Flask site", pubs=[stream])
        body = {"data": {"text": (request.get_json(silent=True) or {}).get("text", "")}}
        body["id"] = request.headers.get("X-Request-Id") or uuid.uuid4().hex
        status, answer = post_json(f"{app.config['RT_SERVER_URL']}/api/streams/{stream}/messages", body, token)
        return jsonify(answer), status

    @app.get("/rt-token")
    def browser_token() -> Any:
        """A token for the browser to embed the signed-in person's feed: it may read
        user:<id> and nothing more (no `sub`: a token with one counts as that user signed
        in, who may write in rooms)."""
        user_id = session.get("user_id")
        if user_id is None:
            return refused(403, "forbidden", "sign in first")
        user_id = str(user_id)
        if not PLAIN_ID.fullmatch(user_id):
            return refused(400, "bad_request", "the session's user id is not a plain id")
        token = mint_token(app.config["RT_TOKEN_SECRET"], ttl=BROWSER_TOKEN_TTL, subs=[f"user:{user_id}"])
        response = jsonify(token=token)
        response.headers["Cache-Control"] = "no-store"
        return response

    return app


if __name__ == "__main__":
    create_app().run(port=int(os.environ.get("PORT", "5001")))
