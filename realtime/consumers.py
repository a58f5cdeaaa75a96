"""The chat consumer: one socket per client for all of its rooms (docs/protocol.md).

Thin on purpose: each frame is rate-limited, parsed and validated (realtime.protocol),
authorized and carried out by a service or selector, and answered. Everything the consumer
keeps is per connection: the rooms this socket joined, its rate limiter, its error count.

Failures never crash the process. A bad frame gets an `error` frame and the socket stays
open (until MAX_PROTOCOL_ERRORS: 4400). A Redis or database failure while handling a frame
gets `error: unavailable`; a failure of the channel layer's receive loop (Redis down) closes
the socket with 1013, and the client's reconnect is served once Redis is back.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from config.backends import BACKEND_ERRORS
from realtime import groups, protocol, selectors, services
from realtime.conf import realtime_settings
from realtime.exceptions import RoomForbidden, RoomNotFound
from realtime.handshake import client_address, header, select_subprotocol
from realtime.protocol import CloseCode, ErrorCode, ProtocolError
from realtime.ratelimit import FrameRateLimiter, Verdict

connection_logger = logging.getLogger("realtime.connection")
protocol_logger = logging.getLogger("realtime.protocol")


class ChatConsumer(AsyncJsonWebsocketConsumer):
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        except BACKEND_ERRORS as exc:
            # Raised by the channel layer's receive loop, outside any frame handler.
            connection_logger.error(
                "ws channel layer failed user=%s conn=%s error=%s",
                scope["user"].pk,
                getattr(self, "conn_id", "-"),
                type(exc).__name__,
            )
            await self._abort(CloseCode.TRY_AGAIN_LATER)
            if getattr(self, "accepted", False):
                self._log_disconnect(CloseCode.TRY_AGAIN_LATER)

    # --- Lifecycle -----------------------------------------------------------------------------

    async def connect(self) -> None:
        limits = realtime_settings()
        self.user = self.scope["user"]
        self.conn_id = self.channel_name.rsplit("!", 1)[-1][:12]
        self.connected_at = time.monotonic()
        self.accepted = False
        self.closing = False
        # Room slug -> ids of the messages sent in `joined`, whose live copies are dropped.
        self.rooms: dict[str, frozenset[int]] = {}
        self.protocol_errors = 0
        self.limiter = FrameRateLimiter(
            burst=limits.RATE_BURST,
            per_second=limits.RATE_PER_SECOND,
            strikes_before_close=limits.RATE_STRIKES_BEFORE_CLOSE,
        )
        try:
            await self.channel_layer.group_add(groups.user_group(self.user.pk), self.channel_name)
        except BACKEND_ERRORS as exc:
            connection_logger.error(
                "ws connect failed user=%s addr=%s error=%s",
                self.user.pk,
                client_address(self.scope),
                type(exc).__name__,
            )
            await self._abort(CloseCode.TRY_AGAIN_LATER)
            return
        await self.accept(subprotocol=select_subprotocol(self.scope))
        connection_logger.info(
            "ws connect user=%s addr=%s origin=%r auth=%s conn=%s",
            self.user.pk,
            client_address(self.scope),
            (header(self.scope, b"origin") or "")[:200] or None,
            self.scope["auth_method"],
            self.conn_id,
        )

    async def accept(self, subprotocol: str | None = None, headers: Any = None) -> None:
        await super().accept(subprotocol=subprotocol, headers=headers)
        self.accepted = True

    async def close(self, code: int | None = None, reason: str | None = None) -> None:
        self.closing = True
        await super().close(code=code, reason=reason)

    async def disconnect(self, code: int) -> None:
        if not self.accepted:
            return
        for group in [groups.user_group(self.user.pk), *map(groups.room_group, self.rooms)]:
            await self._discard(group)
        self._log_disconnect(code)

    def _log_disconnect(self, code: int) -> None:
        connection_logger.info(
            "ws disconnect user=%s code=%s duration=%.1fs rooms=%d conn=%s",
            self.user.pk,
            code,
            time.monotonic() - self.connected_at,
            len(self.rooms),
            self.conn_id,
        )

    async def _abort(self, code: CloseCode) -> None:
        """Close after a backend failure, accepting first so the client sees the code."""
        if getattr(self, "closing", False):
            return
        try:
            if not getattr(self, "accepted", False):
                await self.accept(subprotocol=select_subprotocol(self.scope))
            await self.close(code)
        except Exception:  # the peer may already be gone; nothing left to tell it
            connection_logger.debug("close after failure not delivered", exc_info=True)

    async def _discard(self, group: str) -> None:
        """Leave a group; on failure the group entry expires and events for it are ignored."""
        try:
            await self.channel_layer.group_discard(group, self.channel_name)
        except BACKEND_ERRORS as exc:
            connection_logger.warning(
                "ws group discard failed user=%s group=%s error=%s",
                self.user.pk,
                group,
                type(exc).__name__,
            )

    # --- Client frames -------------------------------------------------------------------------

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        if self.closing:
            return
        verdict = self.limiter.check()
        if verdict is Verdict.CLOSE:
            connection_logger.warning(
                "ws rate limit close user=%s conn=%s", self.user.pk, self.conn_id
            )
            await self.close(CloseCode.RATE_LIMITED)
            return
        if verdict is Verdict.DROP:
            await self.send_error(
                ErrorCode.RATE_LIMITED, "Slow down; this frame was dropped.", None
            )
            return
        frame: protocol.ClientFrame | None = None
        try:
            frame = protocol.parse_frame(text_data, bytes_data)
            # `type` is one of the schema's literals, so this names a handle_* method below.
            await getattr(self, f"handle_{frame.type}")(frame)
        except ProtocolError as exc:
            await self.send_error(exc.code, exc.message, exc.ref)
        except BACKEND_ERRORS as exc:
            protocol_logger.error(
                "ws frame failed user=%s conn=%s error=%s",
                self.user.pk,
                self.conn_id,
                type(exc).__name__,
            )
            await self.send_error(
                ErrorCode.UNAVAILABLE, "Service unavailable; retry later.", frame and frame.ref
            )
        except Exception:
            protocol_logger.exception(
                "ws frame crashed user=%s conn=%s", self.user.pk, self.conn_id
            )
            await self.send_error(
                ErrorCode.INTERNAL, "Internal error; retry later.", frame and frame.ref
            )

    async def handle_join(self, frame: protocol.Join) -> None:
        if (
            frame.room not in self.rooms
            and len(self.rooms) >= realtime_settings().MAX_ROOMS_PER_CONNECTION
        ):
            raise ProtocolError(
                ErrorCode.TOO_MANY_ROOMS, "Leave a room before joining another.", frame.ref
            )
        group = groups.room_group(frame.room)
        # Join the group before reading history: a message stored after the read is then
        # certain to arrive live, and one in both places is dropped by id (see chat_message).
        await self.channel_layer.group_add(group, self.channel_name)
        try:
            history = await database_sync_to_async(selectors.room_join_snapshot)(
                user=self.user, slug=frame.room, limit=realtime_settings().HISTORY_LIMIT
            )
        except (RoomNotFound, RoomForbidden) as exc:
            if frame.room not in self.rooms:
                await self._discard(group)
            self.rooms.pop(frame.room, None)
            raise self._room_error(exc, frame) from None
        self.rooms[frame.room] = frozenset(message["id"] for message in history)
        await self.send_frame(protocol.joined_frame(frame.room, history, frame.ref))

    async def handle_leave(self, frame: protocol.Leave) -> None:
        if self.rooms.pop(frame.room, None) is None:
            raise ProtocolError(
                ErrorCode.NOT_JOINED, "This socket has not joined that room.", frame.ref
            )
        await self._discard(groups.room_group(frame.room))
        await self.send_frame(protocol.left_frame(frame.room, frame.ref))

    async def handle_send(self, frame: protocol.Send) -> None:
        if frame.room not in self.rooms:
            raise ProtocolError(
                ErrorCode.NOT_JOINED, "Join the room before sending to it.", frame.ref
            )
        try:
            payload = await database_sync_to_async(services.message_post)(
                author=self.user, slug=frame.room, body=frame.body
            )
        except (RoomNotFound, RoomForbidden) as exc:
            # Access was lost since the join: this socket leaves the room too.
            self.rooms.pop(frame.room, None)
            await self._discard(groups.room_group(frame.room))
            raise self._room_error(exc, frame) from None
        await self.send_frame(protocol.ack_frame(payload["id"], frame.ref))
        try:
            await groups.broadcast_message(payload)
        except BACKEND_ERRORS as exc:
            # Stored and acknowledged: members get it from history when they rejoin.
            connection_logger.error(
                "ws broadcast failed room=%s message=%s error=%s",
                frame.room,
                payload["id"],
                type(exc).__name__,
            )

    async def handle_ping(self, frame: protocol.Ping) -> None:
        await self.send_frame(protocol.pong_frame(frame.ref))

    @staticmethod
    def _room_error(exc: Exception, frame: protocol.Join | protocol.Send) -> ProtocolError:
        if isinstance(exc, RoomNotFound):
            return ProtocolError(ErrorCode.NOT_FOUND, "No such room.", frame.ref)
        return ProtocolError(ErrorCode.FORBIDDEN, "This room is for its members only.", frame.ref)

    # --- Group events (handler names follow the event type: "chat.message" -> chat_message) ---

    async def chat_message(self, event: dict[str, Any]) -> None:
        # Drop live copies of messages `joined` already carried. Matching ids rather than
        # comparing with the newest one: on PostgreSQL a lower id may commit after a higher one,
        # and would otherwise be dropped although the history never held it.
        in_history = self.rooms.get(event["room"])
        if in_history is not None and event["id"] not in in_history:
            await self.send(text_data=event["text"])

    async def room_closed(self, event: dict[str, Any]) -> None:
        await self._leave_by_server(event["room"], "room_deleted")

    async def membership_revoked(self, event: dict[str, Any]) -> None:
        if event["room"] not in self.rooms:
            return
        try:
            await database_sync_to_async(selectors.room_get_readable)(
                user=self.user, slug=event["room"]
            )
        except RoomNotFound:
            # Deleting a room deletes its memberships first, so their revocations arrive
            # before room.closed: the room being gone is the reason the client needs.
            await self._leave_by_server(event["room"], "room_deleted")
        except RoomForbidden:
            await self._leave_by_server(event["room"], "membership_revoked")

    async def session_end(self, event: dict[str, Any]) -> None:
        connection_logger.info(
            "ws session ended user=%s reason=%s conn=%s",
            self.user.pk,
            event["reason"],
            self.conn_id,
        )
        await self.close(CloseCode.FORBIDDEN)

    async def _leave_by_server(self, room: str, reason: str) -> None:
        if self.rooms.pop(room, None) is None:
            return
        await self._discard(groups.room_group(room))
        await self.send_frame(protocol.left_frame(room, None, reason=reason))

    # --- Replies -------------------------------------------------------------------------------

    async def send_frame(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=protocol.encode(frame))

    async def send_error(self, code: ErrorCode, message: str, ref: str | None) -> None:
        protocol_logger.warning(
            "ws error frame code=%s user=%s ref=%r conn=%s", code, self.user.pk, ref, self.conn_id
        )
        await self.send_frame(protocol.error_frame(code, message, ref))
        if code in protocol.VIOLATIONS:
            self.protocol_errors += 1
            if self.protocol_errors >= realtime_settings().MAX_PROTOCOL_ERRORS:
                connection_logger.warning(
                    "ws protocol violation close user=%s conn=%s", self.user.pk, self.conn_id
                )
                await self.close(CloseCode.PROTOCOL_VIOLATION)
