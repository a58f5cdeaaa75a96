"""daphne as this project runs it (`manage.py serve`): close codes that work, and a goodbye.

Three changes to stock daphne, all about telling clients what to do:

* The application may close with 1001, 1011 and 1013. daphne closes through autobahn's
  `sendClose`, which accepts only 1000 and 3000-4999 and raises on anything else, so a
  consumer's "try again later" (1013) would never reach the client.
* A message over the size cap is closed with 1009; stock daphne drops the connection (1006).
* On SIGTERM or SIGINT every open WebSocket is closed with 1001 (going away). Stock daphne
  drops its sockets, so clients see 1006 and cannot tell a deploy from a crash. The reactor
  keeps running for SHUTDOWN_GRACE_SECONDS so the close frames leave before the exit.
"""

from __future__ import annotations

import logging

from daphne.cli import CommandLineInterface
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from realtime.protocol import CloseCode

logger = logging.getLogger("realtime.connection")

# Long enough to flush a close frame to every client, short next to systemd's 90 s stop timeout.
SHUTDOWN_GRACE_SECONDS = 1.0
# Codes RFC 6455 lets a server send that autobahn's sendClose refuses.
SERVER_CLOSE_CODES = frozenset(
    {CloseCode.GOING_AWAY, CloseCode.INTERNAL_ERROR, CloseCode.TRY_AGAIN_LATER}
)


class ChatWebSocketProtocol(WebSocketProtocol):
    def serverClose(self, code: int | None = None) -> None:  # daphne's method name
        if code in SERVER_CLOSE_CODES:
            self.sendCloseFrame(code=int(code), isReply=False)
        else:
            super().serverClose(code)


class GracefulServer(Server):
    def run(self) -> None:
        # run() builds ws_factory and then starts the reactor; no socket can arrive before
        # the reactor runs, so swapping the protocol class here covers every connection.
        reactor.callWhenRunning(self._use_chat_protocol)
        reactor.addSystemEventTrigger("before", "shutdown", self.close_websockets)
        super().run()

    def _use_chat_protocol(self) -> None:
        self.ws_factory.protocol = ChatWebSocketProtocol
        # autobahn drops the TCP connection on an oversized message unless told otherwise;
        # the client should read 1009 (message too big) rather than an unexplained 1006.
        self.ws_factory.setProtocolOptions(failByDrop=False)

    def close_websockets(self) -> Deferred:
        """Send 1001 to every open socket, then give the frames time to leave."""
        open_sockets = [
            protocol
            for protocol in list(self.connections)
            if isinstance(protocol, WebSocketProtocol) and protocol.state == protocol.STATE_OPEN
        ]
        for protocol in open_sockets:
            protocol.sendCloseFrame(code=int(CloseCode.GOING_AWAY), isReply=False)
        logger.info("shutting down: closed %d sockets with 1001", len(open_sockets))
        return deferLater(reactor, SHUTDOWN_GRACE_SECONDS if open_sockets else 0, lambda: None)


class GracefulCommandLineInterface(CommandLineInterface):
    server_class = GracefulServer
