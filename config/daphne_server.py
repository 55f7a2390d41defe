"""daphne, with the one close code its WebSocket library will not send.

PROTOCOL.md closes a connection that sends a binary frame with 1003. daphne passes an
application's close code to autobahn's `sendClose`, which accepts only 1000 and
3000-4999 and raises on anything else, so under stock daphne that close could only be
4508. Here daphne's protocol sends the other codes itself (`sendCloseFrame`, which
autobahn uses for its own protocol-level closes). Run as `python -m config.daphne_server`
with daphne's own arguments.
"""

from __future__ import annotations

from typing import Any

from daphne.cli import CommandLineInterface
from daphne.server import Server
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol


class ContractWebSocketProtocol(WebSocketProtocol):
    def serverClose(self, code: int | None = None) -> None:  # noqa: N802 (daphne's name)
        if code is not None and code != 1000 and not 3000 <= code <= 4999:
            self.sendCloseFrame(code=code, isReply=False)
        else:
            super().serverClose(code)


class ContractServer(Server):  # type: ignore[misc]
    """daphne's server, building its WebSocket connections from the protocol above."""

    @property
    def ws_factory(self) -> WebSocketFactory:
        return self._ws_factory

    @ws_factory.setter
    def ws_factory(self, factory: Any) -> None:
        factory.protocol = ContractWebSocketProtocol
        self._ws_factory = factory


class ContractCommandLine(CommandLineInterface):  # type: ignore[misc]
    server_class = ContractServer


if __name__ == "__main__":
    ContractCommandLine.entrypoint()
