"""A chat socket's connection, apart from what it says: admission, lifetime and closing.

The base of realtime.consumers.ChatConsumer. Everything here is about the socket rather
than about rooms and messages: the caps a handshake must pass (realtime.connections), the
per-user group that carries revocations, the token lifetime and its in-band refresh, the
process registry that renews and restores sockets (realtime.local), and closing: every
close goes through `close()`, which hands daphne the plain int it requires
(protocol.wire_code), and a close after a failure accepts first so the client sees the code.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from pydantic import BaseModel

from config.backends import BACKEND_ERRORS
from realtime import frames, groups, metrics, protocol
from realtime.conf import realtime_settings
from realtime.connections import Admission, Slot
from realtime.db import in_thread
from realtime.handshake import client_address, header, select_subprotocol
from realtime.local import local_sockets
from realtime.middleware import Grant, HandshakeRefused, grant_for_access_token
from realtime.protocol import CloseCode, ErrorCode, ProtocolError
from realtime.ratelimit import FrameRateLimiter

if TYPE_CHECKING:
    from accounts.models import User

connection_logger = logging.getLogger("realtime.connection")
protocol_logger = logging.getLogger("realtime.protocol")
security_logger = logging.getLogger("realtime.security")

# session.end reasons after which the account must not come back (4403, not 4103).
_ACCOUNT_GONE = frozenset({"account_disabled", "account_deleted"})


class Connection(AsyncJsonWebsocketConsumer):
    """Admission, lifetime and closing of one chat socket; rooms are the subclass's."""

    # As realtime.middleware builds it: "user" is always a User, and "grant" is set.
    # types-channels declares a closed TypedDict with an optional user instead.
    scope: dict[str, Any]  # type: ignore[assignment]

    async def __call__(self, scope: Mapping[str, Any], receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)  # type: ignore[arg-type]
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
                self.forget()
                self._log_disconnect(CloseCode.TRY_AGAIN_LATER)

    # --- Lifecycle -----------------------------------------------------------------------------

    async def connect(self) -> None:
        limits = realtime_settings()
        self.user: User = self.scope["user"]
        self.grant: Grant = self.scope["grant"]
        self.conn_id = self.channel_name.rsplit("!", 1)[-1][:12]
        self.connected_at = time.monotonic()
        self.accepted = False
        self.counted = False
        self.closing = False
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
                # ChatConsumer, the only subclass, provides presence_entries.
                await local.add(self)  # type: ignore[arg-type]
                await self.channel_layer.group_add(
                    groups.user_group(self.user.pk), self.channel_name
                )
            except BACKEND_ERRORS:
                self.forget()
                await self._release_slot()
                raise
        except BACKEND_ERRORS as exc:
            metrics.count_handshake("backend_unavailable")
            connection_logger.error(
                "ws connect failed user=%s addr=%s error=%s",
                self.user.pk,
                self.slot.address,
                type(exc).__name__,
            )
            await self._abort(CloseCode.TRY_AGAIN_LATER)
            return
        await self.accept(subprotocol=select_subprotocol(self.scope))
        metrics.count_handshake("accepted")
        metrics.SOCKETS_OPEN.inc()
        self.counted = True
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
        metrics.count_handshake(admission.value)
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
        wire_code = protocol.wire_code(code or CloseCode.NORMAL)
        metrics.count_close(wire_code)
        await super().close(code=wire_code)

    async def send(  # type: ignore[override]  # as channels' WebSocket consumers do
        self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False
    ) -> None:
        metrics.FRAMES_SENT.inc()
        await super().send(text_data=text_data, bytes_data=bytes_data, close=close)

    async def disconnect(self, code: int) -> None:
        if not self.accepted:
            return
        admitted = self.forget()
        if admitted:
            await self._discard(groups.user_group(self.user.pk))
            await self.leave_rooms()
            await self._release_slot()
        self._log_disconnect(code)

    def forget(self) -> bool:
        """Stop the expiry timer and leave the local registry; False if never admitted."""
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None
        registry = local_sockets()
        admitted = self in registry.sockets
        registry.discard(self)  # type: ignore[arg-type]  # as in connect()
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
        metrics.count_disconnect(code)
        if self.counted:
            self.counted = False
            metrics.SOCKETS_OPEN.dec()
        connection_logger.info(
            "ws disconnect user=%s code=%s duration=%.1fs rooms=%d conn=%s",
            self.user.pk,
            code,
            time.monotonic() - self.connected_at,
            self.room_count(),
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

    async def dispatch(self, message: dict[str, Any]) -> None:
        """channels' dispatch without its `aclose_old_connections()`: channels 4.3 runs
        close_old_connections in a thread before every handler, a thread hop for every frame
        and every group event. Every ORM call here runs through realtime.db.in_thread, which
        closes old connections around itself in the thread that uses them."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def leave_rooms(self) -> None:
        """Leave every room (the socket is closing)."""
        raise NotImplementedError

    def room_count(self) -> int:
        raise NotImplementedError

    async def restore(self) -> None:
        """Rejoin every group after Redis lost them (realtime.local)."""
        raise NotImplementedError

    async def abort_unavailable(self) -> None:
        """The channel layer is down past a blip (realtime.local logs it once): close with
        4013; the disconnect line names the code."""
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

    async def handle_refresh(self, frame: protocol.Refresh) -> None:
        """Extend the socket's life with a new access token of the same user."""
        try:
            grant = await in_thread(grant_for_access_token)(frame.token, self.grant.method)
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
        await self.send_frame(frames.refreshed(grant.expires_at, frame.ref))

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

    # --- Replies -------------------------------------------------------------------------------

    async def send_frame(self, frame: BaseModel) -> None:
        await self.send(text_data=frames.encode(frame))

    async def send_error(self, code: ErrorCode, message: str, ref: str | None) -> None:
        protocol_logger.warning(
            "ws error frame code=%s user=%s ref=%r conn=%s", code, self.user.pk, ref, self.conn_id
        )
        metrics.count_error_frame(code)
        await self.send_frame(frames.error(code, message, ref))
        if code in protocol.VIOLATIONS:
            self.protocol_errors += 1
            if self.protocol_errors >= realtime_settings().MAX_PROTOCOL_ERRORS:
                connection_logger.warning(
                    "ws protocol violation close user=%s conn=%s", self.user.pk, self.conn_id
                )
                await self.close(CloseCode.PROTOCOL_VIOLATION)
