"""StreamConsumer: one WebSocket, many streams (docs/protocol.md "WebSocket: GET /ws/").

Thin by design: decode a frame, check rights, call the hub or `apublish`, encode the
reply. Ordering and gap fill live in the hub; the socket's writes go through an
`Outbox`. The consumer holds no channel-layer channel of its own: the hub's one channel
per process carries every stream (docs/architecture.md "The hot path", step 2).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any
from urllib.parse import parse_qs

from channels.consumer import AsyncConsumer, get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from django.conf import settings

from . import metrics, runtime
from .auth import ANONYMOUS, Principal, from_user, is_backend_publisher, origin_allowed, verify_token
from .errors import BadRequest, Forbidden, RateLimited, RealtimeError, TooLarge, Unauthorized, Unavailable
from .gate import announce, check_client_publish, decoded
from .hub import StreamHub, Subscription
from .names import parse_stream
from .occupancy import occupancy_frame
from .ordering import Start, plan_since
from .outbox import Outbox
from .presence import PRESENCE_KINDS, Presence, members_frame, typing_frame
from .protocol import (
    PONG,
    CloseCode,
    Ping,
    PresenceQuery,
    Publish,
    Subscribe,
    Typing,
    Unsubscribe,
    ack_frame,
    decode_client_frame,
    echo_fields,
    error_frame,
    subscribed_frame,
    unsubscribed_frame,
)
from .publishing import apublish
from .ratelimit import TYPING, TokenBucket, connection_bucket, take_publish
from .rights import may_read

log = logging.getLogger("realtime.ws")

#: Seconds a client may come back early after `retry_after` (clocks and rounding differ).
RETRY_GRACE = 0.05


async def authenticate(scope: dict[str, Any]) -> tuple[Principal, str | None]:
    """Token from the query string, else the session cookie from an acceptable Origin;
    with the session key when the session signed someone in (its socket follows it)."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    if "token" in query:
        return verify_token(query["token"][0]), None
    headers = dict(scope.get("headers", []))
    cookie = headers.get(b"cookie")
    if not cookie:
        return ANONYMOUS, None
    if not origin_allowed(headers.get(b"origin", b"").decode("latin-1"), headers.get(b"host", b"").decode("latin-1")):
        return ANONYMOUS, None  # a session cookie from a foreign page is not a credential
    from django.http.cookie import parse_cookie

    session_key = parse_cookie(cookie.decode("latin-1")).get(settings.SESSION_COOKIE_NAME)
    if not session_key:
        return ANONYMOUS, None
    principal: Principal = await _session_principal(session_key)
    return principal, session_key if principal.signed_in else None


@database_sync_to_async
def _session_principal(session_key: str) -> Principal:
    from importlib import import_module

    from django.contrib.auth import get_user

    class _Request:
        session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)

    return from_user(get_user(_Request()))


class StreamConsumer(AsyncConsumer):
    # No channel-layer channel per socket: an alias that is not configured makes
    # Channels skip new_channel() and its receive task (the hub has the only one).
    channel_layer_alias = "realtime.no-layer"

    #: Set when the token's `exp` passed: nothing more is read or delivered until the close.
    expired = False
    #: The task that closes the socket, once one was started (kept: the loop holds tasks weakly).
    closing: asyncio.Task[None] | None = None
    who: Principal
    #: The session this socket signed in with: it is closed when the session's rights change.
    session_key: str | None = None
    outbox: Outbox
    hub: StreamHub | None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Channels' own loop, less its task per event: with no channel-layer channel the
        client is the one source of events, so each is awaited directly. (Channels'
        `await_many_dispatch` makes a task and an `asyncio.wait` for every event, and
        holds them, about 1.7 KiB, for as long as a socket is idle.)"""
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Run the handler of `message`. An unexpected failure closes with 1011 after the
        cleanup: escaping to the server instead would drop the socket (1006) without
        `websocket_disconnect`, and leave its subscriptions, presence and gauges behind."""
        # Channels 4.2+ hops to a thread for aclose_old_connections() on every event;
        # this consumer touches no database on its path, so it skips that hop.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"no handler for {message['type']}")
        try:
            await handler(message)
        except StopConsumer:
            raise
        except Exception:
            log.exception("unexpected failure on %s; closing the connection with 1011", message.get("type"))
            await self.release()
            with contextlib.suppress(Exception):
                await self.close(CloseCode.INTERNAL_ERROR)
            raise StopConsumer() from None

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        self.subs: dict[str, Subscription] = {}
        self.hub = None
        self.connected = False
        try:
            self.who, self.session_key = await authenticate(self.scope)
        except Unauthorized as exc:
            # Accept, say why, then close: a browser cannot read a refused handshake.
            await self.send({"type": "websocket.accept"})
            await self.send({"type": "websocket.send", "text": error_frame(exc)})
            await self.send({"type": "websocket.close", "code": CloseCode.BAD_TOKEN})
            metrics.ERRORS.labels(exc.code).inc()
            log.info("connection refused: %s", exc)
            return
        await self.send({"type": "websocket.accept"})
        self.connected = True
        self.rt = runtime.current()
        self.outbox = Outbox(self.base_send, settings.RT_OUTBOX_BYTES, self._too_slow)
        limit = settings.RT_BAD_FRAME_LIMIT
        self.abuse_bucket = TokenBucket(limit / 10.0, limit)
        #: When the client may try again after its last `rate_limited` (monotonic clock).
        self.retry_not_before = 0.0
        self.subscribe_bucket = connection_bucket("RT_SUBSCRIBE_RATE", "RT_SUBSCRIBE_BURST")
        self.presence_bucket = connection_bucket("RT_PRESENCE_QUERY_RATE", "RT_PRESENCE_QUERY_BURST")
        self.conn_id = Presence.new_connection_id()
        self.expiry_timer = self._close_at_token_expiry()
        metrics.CONNECTIONS.inc()
        if self.session_key is not None:
            try:
                (await self._hub()).sessions.add(self)
            except Unavailable:
                self.session_key = None  # no hub to follow it: closed, as a guest can be
                await self.close(CloseCode.SERVICE_RESTART)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        await self.release()
        raise StopConsumer()

    async def release(self) -> None:
        """Give back what the connection holds, once, however it ends: its hub
        subscriptions, its presence leases and the gauges."""
        if not getattr(self, "connected", False):
            return
        self.connected = False
        if self.expiry_timer is not None:
            self.expiry_timer.cancel()
        metrics.CONNECTIONS.dec()
        subs, self.subs = list(self.subs.values()), {}
        metrics.SUBSCRIPTIONS.dec(len(subs))
        if self.hub is None:
            return
        if self.session_key is not None:
            self.hub.sessions.discard(self)
        for sub in subs:
            try:
                await self.hub.detach(sub)
                await self._leave(sub.stream)
            except Exception as exc:  # go on with the others; a lease left behind expires
                log.warning("releasing %s failed: %s", sub.stream, exc)

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        if not self.connected or self.outbox.closed or self.expired or self.closing is not None:
            return  # a close is under way: frames still queued would each schedule another
        text = message.get("text")
        if text is None:
            await self.close(CloseCode.UNSUPPORTED_DATA)
            return
        limit = settings.RT_MAX_FRAME
        if len(text) > limit // 4 and len(text.encode()) > limit:
            if len(text.encode()) > 4 * limit:
                await self.close(CloseCode.ABUSE)
                return
            # The whole frame (at most 4x the limit) is parsed to echo `id` and `stream`:
            # a cut-off prefix is not JSON, and the client needs the `id` to match the reply.
            self.fail(TooLarge(f"frame over {limit} bytes"), **echo_fields(text))
            return
        try:
            frame = decode_client_frame(text)
        except RealtimeError as exc:
            self.fail(exc, **echo_fields(text))
            return
        try:
            if isinstance(frame, Publish):
                await self.on_publish(frame)
            elif isinstance(frame, Subscribe):
                await self.on_subscribe(frame)
            elif isinstance(frame, Unsubscribe):
                await self.on_unsubscribe(frame)
            elif isinstance(frame, Ping):
                self.outbox.push(PONG)
            elif isinstance(frame, PresenceQuery):
                await self.on_presence(frame)
            elif isinstance(frame, Typing):
                await self.on_typing(frame)
        except RealtimeError as exc:
            self.fail(exc, id=getattr(frame, "id", None), stream=getattr(frame, "stream", None))

    def fail(self, exc: RealtimeError, id: str | None = None, stream: str | None = None) -> None:
        """Answer a bad request with an `error` frame; a flood of them closes with 4508."""
        metrics.ERRORS.labels(exc.code).inc()
        self.outbox.push(error_frame(exc, id=id, stream=stream))
        if self._counts_as_abuse(exc) and self.abuse_bucket.take() > 0:
            log.info("closing a connection for abuse (too many bad frames)")
            self.closing = asyncio.get_running_loop().create_task(self.close(CloseCode.ABUSE))

    def _counts_as_abuse(self, exc: RealtimeError) -> bool:
        """Every bad frame counts, but a `rate_limited` answer only when the client did not
        wait the `retry_after` it was given before: one that waits is never closed."""
        if not isinstance(exc, RateLimited):
            return True
        now = time.monotonic()
        waited = now >= self.retry_not_before
        self.retry_not_before = now + exc.retry_after - RETRY_GRACE
        return not waited

    async def close(self, code: int, timeout: float | None = 5.0) -> None:
        try:
            await asyncio.wait_for(self.send({"type": "websocket.close", "code": code}), timeout)
        except TimeoutError:
            pass
        except Exception:
            # Stock daphne (autobahn; `manage.py runserver`) refuses codes other than 1000
            # and 3000-4999 and raises; `config.daphne_server`, what `make run` starts, sends
            # them. Without a fallback a binary frame would leave the connection open; 4508
            # says the same as 1003 to a client: reconnecting the same way fails again.
            if code < 3000:
                await self.close(CloseCode.ABUSE if code == CloseCode.UNSUPPORTED_DATA else CloseCode.NORMAL, timeout)

    def _close_at_token_expiry(self) -> asyncio.TimerHandle | None:
        """Extension (docs/protocol.md): a token stops reading when its `exp` passes,
        so a page cannot keep a feed open for hours on a token minted for minutes."""
        exp = self.who.expires_at
        if exp is None:
            return None
        return asyncio.get_running_loop().call_later(max(0.0, exp - time.time()), self._token_expired)

    def _token_expired(self) -> None:
        if not self.connected or self.outbox.closed:
            return
        self.expired = True
        for sub in self.subs.values():
            sub.live = False  # the hub passes nothing more on to it
        exc = Unauthorized("token expired")
        metrics.ERRORS.labels(exc.code).inc()
        self.outbox.push(error_frame(exc))
        log.info("closing a connection whose token expired")

        async def close_after_error() -> None:
            await self.outbox.flush(5.0)  # the client reads why before the close
            await self.close(CloseCode.BAD_TOKEN)

        self.closing = asyncio.get_running_loop().create_task(close_after_error())

    def credentials_changed(self) -> None:
        """The session signed out, or its user's rights changed: nothing more is read or
        delivered, and the socket is closed so that the client reconnects with its new rights."""
        if not self.connected or self.outbox.closed or self.closing is not None:
            return
        self.expired = True
        for sub in self.subs.values():
            sub.live = False
        log.info("closing a session socket whose rights changed (logout, or the user was changed)")
        self.closing = asyncio.get_running_loop().create_task(self.close(CloseCode.SIGNED_OUT))

    def _too_slow(self) -> None:
        metrics.SLOW_CLOSED.inc()
        log.info("closing a connection that fell behind (%d bytes queued)", settings.RT_OUTBOX_BYTES)
        # No timeout: the socket is not writable now (that is why the outbox overflowed),
        # and uvicorn's send waits for writability; a timed-out close was never sent, so
        # the client, once it read again, found the stream silently stopped instead of 4000.
        self.closing = asyncio.get_running_loop().create_task(self.close(CloseCode.TOO_SLOW, None))

    async def _hub(self) -> StreamHub:
        if self.hub is None:
            try:
                self.hub = await self.rt.hub()
            except Exception as exc:
                raise Unavailable.from_exc(exc) from exc
        return self.hub

    # --- frames ---------------------------------------------------------------------------

    async def on_publish(self, frame: Publish) -> None:
        name = parse_stream(frame.stream)
        data = decoded(name, frame.data)
        await check_client_publish(self.who, name, data)
        take_publish(self.who.sender_key, is_backend_publisher(self.who, name))
        done = await apublish(name.full, frame.data, self.who.sender, frame.id)
        self.outbox.push(ack_frame(frame.id, done.stream, done.seq, done.epoch))
        announce(name, data, self.who, done, self._site())

    def _site(self) -> str:
        """The site's address as this client reached it, for links in notifications."""
        headers = dict(self.scope.get("headers", []))
        host = headers.get(b"host", b"localhost").decode("latin-1")
        secure = self.scope.get("scheme") in ("wss", "https")
        return f"{'https' if secure else 'http'}://{host}"

    async def on_subscribe(self, frame: Subscribe) -> None:
        name = parse_stream(frame.stream)
        if frame.history is not None and frame.since is not None:
            raise BadRequest("use either 'history' or 'since', not both")
        if name.full in self.subs:
            raise BadRequest(f"already subscribed to {name.full}")
        self.subscribe_bucket.take_or_raise(f"{settings.RT_SUBSCRIBE_RATE:g} subscribes per second")
        if len(self.subs) >= settings.RT_MAX_STREAMS:
            raise BadRequest(f"at most {settings.RT_MAX_STREAMS} streams per connection")
        if not await may_read(self.who, name):
            raise Forbidden(f"you may not subscribe to {name.full}")
        hub = await self._hub()
        sub = Subscription(name.full, self.outbox.push_event, occupancy=frame.occupancy, owner=self)
        self.subs[name.full] = sub
        try:
            # Register first, then read the backlog, then go live: a message published
            # meanwhile is either in what we read or reaches the hub after registration.
            state = await hub.attach(sub)
            try:
                backlog = self.rt.backlog
                history = min(frame.history or 0, settings.RT_HISTORY_CAP)
                if frame.since is not None:
                    got = await backlog.read(name.full, first=frame.since.seq + 1)
                    start, epoch = plan_since(frame.since, got), got.epoch
                elif history > 0:
                    got = await backlog.read(name.full, first=1, most=history)
                    start, epoch = Start(True, got.frames, got.latest), got.epoch
                else:
                    start, epoch = Start(True, [], state.last), state.epoch
                more, hole = await hub.catch_up_subscriber(state, sub, epoch, start.position)
            except BaseException:
                await hub.detach(sub)
                raise
        except BaseException:
            self.subs.pop(name.full, None)
            raise
        # From here to `live = True` nothing awaits, so the hub cannot pass a frame between.
        push = self.outbox.push
        push(subscribed_frame(name.full, epoch, start.position, start.recovered))
        for text in start.frames:
            push(text)
        for text in more:
            push(text)
        if hole:
            push(subscribed_frame(name.full, state.epoch, state.last, False))
        sub.live = True
        metrics.SUBSCRIPTIONS.inc()
        if self.who.signed_in:  # every kind: distinct users count for occupancy
            try:
                await hub.presence.join(name.full, self._user(), self.conn_id)
            except RealtimeError as exc:
                log.info("presence join of %s failed: %s", name.full, exc)
        if frame.occupancy:
            try:
                push(occupancy_frame(name.full, *await hub.occupancy_now(name.full)))
            except RealtimeError as exc:  # the next change sends the figures
                log.info("occupancy of %s not read: %s", name.full, exc)
        metrics.REPLAYED.inc(len(start.frames) + len(more))
        if not start.recovered or hole:
            metrics.RECOVERIES_REFUSED.inc()

    async def recheck_access(self, stream: str) -> None:
        """The hub asks after a change of rights: a connection that may no longer read
        `stream` gets `forbidden` and `unsubscribed` for it (docs/protocol.md 1.1)."""
        sub = self.subs.get(stream)
        if sub is None or not self.connected or await may_read(self.who, parse_stream(stream)):
            return
        if self.subs.get(stream) is not sub:
            return  # unsubscribed meanwhile
        del self.subs[stream]
        sub.live = False
        metrics.SUBSCRIPTIONS.dec()
        exc = Forbidden(f"you may no longer read {stream}")
        metrics.ERRORS.labels(exc.code).inc()
        self.outbox.push(error_frame(exc, stream=stream))
        self.outbox.push(unsubscribed_frame(stream))
        log.info("a connection lost its right to read %s", stream)
        if self.hub is not None:
            await self.hub.detach(sub)
            await self._leave(stream)

    async def on_unsubscribe(self, frame: Unsubscribe) -> None:
        name = parse_stream(frame.stream)
        self.subscribe_bucket.spend()  # leaving is never refused, but a join-leave loop pays twice
        sub = self.subs.pop(name.full, None)
        if sub is not None and self.hub is not None:
            metrics.SUBSCRIPTIONS.dec()
            await self.hub.detach(sub)
            await self._leave(name.full)
        self.outbox.push(unsubscribed_frame(name.full))

    # --- presence and typing (extensions: docs/protocol.md) -----------------------

    def _user(self) -> dict[str, str]:
        return {"id": self.who.user_id or "", "name": self.who.name or ""}

    async def _leave(self, stream: str) -> None:
        if self.hub is not None and self.who.signed_in:
            await self.hub.presence.leave(stream, self._user(), self.conn_id)

    def _presence_stream(self, stream: str) -> str:
        name = parse_stream(stream)
        if name.kind not in PRESENCE_KINDS:
            raise BadRequest(f"presence is kept for {', '.join(sorted(PRESENCE_KINDS))} streams only")
        if name.full not in self.subs:
            raise BadRequest(f"subscribe to {name.full} first")
        return name.full

    async def on_presence(self, frame: PresenceQuery) -> None:
        stream = self._presence_stream(frame.stream)
        self.presence_bucket.take_or_raise(f"{settings.RT_PRESENCE_QUERY_RATE:g} presence queries per second")
        self.outbox.push(members_frame(stream, *await (await self._hub()).presence.members(stream)))

    async def on_typing(self, frame: Typing) -> None:
        stream = self._presence_stream(frame.stream)
        if not self.who.signed_in:
            raise Forbidden("sign in to type")
        if TYPING.take(self.who.sender_key) > 0:
            return  # typing is best effort: excess signals are dropped, not refused
        await (await self._hub()).presence.announce(stream, typing_frame(stream, self._user()))
