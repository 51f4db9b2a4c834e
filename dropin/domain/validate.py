"""Checks on user-supplied values shared by the API and the CLI. Pure; raise ValueError."""

from __future__ import annotations

import re
import unicodedata

from dropin.domain.states import MemberRole

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
# Local part: anything printable but separators; domain: dot-separated DNS labels.
_EMAIL = re.compile(rf"^[^@\s<>(),;:\"\[\]\x00-\x1f\x7f]+@{_LABEL}(?:\.{_LABEL})*$")


def text(value: str, *, field: str, max_len: int, min_len: int = 1) -> str:
    """Trimmed single-line text of ``min_len``..``max_len`` characters, no control chars."""
    cleaned = value.strip()
    if not min_len <= len(cleaned) <= max_len:
        raise ValueError(f"{field} must be {min_len} to {max_len} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in cleaned):
        raise ValueError(f"{field} must be plain text on one line")
    return cleaned


def display_name(value: str) -> str:
    """A first name or pseudonym as shown in rooms: 1 to 40 characters."""
    return text(value, field="display_name", max_len=40)


def email(value: str) -> str:
    """A plausible email address, lower-cased (so Ann@x and ann@x are one member)."""
    cleaned = value.strip()
    if len(cleaned) > 254 or not _EMAIL.match(cleaned):
        raise ValueError("email is not a valid address")
    return cleaned.lower()


def long_text(value: str, *, field: str, max_len: int) -> str:
    """Trimmed multi-line text (newlines and tabs allowed, other control characters not)."""
    cleaned = value.strip()
    if len(cleaned) > max_len:
        raise ValueError(f"{field} must be at most {max_len} characters")
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in cleaned):
        raise ValueError(f"{field} must not contain control characters")
    return cleaned


def role(value: str) -> MemberRole:
    """``parent`` or ``facilitator``."""
    try:
        return MemberRole(value)
    except ValueError:
        raise ValueError("role must be 'parent' or 'facilitator'") from None
