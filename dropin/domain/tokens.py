"""Signed, expiring link tokens (join links, later RSVP and member-page links). Pure.

Format: ``base64url(payload || HMAC-SHA256(secret, purpose + payload)[:16])`` with a compact
binary payload (see :func:`sign`), short enough for a URL, an email and a calendar entry. The
purpose is mixed into the MAC so a token minted for one use can never be replayed for
another. ``now`` is passed in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
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


def _mac(secret: str, purpose: str, body: bytes | str) -> bytes:
    data = body if isinstance(body, bytes) else body.encode()
    message = purpose.encode() + b"\x00" + data
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


# Compact binary payload: version, expiry, then each subject field sorted by key. A 32-hex
# id (every id dropin has) takes 16 bytes instead of 40 characters of JSON, so a join link is
# about 80 characters, not 200: shorter to read, quicker to put in every email and calendar.
_VERSION = 1
_HEX_ID = 0x68  # "h": 16 raw bytes of a 32-hex id
_TEXT = 0x73  # "s": a short UTF-8 string, length-prefixed
_MAC_BYTES = 16


def _encode(subject: dict[str, Any], expires: int) -> bytes:
    out = bytearray([_VERSION]) + expires.to_bytes(5, "big")
    for key in sorted(subject):
        value = subject[key]
        if len(key) != 1 or not isinstance(value, str):
            raise ValueError("token subjects map one-letter keys to strings")
        out += key.encode("ascii")
        if len(value) == 32 and all(c in "0123456789abcdef" for c in value):
            out += bytes([_HEX_ID]) + bytes.fromhex(value)
        else:
            raw = value.encode()
            if len(raw) > 255:
                raise ValueError("token subject values are at most 255 bytes")
            out += bytes([_TEXT, len(raw)]) + raw
    return bytes(out)


def _decode(data: bytes) -> tuple[dict[str, Any], int]:
    if len(data) < 6 or data[0] != _VERSION:
        raise ValueError("unknown token version")
    expires = int.from_bytes(data[1:6], "big")
    subject: dict[str, Any] = {}
    i = 6
    while i < len(data):
        key, kind = chr(data[i]), data[i + 1]
        if kind == _HEX_ID:
            subject[key] = data[i + 2 : i + 18].hex()
            if len(data[i + 2 : i + 18]) != 16:
                raise ValueError("truncated id")
            i += 18
        elif kind == _TEXT:
            size = data[i + 2]
            subject[key] = data[i + 3 : i + 3 + size].decode()
            i += 3 + size
        else:
            raise ValueError("unknown field type")
    return subject, expires


def sign(secret: str, purpose: str, subject: dict[str, Any], expires_at: datetime) -> str:
    """A token for ``purpose`` carrying ``subject`` (one-letter keys, string values, ids
    packed) until ``expires_at``: ``base64url(payload || HMAC-SHA256(purpose, payload)[:16])``.
    """
    payload = _encode(subject, int(expires_at.timestamp()))
    return _b64(payload + _mac(secret, purpose, payload)[:_MAC_BYTES])


def verify(secret: str, purpose: str, token: str, now: datetime) -> Claims:
    """The claims of ``token`` if it is genuine, for ``purpose`` and not expired at ``now``."""
    invalid = TokenError("invalid_token", "this link is not valid")
    if not token or len(token) > MAX_TOKEN_LEN:
        raise invalid
    try:
        raw = _unb64(token)
    except (binascii.Error, ValueError):
        raise invalid from None
    payload, given = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
    if len(raw) <= _MAC_BYTES or not hmac.compare_digest(
        given, _mac(secret, purpose, payload)[:_MAC_BYTES]
    ):
        raise invalid
    try:
        subject, expires = _decode(payload)
        expires_at = datetime.fromtimestamp(expires, UTC)
    except (ValueError, IndexError, UnicodeDecodeError, OverflowError, OSError):
        raise invalid from None
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
