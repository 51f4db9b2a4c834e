"""ICE servers and TURN REST credentials: pure functions, checked as a table."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from signaling.ice import IceConfig, ice_servers, turn_credentials
from signaling.protocol import IceServer

NOW = datetime(2028, 3, 14, 19, 0, tzinfo=UTC)
T = int(NOW.timestamp())


def test_turn_credentials_follow_the_rest_api_form() -> None:
    username, credential = turn_credentials("s3cret", "m42", NOW, 3600)
    assert username == f"{T + 3600}:m42"
    # What coturn's use-auth-secret computes for the same username.
    expected = hmac.new(b"s3cret", username.encode(), hashlib.sha1).digest()
    assert base64.b64decode(credential) == expected
    assert turn_credentials("other", "m42", NOW, 3600)[1] != credential
    assert turn_credentials("s3cret", "m43", NOW, 3600)[1] != credential


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (IceConfig(), ()),
        (IceConfig(stun_urls=("stun:a:3478",)), (IceServer(("stun:a:3478",)),)),
        (
            IceConfig(turn_urls=("turn:t:3478",)),
            (IceServer(("turn:t:3478",)),),
        ),
        (
            IceConfig(
                stun_urls=("stun:a",),
                turn_urls=("turn:t", "turns:t:5349"),
                turn_secret="k",
                turn_ttl=600,
            ),
            (
                IceServer(("stun:a",)),
                IceServer(
                    ("turn:t", "turns:t:5349"),
                    f"{T + 600}:m1",
                    turn_credentials("k", "m1", NOW, 600)[1],
                ),
            ),
        ),
    ],
)
def test_ice_servers(config: IceConfig, expected: tuple[IceServer, ...]) -> None:
    assert ice_servers(config, "m1", NOW) == expected
