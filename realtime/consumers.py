"""The chat consumer: one socket per client for all of its rooms (docs/protocol.md).

Thin on purpose: each frame is rate-limited, parsed and validated (realtime.protocol),
authorized and carried out by a service or selector, and answered. What the socket is as a
connection (admission, lifetime, revocation, closing) is realtime.connection's; this is
what it does in rooms: join and resume, send, typing, and delivering each room's messages
exactly once and in seq order (realtime.feeds, docs/reliability.md).

Failures never crash the process. A bad frame gets an `error` frame and the socket stays
open (until MAX_PROTOCOL_ERRORS: 4400). A Redis or database failure while handling a frame
gets `error: unavailable`; a failure of the channel layer's receive loop (Redis down) closes
the socket with 4013, and the client's reconnect is served once Redis is back.
"""

from __future__ import annotations

import asyncio
from typing import Any

from config.backends import BACKEND_ERRORS
from realtime import frames, groups, metrics, protocol, selectors, services
from realtime.conf import realtime_settings
from realtime.connection import Connection, connection_logger, protocol_logger
from realtime.db import in_thread
from realtime.exceptions import ClientIdReused, RoomForbidden, RoomNotFound, SessionEnded
from realtime.feeds import Arrival, Feed, Feeds
from realtime.local import local_sockets
from realtime.presence import Entry
from realtime.protocol import CloseCode, ErrorCode, ProtocolError
from realtime.ratelimit import Verdict
from realtime.writer import frame_writer


class ChatConsumer(Connection):
    async def connect(self) -> None:
        self.feeds = Feeds()
        # Held while messages are sent from the database (gap fills, catch-up after a Redis
        # reset), so that no live message of the room overtakes them.
        self.delivering = asyncio.Lock()
        self._listen()
        await super().connect()

    def _listen(self) -> None:
        """Take this socket's room traffic straight from the channel layer when it can
        (realtime.layers, realtime.writer): no queue, no task switch, no coroutine."""
        listen = getattr(self.channel_layer, "listen", None)
        self.write = frame_writer(self.base_send)
        if listen is not None and self.write is not None:
            listen(self.channel_name, self._on_group_message)

    def forget(self) -> bool:
        unlisten = getattr(self.channel_layer, "unlisten", None)
        if unlisten is not None:
            unlisten(self.channel_name)
        return super().forget()

    def _on_group_message(self, event: dict[str, Any]) -> bool:
        """Handle a group event at once if that keeps every promise; False queues it for
        the consumer's loop (anything out of order, anything needing the database)."""
        if self.closing:
            return True
        kind = event.get("type")
        feed = self.feeds.by_id(event.get("room_id"))
        # self.write is set: _listen registers this handler only then.
        if kind in (groups.PRESENCE, groups.TYPING):
            if feed is not None and event["user_id"] != self.user.pk:
                self.write(event["text"])  # type: ignore[misc]
                metrics.FRAMES_SENT.inc()
                metrics.FRAMES_WRITTEN_DIRECTLY.inc()
            return True
        if kind != groups.CHAT_MESSAGE or feed is None or self.delivering.locked():
            return False
        arrival = feed.classify(event["seq"])
        if arrival is Arrival.AFTER_GAP:
            return False
        if arrival is Arrival.NEXT:
            feed.delivered = event["seq"]
            self.write(event["text"])  # type: ignore[misc]
            metrics.FRAMES_SENT.inc()
            metrics.FRAMES_WRITTEN_DIRECTLY.inc()
        return True

    async def leave_rooms(self) -> None:
        for feed in self.feeds:
            await self._leave(feed.slug)

    def room_count(self) -> int:
        return len(self.feeds)

    def presence_entries(self) -> list[Entry]:
        """This socket's presence in each room it joined (realtime.local renews them)."""
        return [self._entry(feed) for feed in self.feeds]

    def _entry(self, feed: Feed) -> Entry:
        return Entry(feed.room_id, feed.slug, self.user.pk, self.user.username, self.channel_name)

    async def restore(self) -> None:
        """After Redis lost its data (realtime.local): rejoin every group, then send what
        each room said since this socket's last message (published while it was out of
        the groups). 4013 if Redis or the database refuses, and the client resumes itself."""
        if self.closing:
            return
        try:
            await self.channel_layer.group_add(groups.user_group(self.user.pk), self.channel_name)
            for feed in self.feeds:
                await self.channel_layer.group_add(
                    groups.room_group(feed.room_id), self.channel_name
                )
            for feed in self.feeds:
                await self._catch_up(feed)
        except BACKEND_ERRORS as exc:
            connection_logger.error(
                "ws restore failed user=%s conn=%s error=%s",
                self.user.pk,
                self.conn_id,
                type(exc).__name__,
            )
            await self._abort(CloseCode.TRY_AGAIN_LATER)

    # --- Client frames -------------------------------------------------------------------------

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        if self.closing:
            return
        metrics.FRAMES_RECEIVED.inc()
        verdict = self.limiter.check()
        if verdict is Verdict.CLOSE:
            metrics.RATE_LIMITED.labels(action="close").inc()
            connection_logger.warning(
                "ws rate limit close user=%s conn=%s", self.user.pk, self.conn_id
            )
            await self.close(CloseCode.RATE_LIMITED)
            return
        if verdict is Verdict.DROP:
            metrics.RATE_LIMITED.labels(action="drop").inc()
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
        if frame.room not in self.feeds and len(self.feeds) >= limits.MAX_ROOMS_PER_CONNECTION:
            raise ProtocolError(
                ErrorCode.TOO_MANY_ROOMS, "Leave a room before joining another.", frame.ref
            )
        try:
            room = await in_thread(selectors.room_get_readable)(
                user=self.user, slug=frame.room, session_id=self.grant.session_id
            )
        except (RoomNotFound, RoomForbidden) as exc:
            await self._leave(frame.room)
            raise self._room_error(exc, frame) from None
        epoch = str(room.pk)
        # A `since` from another room of this name (deleted, then created again) means
        # nothing here: the client gets the newest page and recovered: false.
        since = frame.since if frame.epoch in (None, epoch) else None
        # Join the group before reading: a message stored after the read then arrives live,
        # and one in both is dropped by its seq (chat_message).
        await self.channel_layer.group_add(groups.room_group(room.pk), self.channel_name)
        async with self.delivering:
            catch_up = await in_thread(selectors.room_catch_up)(
                room=room, since=since, limit=limits.HISTORY_LIMIT
            )
            history, truncated = frames.fit_history(catch_up.messages, limits.HISTORY_MAX_BYTES)
            feed = Feed(room.pk, frame.room, delivered=catch_up.seq)
            self.feeds.add(feed)
            if await local_sockets().presence.enter(self._entry(feed)):
                await self._announce_presence(feed, "join")
            members = await local_sockets().presence.members(room.pk)
            await self.send_frame(
                frames.joined(
                    room=frame.room,
                    epoch=epoch,
                    seq=catch_up.seq,
                    history=history,
                    recovered=since is not None and catch_up.complete and not truncated,
                    has_more=bool(history) and history[0]["seq"] > 1,
                    presence=members,
                    ref=frame.ref,
                )
            )

    async def handle_leave(self, frame: protocol.Leave) -> None:
        if not await self._leave(frame.room):
            raise ProtocolError(
                ErrorCode.NOT_JOINED, "This socket has not joined that room.", frame.ref
            )
        await self.send_frame(frames.left(frame.room, frame.ref))

    async def handle_send(self, frame: protocol.Send) -> None:
        if frame.room not in self.feeds:
            raise ProtocolError(
                ErrorCode.NOT_JOINED, "Join the room before sending to it.", frame.ref
            )
        try:
            posted = await in_thread(services.message_post)(
                author=self.user,
                session_id=self.grant.session_id,
                slug=frame.room,
                body=frame.body,
                client_id=frame.client_id,
            )
        except (RoomNotFound, RoomForbidden) as exc:
            # Access was lost since the join: this socket leaves the room too.
            await self._leave(frame.room)
            raise self._room_error(exc, frame) from None
        except ClientIdReused:
            raise ProtocolError(
                ErrorCode.INVALID_MESSAGE,
                "client_id: already names another message; use a new one for a new message.",
                frame.ref,
            ) from None
        await self.send_frame(frames.ack(posted.payload, frame.ref))
        if not posted.created:
            # A retry: the first send was stored and broadcast (or will be found by seq).
            return
        try:
            await groups.broadcast_message(posted.room_id, posted.payload)
        except BACKEND_ERRORS as exc:
            # Stored and acknowledged: members find it by seq (next message, or resume).
            connection_logger.error(
                "ws broadcast failed room=%s seq=%s error=%s",
                posted.room_id,
                posted.payload["seq"],
                type(exc).__name__,
            )

    async def handle_typing(self, frame: protocol.Typing) -> None:
        feed = self.feeds.get(frame.room)
        if feed is None:
            raise ProtocolError(
                ErrorCode.NOT_JOINED, "Join the room before typing in it.", frame.ref
            )
        if await local_sockets().presence.may_type(feed.room_id, self.user.pk):
            await groups.announce_typing(feed.room_id, feed.slug, self._user_ref())

    async def handle_ping(self, frame: protocol.Ping) -> None:
        await self.send_frame(frames.pong(frame.ref))

    async def _leave(self, slug: str) -> bool:
        """Leave the room if joined (group, presence); True if it was."""
        feed = self.feeds.remove(slug)
        if feed is None:
            return False
        await self._discard(groups.room_group(feed.room_id))
        try:
            if await local_sockets().presence.leave(self._entry(feed)):
                await self._announce_presence(feed, "leave")
        except BACKEND_ERRORS as exc:
            # The entry expires within PRESENCE_TTL_SECONDS; a sweep then announces it.
            connection_logger.warning(
                "ws presence leave failed user=%s room=%s error=%s",
                self.user.pk,
                feed.room_id,
                type(exc).__name__,
            )
        return True

    def _user_ref(self) -> dict[str, Any]:
        return {"id": self.user.pk, "username": self.user.username}

    async def _announce_presence(self, feed: Feed, event: frames.PresenceEvent) -> None:
        await groups.announce_presence(feed.room_id, feed.slug, self._user_ref(), event)

    @staticmethod
    def _room_error(exc: Exception, frame: protocol.Join | protocol.Send) -> ProtocolError:
        if isinstance(exc, RoomNotFound):
            return ProtocolError(ErrorCode.NOT_FOUND, "No such room.", frame.ref)
        return ProtocolError(ErrorCode.FORBIDDEN, "This room is for its members only.", frame.ref)

    # --- Delivery in seq order -----------------------------------------------------------------

    async def _send_stored(self, feed: Feed, upto: int) -> None:
        """Send the room's messages after feed.delivered up to `upto` from the database."""
        for payload in await in_thread(selectors.message_range)(
            room_id=feed.room_id, after=feed.delivered, upto=upto, slug=feed.slug
        ):
            await self.send(text_data=frames.encode(frames.message(payload)))
            feed.delivered = payload["seq"]
        feed.delivered = max(feed.delivered, upto)

    async def _catch_up(self, feed: Feed) -> None:
        """Send whatever the room stored after this socket's last message."""
        async with self.delivering:
            latest = await in_thread(selectors.room_latest_seq)(room_id=feed.room_id)
            if latest > feed.delivered:
                await self._send_stored(feed, latest)

    # --- Group events (handler names follow the event type: "chat.message" -> chat_message) ---

    async def chat_message(self, event: dict[str, Any]) -> None:
        feed = self.feeds.by_id(event["room_id"])
        if feed is None:
            return
        seq = event["seq"]
        arrival = feed.classify(seq)
        if arrival is Arrival.DUPLICATE:
            return
        if arrival is Arrival.NEXT and not self.delivering.locked():
            # The common case, without the lock: nothing is being sent from the database.
            feed.delivered = seq
            await self.send(text_data=event["text"])
            return
        async with self.delivering:
            # Re-classify: a catch-up may have sent it while this waited for the lock.
            arrival = feed.classify(seq)
            if arrival is Arrival.AFTER_GAP:
                try:
                    await self._send_stored(feed, seq - 1)
                except BACKEND_ERRORS as exc:
                    connection_logger.error(
                        "ws gap fill failed user=%s room=%s error=%s",
                        self.user.pk,
                        feed.room_id,
                        type(exc).__name__,
                    )
                    await self._abort(CloseCode.TRY_AGAIN_LATER)
                    return
            if arrival is not Arrival.DUPLICATE:
                await self.send(text_data=event["text"])
                feed.delivered = seq

    async def presence_event(self, event: dict[str, Any]) -> None:
        # The user's own sockets learn of their presence from `joined`.
        if event["user_id"] != self.user.pk and self.feeds.by_id(event["room_id"]):
            await self.send(text_data=event["text"])

    async def typing_event(self, event: dict[str, Any]) -> None:
        if event["user_id"] != self.user.pk and self.feeds.by_id(event["room_id"]):
            await self.send(text_data=event["text"])

    async def room_closed(self, event: dict[str, Any]) -> None:
        await self._leave_by_server(event["room_id"], "room_deleted")

    async def membership_revoked(self, event: dict[str, Any]) -> None:
        feed = self.feeds.by_id(event["room_id"])
        if feed is None:
            return
        try:
            await in_thread(selectors.room_get_readable)(
                user=self.user, slug=feed.slug, session_id=self.grant.session_id
            )
        except RoomNotFound:
            # Deleting a room deletes its memberships first, so their revocations arrive
            # before room.closed: the room being gone is the reason the client needs.
            await self._leave_by_server(event["room_id"], "room_deleted")
        except RoomForbidden:
            await self._leave_by_server(event["room_id"], "membership_revoked")
        except SessionEnded as exc:
            await self._end_session("account_disabled" if exc.account_gone else "revoked")

    async def _leave_by_server(self, room_id: int, reason: frames.LeaveReason) -> None:
        feed = self.feeds.by_id(room_id)
        if feed is None:
            return
        await self._leave(feed.slug)
        await self.send_frame(frames.left(feed.slug, None, reason=reason))
