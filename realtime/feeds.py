"""The rooms one socket joined, and how far it has been told each one (docs/reliability.md).

A socket receives each room's messages exactly once and in seq order. Live messages can
arrive late, early or twice (two processes broadcast in any order; the retrying Redis pool
may repeat a publish; Redis may drop one), so each room keeps the highest seq delivered:
an older or repeated seq is dropped, the next one is sent, and one past a hole is sent after
the hole is filled from the database, where every lower seq is already committed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum


class Arrival(Enum):
    DUPLICATE = "duplicate"  # delivered already (or in the `joined` history)
    NEXT = "next"  # the very next seq: send it
    AFTER_GAP = "after_gap"  # fill delivered+1 .. seq-1 first, then send it


@dataclass(slots=True)
class Feed:
    room_id: int
    slug: str
    # The highest seq this socket has been sent (in `joined` or live).
    delivered: int

    def classify(self, seq: int) -> Arrival:
        if seq <= self.delivered:
            return Arrival.DUPLICATE
        if seq == self.delivered + 1:
            return Arrival.NEXT
        return Arrival.AFTER_GAP


class Feeds:
    """A socket's joined rooms, by slug (frames name rooms so) and by id (events do)."""

    def __init__(self) -> None:
        self._by_slug: dict[str, Feed] = {}
        self._by_id: dict[int, Feed] = {}

    def __len__(self) -> int:
        return len(self._by_slug)

    def __contains__(self, slug: str) -> bool:
        return slug in self._by_slug

    def __iter__(self) -> Iterator[Feed]:
        return iter(list(self._by_slug.values()))

    def get(self, slug: str) -> Feed | None:
        return self._by_slug.get(slug)

    def by_id(self, room_id: int | None) -> Feed | None:
        """The feed of a room id; None for an event that names no room."""
        return self._by_id.get(room_id) if room_id is not None else None

    def add(self, feed: Feed) -> None:
        self._by_slug[feed.slug] = feed
        self._by_id[feed.room_id] = feed

    def remove(self, slug: str) -> Feed | None:
        feed = self._by_slug.pop(slug, None)
        if feed is not None:
            self._by_id.pop(feed.room_id, None)
        return feed
