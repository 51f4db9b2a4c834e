"""Signed, expiring link tokens (join links, later RSVP and member-page links). Pure.

Format: ``base64url(json payload) "." base64url(HMAC-SHA256(secret, purpose + payload))``,
short enough for a URL and a calendar entry. The purpose is mixed into the MAC so a token
minted for one use can never be replayed for another. ``now`` is passed in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MAX_TOKEN_LEN = 1024


class TokenError(ValueError):
    """A token that is malformed, tampered with, for another purpose or expired."""

    def __init__(self, code: str, detail: str) -> None:
        self.code = code
        self.detail = detail
        super().__init__(detail)


@dataclass(frozen=True)
class Claims:
    """A verified token's content."""

    purpose: str
    subject: dict[str, Any]
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    # validate=True: characters outside the alphabet are an error, not silently skipped, so
    # exactly one string verifies as a given token.
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def _mac(secret: str, purpose: str, body: str) -> bytes:
    message = f"{purpose}\x00{body}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def sign(secret: str, purpose: str, subject: dict[str, Any], expires_at: datetime) -> str:
    """A token for ``purpose`` carrying ``subject`` (small JSON values) until ``expires_at``."""
    payload = {"p": purpose, "s": subject, "e": int(expires_at.timestamp())}
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_b64(_mac(secret, purpose, body))}"


def verify(secret: str, purpose: str, token: str, now: datetime) -> Claims:
    """The claims of ``token`` if it is genuine, for ``purpose`` and not expired at ``now``."""
    if not token or len(token) > MAX_TOKEN_LEN or token.count(".") != 1:
        raise TokenError("invalid_token", "this link is not valid")
    body, mac = token.split(".")
    try:
        given = _unb64(mac)
    except (binascii.Error, ValueError):
        raise TokenError("invalid_token", "this link is not valid") from None
    if not hmac.compare_digest(given, _mac(secret, purpose, body)):
        raise TokenError("invalid_token", "this link is not valid")
    try:
        payload = json.loads(_unb64(body))
        expires_at = datetime.fromtimestamp(int(payload["e"]), UTC)
        subject = payload["s"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise TokenError("invalid_token", "this link is not valid") from None
    if payload.get("p") != purpose or not isinstance(subject, dict):
        raise TokenError("invalid_token", "this link is not valid")
    if now >= expires_at:
        raise TokenError("expired_token", "this link has expired")
    return Claims(purpose, subject, expires_at)


def hash_secret(value: str) -> str:
    """Hex SHA-256 of a high-entropy secret (API keys, feed tokens) for storage."""
    return hashlib.sha256(value.encode()).hexdigest()


# Member link tokens ---------------------------------------------------------------------------
# Long-lived, per member: the private calendar feed and the "my drop-ins" page. Not stored: the
# database keeps a random nonce per member and the token is the member id plus an HMAC over it,
# so a database leak alone yields no usable link, and a new nonce revokes the old links.

FEED = "feed"
PAGE = "page"
_MEMBER_MAC_BYTES = 18


def member_token(secret: str, purpose: str, member_id: str, nonce: str) -> str:
    """The ``purpose`` link token of a member (32-hex-character id) with link nonce ``nonce``."""
    mac = _mac(secret, purpose, f"{member_id}:{nonce}")[:_MEMBER_MAC_BYTES]
    return _b64(bytes.fromhex(member_id) + mac)


def member_token_subject(token: str) -> str | None:
    """The member id a member token claims to be for (not yet verified), or None."""
    if not token or len(token) > 64:
        return None
    try:
        raw = _unb64(token)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 16 + _MEMBER_MAC_BYTES:
        return None
    return raw[:16].hex()


def member_token_valid(secret: str, purpose: str, token: str, member_id: str, nonce: str) -> bool:
    """Whether ``token`` is the current ``purpose`` token of ``member_id`` (constant time)."""
    return hmac.compare_digest(token, member_token(secret, purpose, member_id, nonce))
