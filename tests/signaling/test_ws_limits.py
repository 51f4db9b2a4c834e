"""The WebSocket layer's pure parts: the rate limiter and when tokens are refreshed."""

from __future__ import annotations

import pytest

from signaling.ws import TokenBucket, refresh_delay


@pytest.mark.parametrize(
    ("times", "allowed"),
    [
        # A burst of 3 is allowed at once, the 4th is not.
        ([0.0, 0.0, 0.0, 0.0], [True, True, True, False]),
        # One token comes back every 0.5 s (rate 2/s).
        ([0.0, 0.0, 0.0, 0.0, 0.5, 0.5], [True, True, True, False, True, False]),
        # Idle time refills up to the burst, never beyond.
        ([0.0, 100.0, 100.0, 100.0, 100.0], [True, True, True, True, False]),
        # A steady 2/s is always allowed.
        ([i * 0.5 for i in range(20)], [True] * 20),
    ],
)
def test_token_bucket(times: list[float], allowed: list[bool]) -> None:
    bucket = TokenBucket(burst=3, rate=2.0, now=0.0)
    assert [bucket.take(t) for t in times] == allowed


@pytest.mark.parametrize(
    ("lifetime", "delay"),
    [(900, 780), (240, 120), (100, 50), (4, 2)],
)
def test_refresh_comes_before_expiry(lifetime: float, delay: float) -> None:
    assert refresh_delay(lifetime) == delay
