"""daphne as this project runs it (`manage.py serve`): bounded output, and a goodbye.

What it changes in stock daphne (docs/deployment.md lists what plain `daphne` lacks):

* Every socket's unsent output is bounded. Stock daphne hands each message to the transport
  at once, so a client that keeps sending but never reads makes the server buffer without
  limit (its pings keep arriving, so the ping timeout never fires). Here, once the
  transport's buffer is full (Twisted pauses its producer past 64 KiB), a socket may queue
  OUTPUT_MAX_BYTES or OUTPUT_MAX_FRAMES more before it is closed with 4010 and dropped.
* A message over the size cap is closed with 1009; stock daphne drops the connection (1006).
* On SIGTERM or SIGINT every open WebSocket is closed with 1001 (going away). Stock daphne
  drops its sockets, so clients see 1006 and cannot tell a deploy from a crash. The reactor
  keeps running for SHUTDOWN_GRACE_SECONDS so the close frames leave before the exit.
* The access log leaves out query strings (realtime.accesslog).

The application itself only ever closes with 1000 or 4000-4999, which stock daphne sends too.
"""

from __future__ import annotations

import logging
from typing import Any

from daphne.access import AccessLogGenerator
from daphne.cli import CommandLineInterface
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from realtime import metrics
from realtime.accesslog import QuerylessAccessLogGenerator
from realtime.conf import realtime_settings
from realtime.protocol import CloseCode

logger = logging.getLogger("realtime.connection")

# Long enough to flush a close frame to every client, short next to systemd's 90 s stop timeout.
SHUTDOWN_GRACE_SECONDS = 1.0


class ChatWebSocketProtocol(WebSocketProtocol):
    """daphne's WebSocket protocol, with its unsent output bounded.

    It is the transport's streaming producer: Twisted calls pauseProducing() when more than
    its buffer size (64 KiB) waits to be written to the client, and resumeProducing() when
    all of it was written. What the application sends in between is counted; past the
    bounds the socket is closed with 4010 and, since a client that does not read will not
    answer the close either, dropped when autobahn's close handshake times out.
    """

    output_paused = False
    pending_bytes = 0
    pending_frames = 0

    def onOpen(self) -> None:
        super().onOpen()
        # daphne's HTTP channel made itself the transport's producer before the upgrade and
        # stays registered, ignoring pauses mid-request: this protocol takes its place.
        self.transport.unregisterProducer()
        self.transport.registerProducer(self, True)

    def pauseProducing(self) -> None:
        self.output_paused = True

    def resumeProducing(self) -> None:
        self.output_paused = False
        self.pending_bytes = self.pending_frames = 0

    def stopProducing(self) -> None:
        self.output_paused = False

    def handle_reply(self, message: dict[str, Any]) -> None:
        if message["type"] == "websocket.send":
            if self.state != self.STATE_OPEN and self.state != self.STATE_CONNECTING:
                # Closing: the frame could not be sent (autobahn would raise); drop it.
                return
            if self.output_paused and not self._within_bounds(message):
                self._close_slow_client()
                return
        super().handle_reply(message)

    def _within_bounds(self, message: dict[str, Any]) -> bool:
        # Characters for text: a cheap lower bound of the UTF-8 size, good enough for a cap.
        self.pending_bytes += len(message.get("text") or message.get("bytes") or b"")
        self.pending_frames += 1
        limits = realtime_settings()
        return (
            self.pending_bytes <= limits.OUTPUT_MAX_BYTES
            and self.pending_frames <= limits.OUTPUT_MAX_FRAMES
        )

    def _close_slow_client(self) -> None:
        logger.warning(
            "ws slow client close code=%d addr=%s pending_bytes=%d pending_frames=%d",
            CloseCode.SLOW_CLIENT,
            self.client_addr[0] if self.client_addr else "-",
            self.pending_bytes,
            self.pending_frames,
        )
        metrics.count_close(CloseCode.SLOW_CLIENT)
        self.sendCloseFrame(code=int(CloseCode.SLOW_CLIENT), isReply=False)


class GracefulServer(Server):
    # daphne's (untyped): the callable its protocols report actions to, or None.
    action_logger: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # daphne's CLI builds its stock access log (--access-log), which writes query strings:
        # same stream, our lines (realtime.accesslog).
        if type(self.action_logger) is AccessLogGenerator:
            self.action_logger = QuerylessAccessLogGenerator(self.action_logger.stream)

    def run(self) -> None:
        # run() builds ws_factory and then starts the reactor; no socket can arrive before
        # the reactor runs, so swapping the protocol class here covers every connection.
        reactor.callWhenRunning(self._use_chat_protocol)
        # Twisted's interfaces declare methods without `self`, so without the zope plugin
        # mypy reads "before" as self and every later argument one place off.
        reactor.addSystemEventTrigger("before", "shutdown", self.close_websockets)  # type: ignore[arg-type]
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
            metrics.count_close(CloseCode.GOING_AWAY)
            protocol.sendCloseFrame(code=int(CloseCode.GOING_AWAY), isReply=False)
        logger.info("shutting down: closed %d sockets with 1001", len(open_sockets))
        return deferLater(reactor, SHUTDOWN_GRACE_SECONDS if open_sockets else 0, lambda: None)


class GracefulCommandLineInterface(CommandLineInterface):
    server_class = GracefulServer
