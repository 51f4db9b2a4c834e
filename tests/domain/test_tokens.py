"""Signed link tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dropin.domain.tokens import TokenError, sign, verify

SECRET = "s" * 48
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_round_trip() -> None:
    token = sign(SECRET, "join", {"s": "sess1", "m": "mem1"}, NOW + timedelta(hours=1))
    claims = verify(SECRET, "join", token, NOW)
    assert claims.subject == {"s": "sess1", "m": "mem1"}
    assert claims.expires_at == NOW + timedelta(hours=1)


def _tamper(token: str) -> str:
    # Change one character of the payload (the member id): the MAC no longer matches.
    i = len(token) // 2
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda t: t, "expired_token"),
        (_tamper, "invalid_token"),
        (lambda t: t + "x", "invalid_token"),
        (lambda t: "", "invalid_token"),
        (lambda t: "a.b.c", "invalid_token"),
        (lambda t: "x" * 2000, "invalid_token"),
        (lambda t: t[:-3] + "!!!", "invalid_token"),
        (lambda t: t[:10], "invalid_token"),
    ],
)
def test_bad_tokens(mutate: object, code: str) -> None:
    token = sign(SECRET, "join", {"m": "1"}, NOW)
    assert callable(mutate)
    with pytest.raises(TokenError) as info:
        verify(SECRET, "join", mutate(token), NOW)
    assert info.value.code == code


def test_links_stay_short() -> None:
    ids = {"s": "0123456789abcdef" * 2, "m": "fedcba9876543210" * 2, "a": "decline"}
    token = sign(SECRET, "rsvp", ids, NOW + timedelta(days=400))
    assert len(token) <= 96  # was ~190 with a JSON payload
    assert verify(SECRET, "rsvp", token, NOW).subject == ids


def test_purpose_and_secret_are_bound() -> None:
    token = sign(SECRET, "join", {"m": "1"}, NOW + timedelta(hours=1))
    with pytest.raises(TokenError):
        verify(SECRET, "rsvp", token, NOW)
    with pytest.raises(TokenError):
        verify("t" * 48, "join", token, NOW)


MEMBER = "0123456789abcdef0123456789abcdef"


def test_member_tokens() -> None:
    from dropin.domain.tokens import (
        FEED,
        PAGE,
        member_token,
        member_token_subject,
        member_token_valid,
    )

    feed = member_token(SECRET, FEED, MEMBER, "n1")
    page = member_token(SECRET, PAGE, MEMBER, "n1")
    assert feed != page and len(feed) == 46
    assert member_token_subject(feed) == MEMBER
    assert member_token_valid(SECRET, FEED, feed, MEMBER, "n1")
    # A feed token never opens the page, a new nonce revokes, another secret never matches.
    assert not member_token_valid(SECRET, PAGE, feed, MEMBER, "n1")
    assert not member_token_valid(SECRET, FEED, feed, MEMBER, "n2")
    assert not member_token_valid("t" * 48, FEED, feed, MEMBER, "n1")
    for junk in ("", "abc", "!" * 46, "A" * 200, feed[:-1]):
        assert member_token_subject(junk) is None or not member_token_valid(
            SECRET, FEED, junk, MEMBER, "n1"
        )
