"""Room tokens: the short-lived JWT a member's WebSocket presents in ``hello``.

The join link is long-lived and personal; the WebSocket only ever sees the room token, which
carries who (``sub``), where (``sid``), in which role (from the database, never the client),
and expires within 15 minutes. Building and reading one are pure (``now`` passed in). The
scheduling core exchanges a join link for a token (``dropin.services.room_access.exchange``);
the hub refreshes it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt

ISSUER = "dropin"
AUDIENCE = "dropin:room"
ALGORITHM = "HS256"
TOKEN_SECONDS = 900
_REQUIRED = ("iss", "aud", "sub", "sid", "role", "jti", "iat", "exp")


class RoomTokenError(ValueError):
    """A room token that is malformed, forged, expired or for another purpose."""


@dataclass(frozen=True)
class RoomClaims:
    member_id: str
    session_id: str
    role: str
    jti: str
    expires_at: datetime


def issue_token(
    secret: str,
    *,
    member_id: str,
    session_id: str,
    role: str,
    now: datetime,
    seconds: int = TOKEN_SECONDS,
) -> str:
    """A room token for one member in one session, valid ``seconds`` (at most 15 minutes)."""
    if not 0 < seconds <= TOKEN_SECONDS:
        raise ValueError(f"a room token lives at most {TOKEN_SECONDS} s")
    if role not in ("parent", "facilitator"):
        raise ValueError("role must be parent or facilitator")
    issued = int(now.timestamp())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": member_id,
        "sid": session_id,
        "role": role,
        "jti": secrets.token_urlsafe(12),
        "iat": issued,
        "exp": issued + seconds,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_token(secret: str, token: str, now: datetime) -> RoomClaims:
    """The claims of a genuine, unexpired room token, or :class:`RoomTokenError`."""
    if not token or len(token) > 2048:
        raise RoomTokenError("no token")
    try:
        # Expiry is checked below against the ``now`` passed in (no clock reads here).
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": list(_REQUIRED), "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError as exc:
        raise RoomTokenError(type(exc).__name__) from None
    exp, iat = claims["exp"], claims["iat"]
    if not isinstance(exp, int) or not isinstance(iat, int) or exp - iat > TOKEN_SECONDS:
        raise RoomTokenError("bad lifetime")
    if now.timestamp() >= exp:
        raise RoomTokenError("expired")
    role, sub, sid, jti = claims["role"], claims["sub"], claims["sid"], claims["jti"]
    if role not in ("parent", "facilitator") or not all(
        isinstance(v, str) and v for v in (sub, sid, jti)
    ):
        raise RoomTokenError("bad claims")
    return RoomClaims(sub, sid, role, jti, datetime.fromtimestamp(exp, now.tzinfo))
