"""daphne, with what the delivery promise needs from the server under it.

- The close code its WebSocket library will not send: docs/protocol.md closes a connection
  that sends a binary frame with 1003; daphne passes an application's close code to
  autobahn's `sendClose`, which accepts only 1000 and 3000-4999 and raises, so under
  stock daphne that close could only be 4508. The protocol here sends other codes itself
  (`sendCloseFrame`, which autobahn uses for its own protocol-level closes).
- A bound for a peer that stops reading: daphne's `send` never waits (every frame goes
  into Twisted's write buffer), so the consumer's outbox never sees a slow socket and the
  buffer would grow without bound. The protocol registers as the transport's push
  producer (Twisted's own back-pressure signal): while Twisted says the buffer is over
  its high-water mark, each send checks the size of that buffer (Twisted keeps it in
  `dataBuffer`/`_tempDataLen`, not behind a public method), and past `RT_OUTBOX_BYTES` the
  rest is dropped and the connection is closed with 4000. autobahn aborts a
  connection whose peer has not answered a close within its close handshake timeout,
  set here to `RT_WS_CLOSE_TIMEOUT` (default 10 s, as under uvicorn, `config.uvicorn_ws`);
  the client recovers with `since`.
- A request body over the limit refused before it is read, as `realtime.body_limit` does
  under uvicorn: Twisted reads a whole body (to a temporary file past 100 KB) before daphne
  calls the application, so the wrapper in config/asgi.py would see it too late. Here a
  declared `Content-Length` over `body_limit(path)` is answered with 413 as soon as the
  headers are in, and a chunked body as soon as it passes the limit; the connection is
  then closed and nothing more of the body is kept.
- A message's frame bytes built once per process (realtime/wire.py) and written as they
  are to every socket (autobahn negotiates no compression unless told to).
- No token in its access log: that log is written without `logging`, so the paths it
  shows go through config.log_redaction here (`/api/...?token=...`).

Run as `python -m config.daphne_server` with daphne's own arguments.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote

from daphne.cli import CommandLineInterface
from daphne.http_protocol import HTTPFactory, WebRequest
from daphne.server import Server
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from django.conf import settings
from twisted.web import http

from config.log_redaction import redact
from realtime.body_limit import body_limit, refusal
from realtime.protocol import CloseCode
from realtime.wire import FRAME

log = logging.getLogger("realtime.server")


class ContractWebSocketProtocol(WebSocketProtocol):
    _paused = False
    _given_up = False

    def onOpen(self) -> None:  # noqa: N802 (autobahn's name)
        # The HTTP channel that upgraded the connection is still the transport's producer.
        self.transport.unregisterProducer()
        self.transport.registerProducer(self, True)
        super().onOpen()

    # Twisted's IPushProducer: told when the write buffer passes its high-water mark.
    def pauseProducing(self) -> None:  # noqa: N802
        self._paused = True

    def resumeProducing(self) -> None:  # noqa: N802
        self._paused = False

    def stopProducing(self) -> None:  # noqa: N802
        self._paused = True

    def serverSend(self, content: str | bytes, binary: bool = False) -> None:  # noqa: N802
        if self._may_send():
            super().serverSend(content, binary)

    def handle_reply(self, message: dict[str, Any]) -> None:
        """A message's shared frame bytes (realtime/wire.py) go out as they are, as
        autobahn's own `sendPreparedMessage` sends an uncompressed prepared message."""
        frame = message.get(FRAME)
        if frame is not None and self.state == self.STATE_OPEN and self._perMessageCompress is None:
            if self._may_send():
                self.sendData(frame.wire())
            return
        super().handle_reply(message)

    def _may_send(self) -> bool:
        """False once the connection fell behind past the bound (and closes it then)."""
        if self._given_up:
            return False
        if self._paused and _buffered(self.transport) > settings.RT_OUTBOX_BYTES:
            self._give_up()
            return False
        return True

    def _give_up(self) -> None:
        from realtime import metrics

        self._given_up = True
        metrics.SLOW_CLOSED.inc()
        log.info("closing a connection that fell behind (%d bytes queued)", settings.RT_OUTBOX_BYTES)
        self.sendCloseFrame(code=CloseCode.TOO_SLOW, isReply=False)

    def serverClose(self, code: int | None = None) -> None:  # noqa: N802 (daphne's name)
        if code is not None and code != 1000 and not 3000 <= code <= 4999:
            self.sendCloseFrame(code=code, isReply=False)
        else:
            super().serverClose(code)


def _buffered(transport: Any) -> int:
    """Bytes waiting in a Twisted TCP transport's write buffer (0 for a transport that
    keeps it elsewhere, such as TLS: there the bound does not apply; TLS is best ended
    at a proxy in front, as docker-compose deployments do)."""
    try:
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen  # type: ignore[no-any-return]
    except AttributeError:
        return 0


class BoundedRequest(WebRequest):
    """daphne's HTTP request, refusing a body over `body_limit(path)` with 413 unread."""

    _limit = 0
    _received = 0
    _refused = False

    def gotLength(self, length: int | None) -> None:  # noqa: N802 (Twisted's name)
        # Called once the headers are in (length None: chunked). The request target is
        # still only on the channel (Twisted's `_path`) until the body is complete.
        target: bytes = self.channel._path.split(b"?", 1)[0]
        self._limit = body_limit(unquote(target.decode("latin-1")))
        if length is not None and length > self._limit:
            self._refuse()
        else:
            super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:  # noqa: N802
        if self._refused:
            return
        self._received += len(data)
        if self._received > self._limit:
            self._refuse()
        else:
            super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:  # noqa: N802
        if not self._refused:
            super().requestReceived(command, path, version)

    def _refuse(self) -> None:
        """Answer 413 on the transport and close: the request never reaches the application."""
        self._refused = True
        channel = self.channel
        # Twisted would answer `Expect: 100-continue` after this, inviting the body.
        self.requestHeaders.removeHeader(b"Expect")
        status, body = refusal(self._limit)
        channel.transport.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (status, http.RESPONSES[status], len(body), body)
        )
        channel.loseConnection()
        peer = channel.transport.getPeer()
        self.server.log_action(
            "http",
            "complete",
            {
                "path": channel._path.decode("ascii", "replace"),
                "status": status,
                "method": channel._command.decode("ascii", "replace"),
                "client": f"{peer.host}:{peer.port}" if hasattr(peer, "host") else None,
                "time_taken": 0,
                "size": len(body),
            },
        )


class BoundedHTTPFactory(HTTPFactory):
    """daphne's HTTP factory, whose connections make `BoundedRequest`s."""

    def buildProtocol(self, addr: Any) -> http.HTTPChannel:  # noqa: N802 (Twisted's name)
        protocol: http.HTTPChannel = super().buildProtocol(addr)
        protocol.requestFactory = BoundedRequest
        return protocol


class ContractServer(Server):
    """daphne's server, building its HTTP requests and WebSocket connections from the classes above."""

    @property
    def http_factory(self) -> HTTPFactory:
        return self._http_factory

    @http_factory.setter
    def http_factory(self, factory: HTTPFactory) -> None:
        # `run()` assigns daphne's factory, which keeps nothing but the server: one that
        # builds bounded requests serves in its place.
        self._http_factory = BoundedHTTPFactory(factory.server)

    @property
    def ws_factory(self) -> WebSocketFactory:
        return self._ws_factory

    @ws_factory.setter
    def ws_factory(self, factory: Any) -> None:
        factory.protocol = ContractWebSocketProtocol
        factory.setProtocolOptions(closeHandshakeTimeout=settings.RT_WS_CLOSE_TIMEOUT)
        self._ws_factory = factory

    def log_action(self, protocol: str, action: str, details: dict[str, Any]) -> None:
        if isinstance(details.get("path"), str):
            details = {**details, "path": redact(details["path"])}
        super().log_action(protocol, action, details)


class ContractCommandLine(CommandLineInterface):
    server_class = ContractServer


if __name__ == "__main__":
    ContractCommandLine.entrypoint()
