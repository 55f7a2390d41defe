"""daphne, with what the delivery promise needs from the server under it.

- The close code its WebSocket library will not send: PROTOCOL.md closes a connection
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

Run as `python -m config.daphne_server` with daphne's own arguments.
"""

from __future__ import annotations

import logging
from typing import Any

from daphne.cli import CommandLineInterface
from daphne.server import Server
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from django.conf import settings

from realtime.protocol import CloseCode

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
        if self._given_up:
            return
        if self._paused and _buffered(self.transport) > settings.RT_OUTBOX_BYTES:
            self._give_up()
            return
        super().serverSend(content, binary)

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


class ContractServer(Server):  # type: ignore[misc]
    """daphne's server, building its WebSocket connections from the protocol above."""

    @property
    def ws_factory(self) -> WebSocketFactory:
        return self._ws_factory

    @ws_factory.setter
    def ws_factory(self, factory: Any) -> None:
        factory.protocol = ContractWebSocketProtocol
        factory.setProtocolOptions(closeHandshakeTimeout=settings.RT_WS_CLOSE_TIMEOUT)
        self._ws_factory = factory


class ContractCommandLine(CommandLineInterface):  # type: ignore[misc]
    server_class = ContractServer


if __name__ == "__main__":
    ContractCommandLine.entrypoint()
