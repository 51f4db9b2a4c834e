"""ICE servers for ``welcome.ice_servers``, with time-limited TURN credentials.

TURN credentials follow the "REST API for TURN services" draft (draft-uberti-behave-turn-rest,
as implemented by coturn's ``use-auth-secret``): the username is ``<expiry unix time>:<member
id>`` and the password is ``base64(HMAC-SHA1(shared secret, username))``. The TURN server checks
both with the same secret and refuses the credential after the expiry, so a leaked welcome
message is worth nothing a few hours later. Pure: ``now`` is passed in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from signaling.protocol import IceServer


@dataclass(frozen=True)
class IceConfig:
    """Which STUN and TURN servers the browsers are told about."""

    stun_urls: tuple[str, ...] = ()
    turn_urls: tuple[str, ...] = ()
    # Without a secret, TURN URLs are announced without credentials (a TURN server open to
    # all, which is rarely what anyone wants; the settings docs say so).
    turn_secret: str | None = None
    # Seconds a TURN credential stays valid; longer than any session, shorter than a day.
    turn_ttl: int = 6 * 3600


def turn_credentials(secret: str, member_id: str, now: datetime, ttl: int) -> tuple[str, str]:
    """``(username, credential)`` valid until ``now + ttl`` for ``member_id``."""
    username = f"{int(now.timestamp()) + ttl}:{member_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def ice_servers(config: IceConfig, member_id: str, now: datetime) -> tuple[IceServer, ...]:
    """The ``RTCConfiguration.iceServers`` list for one member's connection."""
    servers: list[IceServer] = []
    if config.stun_urls:
        servers.append(IceServer(urls=config.stun_urls))
    if config.turn_urls:
        if config.turn_secret:
            username, credential = turn_credentials(
                config.turn_secret, member_id, now, config.turn_ttl
            )
            servers.append(IceServer(config.turn_urls, username, credential))
        else:
            servers.append(IceServer(urls=config.turn_urls))
    return tuple(servers)
