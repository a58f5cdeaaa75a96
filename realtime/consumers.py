"""The chat consumer: one socket per client for all of its rooms (docs/protocol.md).

Thin on purpose: each frame is rate-limited, parsed and validated (realtime.protocol),
authorized and carried out by a service or selector, and answered. Everything the consumer
keeps is per connection: its grant (user, session, expiry), the rooms it joined, its rate
limiter, its error count.

Failures never crash the process. A bad frame gets an `error` frame and the socket stays
open (until MAX_PROTOCOL_ERRORS: 4400). A Redis or database failure while handling a frame
gets `error: unavailable`; a failure of the channel layer's receive loop (Redis down) closes
the socket with 4013, and the client's reconnect is served once Redis is back. Every close
goes through `close()`, which hands daphne the plain int it requires (protocol.wire_code).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from config.backends import BACKEND_ERRORS
from realtime import groups, protocol, selectors, services
from realtime.conf import realtime_settings
from realtime.connections import Admission, Slot
from realtime.exceptions import RoomForbidden, RoomNotFound, SessionEnded
from realtime.handshake import client_address, header, select_subprotocol
from realtime.local import local_sockets
from realtime.middleware import Grant, HandshakeRefused, grant_for_access_token
from realtime.protocol import CloseCode, ErrorCode, ProtocolError
from realtime.ratelimit import FrameRateLimiter, Verdict

connection_logger = logging.getLogger("realtime.connection")
protocol_logger = logging.getLogger("realtime.protocol")
security_logger = logging.getLogger("realtime.security")

# session.end reasons after which the account must not come back (4403, not 4103).
_ACCOUNT_GONE = frozenset({"account_disabled", "account_deleted"})


@dataclass(frozen=True, slots=True)
class JoinedRoom:
    id: int
    # Ids of the messages sent in `joined`, whose live copies are dropped.
    in_history: frozenset[int]


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
                self._forget()
                self._log_disconnect(CloseCode.TRY_AGAIN_LATER)

    # --- Lifecycle -----------------------------------------------------------------------------

    async def connect(self) -> None:
        limits = realtime_settings()
        self.user = self.scope["user"]
        self.grant: Grant = self.scope["grant"]
        self.conn_id = self.channel_name.rsplit("!", 1)[-1][:12]
        self.connected_at = time.monotonic()
        self.accepted = False
        self.closing = False
        # Joined rooms by slug (frames name rooms by slug) and by id (group events do).
        self.rooms: dict[str, JoinedRoom] = {}
        self.room_slugs: dict[int, str] = {}
        self.protocol_errors = 0
        self.limiter = FrameRateLimiter(
            burst=limits.RATE_BURST,
            per_second=limits.RATE_PER_SECOND,
            strikes_before_close=limits.RATE_STRIKES_BEFORE_CLOSE,
        )
        self.slot = Slot(self.channel_name, self.user.pk, client_address(self.scope))
        self.expiry: asyncio.TimerHandle | None = None
        self.expiring: asyncio.Task[None] | None = None
        local = local_sockets()
        try:
            admission = await local.slots.acquire(self.slot)
            if admission is not Admission.ADMITTED:
                await self._refuse_over_cap(admission)
                return
            try:
                await local.add(self)
                await self.channel_layer.group_add(
                    groups.user_group(self.user.pk), self.channel_name
                )
            except BACKEND_ERRORS:
                self._forget()
                await self._release_slot()
                raise
        except BACKEND_ERRORS as exc:
            connection_logger.error(
                "ws connect failed user=%s addr=%s error=%s",
                self.user.pk,
                self.slot.address,
                type(exc).__name__,
            )
            await self._abort(CloseCode.TRY_AGAIN_LATER)
            return
        await self.accept(subprotocol=select_subprotocol(self.scope))
        self._schedule_expiry()
        connection_logger.info(
            "ws connect user=%s addr=%s origin=%r auth=%s conn=%s",
            self.user.pk,
            self.slot.address,
            (header(self.scope, b"origin") or "")[:200] or None,
            self.grant.method,
            self.conn_id,
        )

    async def _refuse_over_cap(self, admission: Admission) -> None:
        security_logger.warning(
            "ws refused reason=%s user=%s addr=%s",
            admission.value,
            self.user.pk,
            self.slot.address,
        )
        await self.accept(subprotocol=select_subprotocol(self.scope))
        await self.close(CloseCode.TOO_MANY_CONNECTIONS)

    async def accept(self, subprotocol: str | None = None, headers: Any = None) -> None:
        await super().accept(subprotocol=subprotocol, headers=headers)
        self.accepted = True

    async def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Close with one of CloseCode's codes, as the plain int daphne requires."""
        self.closing = True
        await super().close(code=protocol.wire_code(code or CloseCode.NORMAL))

    async def disconnect(self, code: int) -> None:
        if not self.accepted:
            return
        admitted = self._forget()
        if admitted:
            for group in [
                groups.user_group(self.user.pk),
                *(groups.room_group(room.id) for room in self.rooms.values()),
            ]:
                await self._discard(group)
            await self._release_slot()
        self._log_disconnect(code)

    def _forget(self) -> bool:
        """Stop the expiry timer and leave the local registry; False if never admitted."""
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None
        registry = local_sockets()
        admitted = self in registry.sockets
        registry.discard(self)
        return admitted

    async def _release_slot(self) -> None:
        try:
            await local_sockets().slots.release(self.slot)
        except BACKEND_ERRORS as exc:
            # The entry expires by itself within CONNECTION_TTL_SECONDS.
            connection_logger.warning(
                "ws slot release failed user=%s error=%s", self.user.pk, type(exc).__name__
            )

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
        """Close after a failure, accepting first so the client sees the code."""
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

    async def restore(self) -> None:
        """Rejoin every group after Redis lost them (realtime.local); 4013 if Redis refuses."""
        if self.closing:
            return
        try:
            for group in [
                groups.user_group(self.user.pk),
                *(groups.room_group(room.id) for room in self.rooms.values()),
            ]:
                await self.channel_layer.group_add(group, self.channel_name)
        except BACKEND_ERRORS as exc:
            connection_logger.error(
                "ws restore failed user=%s conn=%s error=%s",
                self.user.pk,
                self.conn_id,
                type(exc).__name__,
            )
            await self._abort(CloseCode.TRY_AGAIN_LATER)

    # --- Session lifetime ----------------------------------------------------------------------

    def _schedule_expiry(self) -> None:
        """Close with 4102 at the token's expiry plus the grace, unless refreshed first."""
        if self.expiry is not None:
            self.expiry.cancel()
        deadline = self.grant.expires_at + realtime_settings().TOKEN_GRACE_SECONDS
        delay = max(0.0, deadline - time.time())
        # A timer rather than a task per socket: it costs nothing until it fires.
        self.expiry = asyncio.get_running_loop().call_later(delay, self._on_expiry)

    def _on_expiry(self) -> None:
        self.expiry = None
        # Kept, so the task cannot be collected before it ran.
        self.expiring = asyncio.ensure_future(self._expire())

    async def _expire(self) -> None:
        if self.closing:
            return
        connection_logger.info("ws token expired user=%s conn=%s", self.user.pk, self.conn_id)
        await self.close(CloseCode.TOKEN_EXPIRED)

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
        except SessionEnded as exc:
            await self._end_session("account_disabled" if exc.account_gone else "revoked")
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
        limits = realtime_settings()
        if frame.room not in self.rooms and len(self.rooms) >= limits.MAX_ROOMS_PER_CONNECTION:
            raise ProtocolError(
                ErrorCode.TOO_MANY_ROOMS, "Leave a room before joining another.", frame.ref
            )
        try:
            room = await database_sync_to_async(selectors.room_get_readable)(
                user=self.user, slug=frame.room, session_id=self.grant.session_id
            )
        except (RoomNotFound, RoomForbidden) as exc:
            await self._leave(frame.room)
            raise self._room_error(exc, frame) from None
        # Join the group before reading history: a message stored after the read is then
        # certain to arrive live, and one in both places is dropped by id (see chat_message).
        await self.channel_layer.group_add(groups.room_group(room.pk), self.channel_name)
        messages = await database_sync_to_async(selectors.room_history_payloads)(
            room=room, limit=limits.HISTORY_LIMIT
        )
        history, truncated = protocol.fit_history(messages, limits.HISTORY_MAX_BYTES)
        has_more = truncated or len(messages) >= limits.HISTORY_LIMIT
        self.rooms[frame.room] = JoinedRoom(
            room.pk, frozenset(message["id"] for message in messages)
        )
        self.room_slugs[room.pk] = frame.room
        await self.send_frame(protocol.joined_frame(frame.room, history, has_more, frame.ref))

    async def handle_leave(self, frame: protocol.Leave) -> None:
        if not await self._leave(frame.room):
            raise ProtocolError(
                ErrorCode.NOT_JOINED, "This socket has not joined that room.", frame.ref
            )
        await self.send_frame(protocol.left_frame(frame.room, frame.ref))

    async def handle_send(self, frame: protocol.Send) -> None:
        if frame.room not in self.rooms:
            raise ProtocolError(
                ErrorCode.NOT_JOINED, "Join the room before sending to it.", frame.ref
            )
        try:
            posted = await database_sync_to_async(services.message_post)(
                author=self.user,
                session_id=self.grant.session_id,
                slug=frame.room,
                body=frame.body,
            )
        except (RoomNotFound, RoomForbidden) as exc:
            # Access was lost since the join: this socket leaves the room too.
            await self._leave(frame.room)
            raise self._room_error(exc, frame) from None
        await self.send_frame(protocol.ack_frame(posted.payload["id"], frame.ref))
        try:
            await groups.broadcast_message(posted.room_id, posted.payload)
        except BACKEND_ERRORS as exc:
            # Stored and acknowledged: members get it from history when they rejoin.
            connection_logger.error(
                "ws broadcast failed room=%s message=%s error=%s",
                posted.room_id,
                posted.payload["id"],
                type(exc).__name__,
            )

    async def handle_ping(self, frame: protocol.Ping) -> None:
        await self.send_frame(protocol.pong_frame(frame.ref))

    async def handle_refresh(self, frame: protocol.Refresh) -> None:
        """Extend the socket's life with a new access token of the same user."""
        try:
            grant = await database_sync_to_async(grant_for_access_token)(
                frame.token, self.grant.method
            )
        except HandshakeRefused as refusal:
            security_logger.warning(
                "ws refresh refused reason=%s user=%s conn=%s",
                refusal.reason,
                self.user.pk,
                self.conn_id,
            )
            raise ProtocolError(
                ErrorCode.INVALID_TOKEN,
                "That token is not valid; the socket keeps its expiry.",
                frame.ref,
            ) from None
        if grant.user.pk != self.user.pk:
            security_logger.warning(
                "ws refresh refused reason=other_user user=%s conn=%s",
                self.user.pk,
                self.conn_id,
            )
            raise ProtocolError(
                ErrorCode.INVALID_TOKEN, "That token belongs to another user.", frame.ref
            )
        self.grant = grant
        self._schedule_expiry()
        await self.send_frame(protocol.refreshed_frame(grant.expires_at, frame.ref))

    async def _leave(self, slug: str) -> bool:
        """Leave the room if joined; True if it was."""
        room = self.rooms.pop(slug, None)
        if room is None:
            return False
        self.room_slugs.pop(room.id, None)
        await self._discard(groups.room_group(room.id))
        return True

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
        slug = self.room_slugs.get(event["room_id"])
        if slug is not None and event["id"] not in self.rooms[slug].in_history:
            await self.send(text_data=event["text"])

    async def room_closed(self, event: dict[str, Any]) -> None:
        await self._leave_by_server(event["room_id"], "room_deleted")

    async def membership_revoked(self, event: dict[str, Any]) -> None:
        slug = self.room_slugs.get(event["room_id"])
        if slug is None:
            return
        try:
            await database_sync_to_async(selectors.room_get_readable)(
                user=self.user, slug=slug, session_id=self.grant.session_id
            )
        except RoomNotFound:
            # Deleting a room deletes its memberships first, so their revocations arrive
            # before room.closed: the room being gone is the reason the client needs.
            await self._leave_by_server(event["room_id"], "room_deleted")
        except RoomForbidden:
            await self._leave_by_server(event["room_id"], "membership_revoked")
        except SessionEnded as exc:
            await self._end_session("account_disabled" if exc.account_gone else "revoked")

    async def session_end(self, event: dict[str, Any]) -> None:
        sessions, keep = event["sessions"], event["keep"]
        mine = self.grant.session_id
        if mine == keep or (sessions is not None and mine not in sessions):
            return
        await self._end_session(event["reason"])

    async def _end_session(self, reason: str) -> None:
        connection_logger.info(
            "ws session ended user=%s reason=%s conn=%s", self.user.pk, reason, self.conn_id
        )
        code = CloseCode.FORBIDDEN if reason in _ACCOUNT_GONE else CloseCode.SESSION_REVOKED
        await self.close(code)

    async def _leave_by_server(self, room_id: int, reason: str) -> None:
        slug = self.room_slugs.get(room_id)
        if slug is None:
            return
        await self._leave(slug)
        await self.send_frame(protocol.left_frame(slug, None, reason=reason))

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
