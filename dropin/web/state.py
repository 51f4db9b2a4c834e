"""What the app's lifespan owns and hands to every request: settings, database, caches."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

from dropin.config import Settings
from dropin.domain.tokens import hash_secret
from dropin.errors import Unauthorized
from dropin.services import keys
from dropin.services.access import Actor
from dropin.services.feeds import FeedCache, LinkMaker
from dropin.store.db import Database
from dropin.web.dispatch import OutboxNudger

if TYPE_CHECKING:
    from signaling.hub import RoomHub

KEY_CACHE_SECONDS = 10.0


@dataclass
class KeyCache:
    """Recently verified API keys (by hash), so a busy client costs no key lookup per request.

    A revoked key (or a disabled account's) keeps working for at most
    :data:`KEY_CACHE_SECONDS` in each process.
    """

    entries: dict[str, tuple[Actor, float]] = field(default_factory=dict)

    def get(self, key_hash: str, now: float) -> Actor | None:
        hit = self.entries.get(key_hash)
        if hit is None or hit[1] < now:
            return None
        return hit[0]

    def put(self, key_hash: str, actor: Actor, now: float) -> None:
        if len(self.entries) > 1000:
            self.entries.clear()
        self.entries[key_hash] = (actor, now + KEY_CACHE_SECONDS)


@dataclass
class AppState:
    """The typed state yielded by the lifespan."""

    settings: Settings
    db: Database
    key_cache: KeyCache = field(default_factory=KeyCache)
    feed_cache: FeedCache = field(default_factory=FeedCache)
    nudger: OutboxNudger | None = None
    # The live rooms of this process (None in apps built without rooms).
    rooms: RoomHub | None = None

    @property
    def links(self) -> LinkMaker:
        return LinkMaker(self.settings.secret_key, self.settings.public_url)


def app_state(conn: HTTPConnection) -> AppState:
    state = conn.state.dropin
    assert isinstance(state, AppState)
    return state


def utcnow() -> datetime:
    """The one clock read of the web layer; services get ``now`` passed in."""
    return datetime.now(UTC)


async def require_organizer(conn: HTTPConnection) -> Actor:
    """The account the key in ``Authorization: Bearer`` acts as, or 401."""
    header = conn.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
    state = app_state(conn)
    key = key.strip()
    key_hash = hash_secret(key)
    clock = time.monotonic()
    actor = state.key_cache.get(key_hash, clock)
    if actor is None:
        holder = await keys.holder_of(state.db, key)
        if holder is None:
            raise Unauthorized("this key is not valid", code="invalid_key")
        actor = Actor(holder.account_id, holder.role)
        state.key_cache.put(key_hash, actor, clock)
    return actor
