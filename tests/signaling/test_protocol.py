"""The signaling codec: every client message parses, every bad frame gets its code."""

from __future__ import annotations

import dataclasses
import json
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from signaling.protocol import (
    CLIENT_MESSAGE_TYPES,
    CLOSE_REASONS,
    MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    ROOM_COMMAND_TYPES,
    SERVER_MESSAGE_TYPES,
    AcceptAgreement,
    Admit,
    AdmitAll,
    Admitted,
    Answer,
    CameraOff,
    CameraOffByFacilitator,
    CameraSelf,
    ClientMessage,
    CloseCode,
    Denied,
    Deny,
    End,
    EndReason,
    ErrorCode,
    ErrorMessage,
    FacilitatorBack,
    FacilitatorLost,
    Hello,
    IceCandidate,
    IceServer,
    Knock,
    Knocking,
    Leave,
    LeaveReason,
    Lock,
    LowerHand,
    Mute,
    MuteAll,
    MutedByFacilitator,
    MuteSelf,
    Offer,
    ParticipantInfo,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantState,
    ParticipantUpdated,
    ProtocolError,
    RaiseHand,
    Remove,
    Removed,
    Role,
    RoomEnded,
    RoomLocked,
    RoomSnapshot,
    RoomUnlocked,
    SendToWaiting,
    SentToWaiting,
    ServerMessage,
    TokenRefresh,
    Unlock,
    UnmuteSelf,
    Waiting,
    WaitingEntry,
    WaitingList,
    Welcome,
    close_reason,
    dump_client_message,
    dump_server_message,
    normalize_display_name,
    parse_client_message,
    parse_server_message,
)


def frame(**fields: Any) -> str:
    return json.dumps(fields)


def hello(**overrides: Any) -> str:
    fields: dict[str, Any] = {
        "type": "hello",
        "protocol": 1,
        "token": "eyJ.x.y",
        "display_name": "Sam",
    }
    fields.update(overrides)
    return json.dumps(fields)


def answer_of_size(size: int) -> str:
    """A valid answer frame exactly ``size`` bytes long."""
    empty = frame(type="answer", offer_id=1, sdp="")
    return frame(type="answer", offer_id=1, sdp="v" * (size - len(empty)))


# --- good frames -------------------------------------------------------------------------------

GOOD: list[tuple[str, ClientMessage]] = [
    (hello(), Hello(protocol=1, token="eyJ.x.y", display_name="Sam")),
    (hello(display_name="  Sam  "), Hello(protocol=1, token="eyJ.x.y", display_name="Sam")),
    (frame(type="accept_agreement"), AcceptAgreement()),
    (frame(type="knock"), Knock()),
    (
        frame(type="knock", audio_muted=True, camera_on=True),
        Knock(audio_muted=True, camera_on=True),
    ),
    (frame(type="answer", offer_id=3, sdp="v=0\r\n"), Answer(offer_id=3, sdp="v=0\r\n")),
    (frame(type="ice_candidate", candidate=""), IceCandidate(candidate="")),
    (
        frame(
            type="ice_candidate",
            candidate="candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
            sdp_mid="0",
            sdp_mline_index=0,
        ),
        IceCandidate("candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", "0", 0),
    ),
    (frame(type="ice_candidate", candidate="", sdp_mid=None), IceCandidate(candidate="")),
    (frame(type="mute_self"), MuteSelf()),
    (frame(type="unmute_self"), UnmuteSelf()),
    (frame(type="camera_self", on=True), CameraSelf(on=True)),
    (frame(type="raise_hand"), RaiseHand()),
    (frame(type="lower_hand"), LowerHand()),
    (frame(type="leave"), Leave()),
    (frame(type="admit", participant_id="pAbc-_9"), Admit("pAbc-_9")),
    (frame(type="deny", participant_id="p1"), Deny("p1")),
    (frame(type="admit_all"), AdmitAll()),
    (frame(type="send_to_waiting", participant_id="p1"), SendToWaiting("p1")),
    (frame(type="mute", participant_id="p1"), Mute("p1")),
    (frame(type="mute_all"), MuteAll()),
    (frame(type="camera_off", participant_id="p1"), CameraOff("p1")),
    (frame(type="remove", participant_id="p1"), Remove("p1")),
    (frame(type="lock"), Lock()),
    (frame(type="unlock"), Unlock()),
    (frame(type="end"), End()),
    # Key order and whitespace do not matter; bytes are as good as text.
    (' { "participant_id" : "p1" , "type" : "mute" } ', Mute("p1")),
]


@pytest.mark.parametrize(("raw", "expected"), GOOD, ids=[repr(g[1]) for g in GOOD])
def test_parses(raw: str, expected: ClientMessage) -> None:
    assert parse_client_message(raw) == expected
    assert parse_client_message(raw.encode()) == expected


def test_every_client_type_is_covered_by_the_table() -> None:
    assert {type(msg) for _, msg in GOOD} == set(CLIENT_MESSAGE_TYPES.values())


@pytest.mark.parametrize("msg", [m for _, m in GOOD], ids=[repr(g[1]) for g in GOOD])
def test_client_messages_round_trip(msg: ClientMessage) -> None:
    assert parse_client_message(dump_client_message(msg)) == msg


def test_a_frame_of_exactly_the_limit_parses() -> None:
    raw = answer_of_size(MAX_MESSAGE_BYTES)
    assert len(raw.encode()) == MAX_MESSAGE_BYTES
    assert isinstance(parse_client_message(raw), Answer)


def test_room_commands_exclude_connection_messages() -> None:
    room_types: set[type[object]] = set(ROOM_COMMAND_TYPES)
    assert not room_types & {Hello, Answer, IceCandidate}
    assert len(ROOM_COMMAND_TYPES) == len(CLIENT_MESSAGE_TYPES) - 3


# --- bad frames --------------------------------------------------------------------------------

BAD: list[tuple[str, str | bytes, ErrorCode]] = [
    # The frame.
    ("too large", answer_of_size(MAX_MESSAGE_BYTES + 1), ErrorCode.TOO_LARGE),
    ("too large bytes", answer_of_size(MAX_MESSAGE_BYTES + 1).encode(), ErrorCode.TOO_LARGE),
    ("too large junk", "x" * (10 * MAX_MESSAGE_BYTES), ErrorCode.TOO_LARGE),
    # Fewer characters than the limit but more bytes: the limit is in bytes.
    ("too large in utf-8", frame(type="answer", offer_id=1, sdp="é" * 40000), ErrorCode.TOO_LARGE),
    ("empty", "", ErrorCode.BAD_JSON),
    ("not json", "hello", ErrorCode.BAD_JSON),
    ("truncated", '{"type": "knock"', ErrorCode.BAD_JSON),
    ("not utf-8", b'{"type": "knock", "x": "\xff"}', ErrorCode.BAD_JSON),
    ("lone surrogate", '{"type": "knock", "x": "\ud800"}', ErrorCode.BAD_JSON),
    ("duplicate key", '{"type": "knock", "type": "leave"}', ErrorCode.BAD_JSON),
    ("NaN", '{"type": "answer", "offer_id": NaN, "sdp": "v=0"}', ErrorCode.BAD_JSON),
    ("Infinity", '{"type": "answer", "offer_id": Infinity, "sdp": "v=0"}', ErrorCode.BAD_JSON),
    ("deep nesting", "[" * 30_000 + "]" * 30_000, ErrorCode.BAD_JSON),
    (
        "huge integer",
        '{"type":"answer","offer_id":' + "9" * 5000 + ',"sdp":"v"}',
        ErrorCode.BAD_JSON,
    ),
    ("array", '[{"type": "knock"}]', ErrorCode.NOT_OBJECT),
    ("string", '"knock"', ErrorCode.NOT_OBJECT),
    ("null", "null", ErrorCode.NOT_OBJECT),
    ("number", "4", ErrorCode.NOT_OBJECT),
    # The envelope.
    ("no type", "{}", ErrorCode.MISSING_FIELD),
    ("type not a string", frame(type=1), ErrorCode.WRONG_TYPE),
    ("type null", frame(type=None), ErrorCode.WRONG_TYPE),
    ("unknown type", frame(type="chat", text="hi"), ErrorCode.UNKNOWN_TYPE),
    ("private message", frame(type="private_message", to="p2"), ErrorCode.UNKNOWN_TYPE),
    ("server type from client", frame(type="welcome"), ErrorCode.UNKNOWN_TYPE),
    ("type case", frame(type="Knock"), ErrorCode.UNKNOWN_TYPE),
    # Fields.
    ("extra field", frame(type="knock", please=True), ErrorCode.UNKNOWN_FIELD),
    (
        "extra field on admit",
        frame(type="admit", participant_id="p1", all=1),
        ErrorCode.UNKNOWN_FIELD,
    ),
    ("missing participant", frame(type="admit"), ErrorCode.MISSING_FIELD),
    ("missing sdp", frame(type="answer", offer_id=1), ErrorCode.MISSING_FIELD),
    ("missing on", frame(type="camera_self"), ErrorCode.MISSING_FIELD),
    ("participant id number", frame(type="mute", participant_id=5), ErrorCode.WRONG_TYPE),
    ("participant id null", frame(type="remove", participant_id=None), ErrorCode.WRONG_TYPE),
    ("bool as int", frame(type="answer", offer_id=True, sdp="v=0"), ErrorCode.WRONG_TYPE),
    ("float as int", frame(type="answer", offer_id=1.0, sdp="v=0"), ErrorCode.WRONG_TYPE),
    ("int as bool", frame(type="camera_self", on=1), ErrorCode.WRONG_TYPE),
    ("string as bool", frame(type="knock", audio_muted="yes"), ErrorCode.WRONG_TYPE),
    ("sdp object", frame(type="answer", offer_id=1, sdp={"sdp": "v=0"}), ErrorCode.WRONG_TYPE),
    (
        "mline index string",
        frame(type="ice_candidate", candidate="", sdp_mline_index="0"),
        ErrorCode.WRONG_TYPE,
    ),
    # Values.
    ("participant id shape", frame(type="admit", participant_id="p 1"), ErrorCode.INVALID_VALUE),
    ("participant id empty", frame(type="admit", participant_id=""), ErrorCode.INVALID_VALUE),
    (
        "participant id email",
        frame(type="remove", participant_id="a@b.org"),
        ErrorCode.INVALID_VALUE,
    ),
    ("participant id long", frame(type="mute", participant_id="p" * 65), ErrorCode.INVALID_VALUE),
    ("offer id zero", frame(type="answer", offer_id=0, sdp="v=0"), ErrorCode.INVALID_VALUE),
    ("offer id huge", frame(type="answer", offer_id=2**40, sdp="v=0"), ErrorCode.INVALID_VALUE),
    ("sdp blank", frame(type="answer", offer_id=1, sdp=" \r\n"), ErrorCode.INVALID_VALUE),
    ("candidate long", frame(type="ice_candidate", candidate="c" * 1025), ErrorCode.INVALID_VALUE),
    (
        "mline index negative",
        frame(type="ice_candidate", candidate="", sdp_mline_index=-1),
        ErrorCode.INVALID_VALUE,
    ),
    # hello.
    ("hello version 2", hello(protocol=2), ErrorCode.UNSUPPORTED_VERSION),
    ("hello version 0", hello(protocol=0), ErrorCode.UNSUPPORTED_VERSION),
    # A future hello may look different; the version is what its sender needs to hear.
    (
        "hello version 2 other shape",
        frame(type="hello", protocol=2, auth={}),
        ErrorCode.UNSUPPORTED_VERSION,
    ),
    ("hello version string", hello(protocol="1"), ErrorCode.WRONG_TYPE),
    (
        "hello no version",
        frame(type="hello", token="t", display_name="Sam"),
        ErrorCode.MISSING_FIELD,
    ),
    (
        "hello no token",
        frame(type="hello", protocol=1, display_name="Sam"),
        ErrorCode.MISSING_FIELD,
    ),
    ("hello empty token", hello(token=""), ErrorCode.INVALID_VALUE),
    ("hello huge token", hello(token="t" * 4097), ErrorCode.INVALID_VALUE),
    ("hello no name", frame(type="hello", protocol=1, token="t"), ErrorCode.MISSING_FIELD),
    ("hello name number", hello(display_name=7), ErrorCode.WRONG_TYPE),
    ("hello email field", hello(email="a@b.org"), ErrorCode.UNKNOWN_FIELD),
]


@pytest.mark.parametrize(("raw", "code"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_frame_gets_its_code(raw: str | bytes, code: ErrorCode) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_client_message(raw)
    assert caught.value.code is code
    # The reason is short and never echoes a large input back.
    assert 0 < len(caught.value.reason) <= 120


def test_reason_names_the_field() -> None:
    with pytest.raises(ProtocolError, match="participant_id"):
        parse_client_message(frame(type="admit"))
    with pytest.raises(ProtocolError, match="'please'"):
        parse_client_message(frame(type="knock", please=True))


def test_only_fatal_errors_carry_a_close_code() -> None:
    assert ProtocolError(ErrorCode.TOO_LARGE, "x").close_code is CloseCode.TOO_LARGE
    assert ProtocolError(ErrorCode.UNSUPPORTED_VERSION, "x").close_code is CloseCode.BAD_MESSAGE
    assert ProtocolError(ErrorCode.BAD_JSON, "x").close_code is None
    assert ProtocolError(ErrorCode.UNKNOWN_FIELD, "x").close_code is None


# --- display names -----------------------------------------------------------------------------

GOOD_NAMES = [
    ("Sam", "Sam"),
    ("  Sam  ", "Sam"),
    ("Mary Ann", "Mary Ann"),
    (unicodedata.normalize("NFD", "José"), "José"),
    ("Zoë 🌻", "Zoë 🌻"),
    ("\U0001f468\u200d\U0001f469\u200d\U0001f467", "\U0001f468\u200d\U0001f469\u200d\U0001f467"),
    ("سارا", "سارا"),
    ("x" * 40, "x" * 40),
    ("  " + "x" * 40 + "  ", "x" * 40),
    ("A", "A"),
]


@pytest.mark.parametrize(("raw", "expected"), GOOD_NAMES)
def test_display_name_accepted(raw: str, expected: str) -> None:
    assert normalize_display_name(raw) == expected
    assert parse_client_message(hello(display_name=raw)) == Hello(1, "eyJ.x.y", expected)


BAD_NAMES = [
    ("empty", ""),
    ("blank", "   "),
    ("only newline", "\n"),
    ("too long", "x" * 41),
    ("newline inside", "Sam\nSmith"),
    ("tab", "Sam\tSmith"),
    ("nul", "Sam\x00"),
    ("escape", "\x1b[31mSam"),
    ("delete", "Sam\x7f"),
    ("bidi override", "Sam\u202etxt.exe"),
    ("zero width space", "Sa\u200bm"),
    ("invisible tag", "Sam\U000e0041"),
    ("line separator", "Sam\u2028Smith"),
    ("private use", "Sam\ue000"),
]


@pytest.mark.parametrize("raw", [b[1] for b in BAD_NAMES], ids=[b[0] for b in BAD_NAMES])
def test_display_name_refused(raw: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_client_message(hello(display_name=raw))
    assert caught.value.code is ErrorCode.INVALID_VALUE


# --- server messages ---------------------------------------------------------------------------

INFO = ParticipantInfo("p1", "Sam", Role.PARENT, False, False, True, True)
ENTRY = WaitingEntry("p2", "Alex", True)
SNAPSHOT = RoomSnapshot(False, True, 240.0, (INFO,), (ENTRY,))

SERVER: list[ServerMessage] = [
    Welcome(
        participant_id="p1",
        role=Role.FACILITATOR,
        display_name="Sam",
        state=ParticipantState.ADMITTED,
        agreement_accepted=True,
        resumed=True,
        reconnect_grace=30.0,
        room=SNAPSHOT,
        ice_servers=(
            IceServer(("stun:stun.example.org:3478",)),
            IceServer(("turn:turn.example.org:3478?transport=udp",), "1700000000:p1", "c2VjcmV0"),
        ),
    ),
    TokenRefresh("eyJ.a.b", 900),
    Waiting(2),
    Admitted(SNAPSHOT),
    Denied(),
    Knocking("p2", "Alex", (ENTRY,)),
    WaitingList(()),
    ParticipantJoined(INFO),
    ParticipantLeft("p1", LeaveReason.REMOVED),
    ParticipantUpdated(INFO),
    Offer(1, "v=0\r\n", fresh=True),
    MutedByFacilitator(),
    CameraOffByFacilitator(),
    SentToWaiting(1),
    Removed(),
    RoomLocked(),
    RoomUnlocked(),
    FacilitatorLost(300.0),
    FacilitatorBack(),
    RoomEnded(EndReason.FACILITATOR_LOST),
    ErrorMessage(ErrorCode.FORBIDDEN, "only a facilitator can do that", "admit"),
]


def test_every_server_type_is_covered() -> None:
    assert {type(m) for m in SERVER} == set(SERVER_MESSAGE_TYPES.values())


@pytest.mark.parametrize("msg", SERVER, ids=[type(m).__name__ for m in SERVER])
def test_server_messages_round_trip(msg: ServerMessage) -> None:
    text = dump_server_message(msg)
    assert json.loads(text)["type"] == msg.type
    assert text.startswith('{"type":')
    assert parse_server_message(text) == msg


def test_dump_shape() -> None:
    body = json.loads(dump_server_message(SERVER[0]))
    assert body["protocol"] == PROTOCOL_VERSION
    assert body["role"] == "facilitator"
    assert body["room"]["participants"][0] == {
        "participant_id": "p1",
        "display_name": "Sam",
        "role": "parent",
        "audio_muted": False,
        "camera_on": False,
        "hand_raised": True,
        "connected": True,
    }
    # RTCIceServer turns a null username into "null": absent stays absent.
    assert body["ice_servers"][0] == {"urls": ["stun:stun.example.org:3478"]}
    assert body["ice_servers"][1]["username"] == "1700000000:p1"


def test_names_are_sent_as_typed() -> None:
    text = dump_server_message(ParticipantJoined(dataclasses.replace(INFO, display_name="Zoë")))
    assert "Zoë" in text


def _field_names(cls: type[Any]) -> set[str]:
    names: set[str] = set()
    for f in dataclasses.fields(cls):
        names.add(f.name)
    return names


@pytest.mark.parametrize(
    "cls",
    [*SERVER_MESSAGE_TYPES.values(), ParticipantInfo, WaitingEntry, RoomSnapshot, IceServer],
)
def test_no_server_message_can_carry_an_email_or_member_id(cls: type[Any]) -> None:
    assert not {n for n in _field_names(cls) if "email" in n or "member" in n}


# --- codes -------------------------------------------------------------------------------------


def test_close_codes_are_application_codes() -> None:
    for code in CloseCode:
        assert code == CloseCode.NORMAL or 4000 <= code <= 4999


@pytest.mark.parametrize("code", list(CloseCode))
def test_every_close_code_has_a_reason_that_fits_a_close_frame(code: CloseCode) -> None:
    assert close_reason(code) == CLOSE_REASONS[code]
    assert 0 < len(close_reason(code).encode()) <= 123


def test_codes_are_distinct() -> None:
    assert len({c.value for c in CloseCode}) == len(CloseCode)
    assert len({c.value for c in ErrorCode}) == len(ErrorCode)


# --- the document ------------------------------------------------------------------------------

DOC = Path(__file__).resolve().parents[2] / "docs" / "signaling.md"


def test_the_protocol_document_covers_every_message_and_code() -> None:
    text = DOC.read_text()
    names = [*CLIENT_MESSAGE_TYPES, *SERVER_MESSAGE_TYPES, *(c.value for c in ErrorCode)]
    missing = [n for n in names if f"`{n}`" not in text]
    missing += [str(c.value) for c in CloseCode if f"| {c.value} |" not in text]
    for cls in (ParticipantInfo, WaitingEntry, RoomSnapshot, IceServer, Welcome):
        missing += [f.name for f in dataclasses.fields(cls) if f"`{f.name}`" not in text]
    assert not missing


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (frame(type="waiting"), ErrorCode.MISSING_FIELD),
        (frame(type="room_ended", reason="bored"), ErrorCode.INVALID_VALUE),
        (frame(type="room_ended", reason=1), ErrorCode.WRONG_TYPE),
        (frame(type="waiting_list", waiting={}), ErrorCode.WRONG_TYPE),
        (frame(type="waiting_list", waiting=[1]), ErrorCode.WRONG_TYPE),
        (
            frame(type="waiting_list", waiting=[{"participant_id": "p", "display_name": "S"}]),
            ErrorCode.MISSING_FIELD,
        ),
        (
            frame(
                type="waiting_list",
                waiting=[
                    {"participant_id": "p", "display_name": "S", "connected": True, "type": "x"}
                ],
            ),
            ErrorCode.UNKNOWN_FIELD,
        ),
        (frame(type="facilitator_lost", seconds_left=True), ErrorCode.WRONG_TYPE),
        (frame(type="knock"), ErrorCode.MISSING_FIELD),  # the server's knock has fields
    ],
)
def test_server_frames_are_checked_too(raw: str, code: ErrorCode) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_server_message(raw)
    assert caught.value.code is code


def test_numbers_may_be_integers_where_floats_are_expected() -> None:
    assert parse_server_message(frame(type="facilitator_lost", seconds_left=300)) == (
        FacilitatorLost(300.0)
    )
