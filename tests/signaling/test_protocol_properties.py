"""Properties of the signaling codec over generated frames (hypothesis).

Whatever a client sends, ``parse_client_message`` either returns a message or raises
``ProtocolError`` with one of the documented codes: never another exception (which the
server would turn into 1011). A message it accepts survives ``dump`` and ``parse`` unchanged.
The examples are derandomized so CI is repeatable; DROPIN_FUZZ_EXAMPLES runs more.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signaling.protocol import (
    CLIENT_MESSAGE_TYPES,
    MALFORMED,
    MAX_MESSAGE_BYTES,
    ErrorCode,
    ProtocolError,
    dump_client_message,
    parse_client_message,
)
from tests.signaling.test_protocol import GOOD

FUZZ = settings(
    max_examples=int(os.environ.get("DROPIN_FUZZ_EXAMPLES", "400")),
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# What a parse may refuse with: the malformed-frame codes (not_joined is the server's, later).
PARSE_CODES = MALFORMED - {ErrorCode.NOT_JOINED}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=60),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = sorted(
    {"type", "protocol", "token", "display_name", "offer_id", "sdp", "candidate", "sdp_mid"}
    | {"sdp_mline_index", "participant_id", "on", "audio_muted", "camera_on"}
)


def parses_or_refuses(raw: str | bytes) -> Any:
    """The one contract: a message, or a ProtocolError with a documented code."""
    try:
        msg = parse_client_message(raw)
    except ProtocolError as exc:
        assert exc.code in PARSE_CODES, exc.code
        assert len(exc.reason) <= 120  # short, and never the whole offending value
        return None
    # Accepted: it means the same after a trip through the wire.
    assert parse_client_message(dump_client_message(msg)) == msg
    return msg


@FUZZ
@given(st.text(max_size=300) | st.binary(max_size=300))
def test_any_text_or_bytes(raw: str | bytes) -> None:
    parses_or_refuses(raw)


@FUZZ
@given(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6))
def test_any_object_with_protocol_field_names(obj: dict[str, Any]) -> None:
    parses_or_refuses(json.dumps(obj))


@FUZZ
@given(
    st.sampled_from([raw for raw, _ in GOOD]),
    st.sampled_from(FIELDS),
    json_values,
)
def test_a_good_message_with_one_field_changed(good: str, field: str, value: Any) -> None:
    obj = json.loads(good)
    obj[field] = value
    parses_or_refuses(json.dumps(obj))


@FUZZ
@given(st.sampled_from(sorted(CLIENT_MESSAGE_TYPES)), st.integers(0, 2 * MAX_MESSAGE_BYTES))
def test_any_size(kind: str, size: int) -> None:
    obj = {"type": kind, "sdp": "v" * size}
    parses_or_refuses(json.dumps(obj))


@FUZZ
@given(st.integers(1, 5000))
def test_deep_nesting(depth: int) -> None:
    parses_or_refuses('{"type": "knock", "x": ' + "[" * depth + "]" * depth + "}")
