"""The dropin signaling protocol, version 1: message types, parsing and dumping.

One WebSocket per participant carries JSON text frames, each a single object with a ``type``
field. The client's first message is ``hello`` (it carries the protocol version and the room
token); every other message is understood in the context of that connection. The server is
always the WebRTC offerer. ``docs/signaling.md`` is the reference for client writers; this module
is its executable form.

Pure: no I/O, no clock, no asyncio. ``parse_client_message`` turns untrusted bytes into a frozen
dataclass or raises ``ProtocolError``; ``dump_server_message`` turns a server dataclass into
JSON text. The reverse pair (``dump_client_message``, ``parse_server_message``) exists for test
clients and tools written in Python.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, IntEnum, StrEnum
from typing import Any, ClassVar, Final, TypeVar

__all__ = [
    "CLIENT_MESSAGE_TYPES",
    "CLOSE_REASONS",
    "MAX_BAD_MESSAGES",
    "MAX_DISPLAY_NAME_CHARS",
    "MAX_MESSAGE_BYTES",
    "PROTOCOL_VERSION",
    "ROOM_COMMAND_TYPES",
    "SERVER_MESSAGE_TYPES",
    "AcceptAgreement",
    "Admit",
    "AdmitAll",
    "Admitted",
    "Answer",
    "CameraOff",
    "CameraOffByFacilitator",
    "CameraSelf",
    "ClientMessage",
    "CloseCode",
    "Denied",
    "Deny",
    "End",
    "EndReason",
    "ErrorCode",
    "ErrorMessage",
    "FacilitatorBack",
    "FacilitatorLost",
    "Hello",
    "IceCandidate",
    "IceServer",
    "Knock",
    "Knocking",
    "Leave",
    "LeaveReason",
    "Lock",
    "LowerHand",
    "Mute",
    "MuteAll",
    "MuteSelf",
    "MutedByFacilitator",
    "Offer",
    "ParticipantInfo",
    "ParticipantJoined",
    "ParticipantLeft",
    "ParticipantState",
    "ParticipantUpdated",
    "ProtocolError",
    "RaiseHand",
    "Remove",
    "Removed",
    "Role",
    "RoomCommand",
    "RoomEnded",
    "RoomLocked",
    "RoomSnapshot",
    "RoomUnlocked",
    "SendToWaiting",
    "SentToWaiting",
    "ServerMessage",
    "TokenRefresh",
    "Unlock",
    "UnmuteSelf",
    "Waiting",
    "WaitingEntry",
    "WaitingList",
    "Welcome",
    "close_reason",
    "dump_client_message",
    "dump_server_message",
    "normalize_display_name",
    "parse_client_message",
    "parse_server_message",
]

PROTOCOL_VERSION: Final = 1

# Measured in UTF-8 bytes of the whole frame. Chromium's answer for a 12-person room is about
# 30 KB (see signaling/sdp_check.py), so 64 KiB carries it, JSON escaping included, without
# letting a client make the server parse megabytes.
MAX_MESSAGE_BYTES: Final = 64 * 1024

# After this many malformed messages (MALFORMED) on one connection the server closes it with
# 4400: one bad message is a client bug worth an explanation, a stream of them is abuse.
MAX_BAD_MESSAGES: Final = 10

MAX_DISPLAY_NAME_CHARS: Final = 40
MAX_TOKEN_CHARS: Final = 4096
MAX_CANDIDATE_CHARS: Final = 1024
MAX_OFFER_ID: Final = 2**31 - 1

# Participant ids are minted by the server (see signaling.room); a client only ever echoes one
# back, so anything outside this shape is a client bug, not a name to look up.
_PARTICIPANT_ID_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


# --- codes -------------------------------------------------------------------------------------


class ErrorCode(StrEnum):
    """The ``code`` of an ``error`` message. Clients switch on these, never on the text."""

    # The frame itself.
    BAD_JSON = "bad_json"
    NOT_OBJECT = "not_object"
    TOO_LARGE = "too_large"
    UNKNOWN_TYPE = "unknown_type"
    UNSUPPORTED_VERSION = "unsupported_version"
    MISSING_FIELD = "missing_field"
    UNKNOWN_FIELD = "unknown_field"
    WRONG_TYPE = "wrong_type"
    INVALID_VALUE = "invalid_value"
    # The connection.
    INVALID_TOKEN = "invalid_token"  # noqa: S105 - an error code, not a secret
    RATE_LIMITED = "rate_limited"
    NOT_JOINED = "not_joined"
    # The room.
    WRONG_STATE = "wrong_state"
    AGREEMENT_REQUIRED = "agreement_required"
    FORBIDDEN = "forbidden"
    NO_SUCH_PARTICIPANT = "no_such_participant"
    NO_SUCH_ROOM = "no_such_room"
    ROOM_LOCKED = "room_locked"
    ROOM_FULL = "room_full"
    ROOM_ENDED = "room_ended"
    REMOVED = "removed"
    # Media negotiation.
    BAD_SDP = "bad_sdp"
    STALE_ANSWER = "stale_answer"
    NEGOTIATION_TIMEOUT = "negotiation_timeout"


# The errors that count towards MAX_BAD_MESSAGES: a message the client should never have
# sent in that form. Refusals that depend on the room's state (wrong_state,
# no_such_participant, stale_answer...) are not counted: honest clients meet them in races,
# a facilitator double-tapping "Admit" for example.
MALFORMED: Final = frozenset(
    {
        ErrorCode.BAD_JSON,
        ErrorCode.NOT_OBJECT,
        ErrorCode.TOO_LARGE,
        ErrorCode.UNKNOWN_TYPE,
        ErrorCode.UNSUPPORTED_VERSION,
        ErrorCode.MISSING_FIELD,
        ErrorCode.UNKNOWN_FIELD,
        ErrorCode.WRONG_TYPE,
        ErrorCode.INVALID_VALUE,
        ErrorCode.NOT_JOINED,
    }
)


class CloseCode(IntEnum):
    """WebSocket close codes the server uses (application range 4000-4999).

    The last three digits echo the nearest HTTP status so they are easy to remember. A close is
    preceded, where the connection is still usable, by an ``error`` or an explanatory message
    (``removed``, ``denied``, ``room_ended``).
    """

    # Standard code: the participant sent ``leave``.
    NORMAL = 1000
    BAD_MESSAGE = 4400
    INVALID_TOKEN = 4401
    REMOVED = 4403
    NO_SUCH_ROOM = 4404
    DENIED = 4406
    TIMEOUT = 4408
    REPLACED = 4409
    ROOM_ENDED = 4410
    TOO_LARGE = 4413
    ROOM_LOCKED = 4423
    # No HTTP twin; kept apart from 4423 so the join page can say "full" rather than "locked".
    ROOM_FULL = 4424
    RATE_LIMITED = 4429


# Close reasons must fit in a control frame: at most 123 bytes of UTF-8.
CLOSE_REASONS: Final[Mapping[CloseCode, str]] = {
    CloseCode.NORMAL: "left the room",
    CloseCode.BAD_MESSAGE: "too many malformed messages",
    CloseCode.INVALID_TOKEN: "room token missing, invalid or expired",
    CloseCode.REMOVED: "removed from this session by a facilitator",
    CloseCode.NO_SUCH_ROOM: "no such room, or it is not open",
    CloseCode.DENIED: "a facilitator did not admit you",
    CloseCode.TIMEOUT: "timed out waiting for the client",
    CloseCode.REPLACED: "replaced by a newer connection for the same member",
    CloseCode.ROOM_ENDED: "the room has ended",
    CloseCode.TOO_LARGE: f"message larger than {MAX_MESSAGE_BYTES} bytes",
    CloseCode.ROOM_LOCKED: "the room is locked to new arrivals",
    CloseCode.ROOM_FULL: "the room is full",
    CloseCode.RATE_LIMITED: "too many messages",
}


def close_reason(code: CloseCode) -> str:
    """The standard human-readable reason sent with ``code``."""
    return CLOSE_REASONS[code]


class Role(StrEnum):
    PARENT = "parent"
    FACILITATOR = "facilitator"


class ParticipantState(StrEnum):
    """Where a participant is: at the door, in the waiting room, or in the room."""

    LOBBY = "lobby"
    WAITING = "waiting"
    ADMITTED = "admitted"


class LeaveReason(StrEnum):
    LEFT = "left"
    DISCONNECTED = "disconnected"
    REMOVED = "removed"
    SENT_TO_WAITING = "sent_to_waiting"


class EndReason(StrEnum):
    ENDED_BY_FACILITATOR = "ended_by_facilitator"
    FACILITATOR_LOST = "facilitator_lost"
    TIME_UP = "time_up"
    SHUTDOWN = "shutdown"
    # The organizer changed the session under a live room.
    CANCELLED = "cancelled"
    RESCHEDULED = "rescheduled"


class ProtocolError(Exception):
    """A client message the server will not act on.

    ``code`` is an ``ErrorCode``; ``reason`` is short English for people reading logs and
    consoles. It never quotes more than a field name back, so a token pasted into the wrong
    field cannot end up in a log line.
    """

    def __init__(self, code: ErrorCode, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason

    @property
    def close_code(self) -> CloseCode | None:
        """The close code if this error ends the connection at once, else ``None``."""
        if self.code is ErrorCode.TOO_LARGE:
            return CloseCode.TOO_LARGE
        if self.code is ErrorCode.UNSUPPORTED_VERSION:
            # Nothing else this client says can be understood.
            return CloseCode.BAD_MESSAGE
        return None


# --- validators --------------------------------------------------------------------------------

# Format characters that legitimately build emoji and some scripts' words; every other Cf
# (bidi overrides, invisible tags, zero-width spaces) can disguise a name, so it is refused.
_ALLOWED_FORMAT_CHARS: Final = frozenset({"\u200c", "\u200d"})
_REFUSED_CATEGORIES: Final = frozenset({"Cc", "Cs", "Co", "Zl", "Zp"})


def normalize_display_name(value: str) -> str:
    """Return ``value`` NFC-normalized and trimmed, or raise ``ProtocolError(INVALID_VALUE)``.

    A name is 1-40 code points with no control, format, private-use or line-separator
    characters: it is shown to other parents, so it must read as what it is.
    """
    name = unicodedata.normalize("NFC", value).strip()
    if not 1 <= len(name) <= MAX_DISPLAY_NAME_CHARS:
        raise ProtocolError(
            ErrorCode.INVALID_VALUE,
            f"display_name must be 1-{MAX_DISPLAY_NAME_CHARS} characters after trimming",
        )
    for char in name:
        category = unicodedata.category(char)
        if category in _REFUSED_CATEGORIES or (
            category == "Cf" and char not in _ALLOWED_FORMAT_CHARS
        ):
            raise ProtocolError(
                ErrorCode.INVALID_VALUE, "display_name contains a control or invisible character"
            )
    return name


def _check_participant_id(value: str) -> None:
    if not _PARTICIPANT_ID_RE.fullmatch(value):
        raise ProtocolError(ErrorCode.INVALID_VALUE, "participant_id is not a participant id")


# --- client -> server --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    """First message on every connection: join, or resume if this member is already known."""

    type: ClassVar[str] = "hello"
    protocol: int
    token: str
    display_name: str

    def __post_init__(self) -> None:
        if self.protocol != PROTOCOL_VERSION:
            raise ProtocolError(
                ErrorCode.UNSUPPORTED_VERSION,
                f"this server speaks protocol {PROTOCOL_VERSION}",
            )
        if not 1 <= len(self.token) <= MAX_TOKEN_CHARS:
            raise ProtocolError(ErrorCode.INVALID_VALUE, "token is empty or too long")
        # Frozen: normalizing in place is the one sanctioned write.
        object.__setattr__(self, "display_name", normalize_display_name(self.display_name))


@dataclass(frozen=True, slots=True)
class AcceptAgreement:
    type: ClassVar[str] = "accept_agreement"


@dataclass(frozen=True, slots=True)
class Knock:
    """Ask to enter. Facilitators enter at once; parents wait to be admitted."""

    type: ClassVar[str] = "knock"
    # The pre-join choices, so the room shows the right state from the first moment.
    audio_muted: bool = False
    camera_on: bool = False


@dataclass(frozen=True, slots=True)
class Answer:
    type: ClassVar[str] = "answer"
    offer_id: int
    sdp: str

    def __post_init__(self) -> None:
        if not 1 <= self.offer_id <= MAX_OFFER_ID:
            raise ProtocolError(ErrorCode.INVALID_VALUE, "offer_id out of range")
        if not self.sdp.strip():
            raise ProtocolError(ErrorCode.INVALID_VALUE, "sdp is empty")


@dataclass(frozen=True, slots=True)
class IceCandidate:
    """A trickled client candidate; ``candidate == ""`` means end of candidates."""

    type: ClassVar[str] = "ice_candidate"
    candidate: str
    sdp_mid: str | None = None
    sdp_mline_index: int | None = None

    def __post_init__(self) -> None:
        if len(self.candidate) > MAX_CANDIDATE_CHARS:
            raise ProtocolError(ErrorCode.INVALID_VALUE, "candidate too long")
        if self.sdp_mid is not None and len(self.sdp_mid) > 64:
            raise ProtocolError(ErrorCode.INVALID_VALUE, "sdp_mid too long")
        if self.sdp_mline_index is not None and not 0 <= self.sdp_mline_index < 1024:
            raise ProtocolError(ErrorCode.INVALID_VALUE, "sdp_mline_index out of range")


@dataclass(frozen=True, slots=True)
class MuteSelf:
    type: ClassVar[str] = "mute_self"


@dataclass(frozen=True, slots=True)
class UnmuteSelf:
    type: ClassVar[str] = "unmute_self"


@dataclass(frozen=True, slots=True)
class CameraSelf:
    type: ClassVar[str] = "camera_self"
    on: bool


@dataclass(frozen=True, slots=True)
class RaiseHand:
    type: ClassVar[str] = "raise_hand"


@dataclass(frozen=True, slots=True)
class LowerHand:
    type: ClassVar[str] = "lower_hand"


@dataclass(frozen=True, slots=True)
class Leave:
    type: ClassVar[str] = "leave"


# Facilitator commands. A parent sending any of them gets ``error`` with code ``forbidden``.


@dataclass(frozen=True, slots=True)
class Admit:
    type: ClassVar[str] = "admit"
    participant_id: str

    def __post_init__(self) -> None:
        _check_participant_id(self.participant_id)


@dataclass(frozen=True, slots=True)
class Deny:
    type: ClassVar[str] = "deny"
    participant_id: str

    def __post_init__(self) -> None:
        _check_participant_id(self.participant_id)


@dataclass(frozen=True, slots=True)
class AdmitAll:
    type: ClassVar[str] = "admit_all"


@dataclass(frozen=True, slots=True)
class SendToWaiting:
    type: ClassVar[str] = "send_to_waiting"
    participant_id: str

    def __post_init__(self) -> None:
        _check_participant_id(self.participant_id)


@dataclass(frozen=True, slots=True)
class Mute:
    type: ClassVar[str] = "mute"
    participant_id: str

    def __post_init__(self) -> None:
        _check_participant_id(self.participant_id)


@dataclass(frozen=True, slots=True)
class MuteAll:
    type: ClassVar[str] = "mute_all"


@dataclass(frozen=True, slots=True)
class CameraOff:
    type: ClassVar[str] = "camera_off"
    participant_id: str

    def __post_init__(self) -> None:
        _check_participant_id(self.participant_id)


@dataclass(frozen=True, slots=True)
class Remove:
    type: ClassVar[str] = "remove"
    participant_id: str

    def __post_init__(self) -> None:
        _check_participant_id(self.participant_id)


@dataclass(frozen=True, slots=True)
class Lock:
    type: ClassVar[str] = "lock"


@dataclass(frozen=True, slots=True)
class Unlock:
    type: ClassVar[str] = "unlock"


@dataclass(frozen=True, slots=True)
class End:
    type: ClassVar[str] = "end"


# What signaling.room understands; hello, answer and ice_candidate belong to the connection
# and the relay.
RoomCommand = (
    AcceptAgreement
    | Knock
    | MuteSelf
    | UnmuteSelf
    | CameraSelf
    | RaiseHand
    | LowerHand
    | Leave
    | Admit
    | Deny
    | AdmitAll
    | SendToWaiting
    | Mute
    | MuteAll
    | CameraOff
    | Remove
    | Lock
    | Unlock
    | End
)
ClientMessage = Hello | Answer | IceCandidate | RoomCommand

ROOM_COMMAND_TYPES: Final[tuple[type[RoomCommand], ...]] = typing.get_args(RoomCommand)
CLIENT_MESSAGE_TYPES: Final[Mapping[str, type[ClientMessage]]] = {
    cls.type: cls for cls in (Hello, Answer, IceCandidate, *ROOM_COMMAND_TYPES)
}


# --- server -> client --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IceServer:
    """One entry of ``RTCConfiguration.iceServers``, passed to the browser as is."""

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None


@dataclass(frozen=True, slots=True)
class ParticipantInfo:
    """A participant in the room as others see it. Never carries a member id or an email."""

    participant_id: str
    display_name: str
    role: Role
    audio_muted: bool
    camera_on: bool
    hand_raised: bool
    # False while the participant is reconnecting (inside the grace window).
    connected: bool


@dataclass(frozen=True, slots=True)
class WaitingEntry:
    participant_id: str
    display_name: str
    connected: bool


@dataclass(frozen=True, slots=True)
class RoomSnapshot:
    """The room as the recipient may see it.

    ``participants`` is empty until the recipient is admitted (a parent at the door does not
    learn who is inside); ``waiting`` is only ever filled for facilitators.
    """

    locked: bool
    paused: bool
    # Seconds until a paused room ends unless a facilitator returns; None when not paused.
    pause_seconds_left: float | None
    participants: tuple[ParticipantInfo, ...] = ()
    waiting: tuple[WaitingEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class Welcome:
    type: ClassVar[str] = "welcome"
    participant_id: str
    role: Role
    display_name: str
    state: ParticipantState
    agreement_accepted: bool
    # True when this connection took over an existing participant (reconnect or second tab).
    resumed: bool
    # How long the server keeps a dropped participant's place, in seconds.
    reconnect_grace: float
    room: RoomSnapshot
    ice_servers: tuple[IceServer, ...] = ()
    protocol: int = PROTOCOL_VERSION


@dataclass(frozen=True, slots=True)
class TokenRefresh:
    """A fresh room token; use the latest one for ``hello`` when reconnecting."""

    type: ClassVar[str] = "token_refresh"
    token: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class Waiting:
    """You are in the waiting room at ``position`` (1 = next). Re-sent when it changes."""

    type: ClassVar[str] = "waiting"
    position: int


@dataclass(frozen=True, slots=True)
class Admitted:
    type: ClassVar[str] = "admitted"
    room: RoomSnapshot


@dataclass(frozen=True, slots=True)
class Denied:
    type: ClassVar[str] = "denied"


@dataclass(frozen=True, slots=True)
class Knocking:
    """To facilitators: ``participant_id`` knocked; ``waiting`` is the whole list, in order."""

    type: ClassVar[str] = "knock"
    participant_id: str
    display_name: str
    waiting: tuple[WaitingEntry, ...]


@dataclass(frozen=True, slots=True)
class WaitingList:
    """To facilitators: the waiting list changed for a reason other than a knock."""

    type: ClassVar[str] = "waiting_list"
    waiting: tuple[WaitingEntry, ...]


@dataclass(frozen=True, slots=True)
class ParticipantJoined:
    type: ClassVar[str] = "participant_joined"
    participant: ParticipantInfo


@dataclass(frozen=True, slots=True)
class ParticipantLeft:
    type: ClassVar[str] = "participant_left"
    participant_id: str
    reason: LeaveReason


@dataclass(frozen=True, slots=True)
class ParticipantUpdated:
    type: ClassVar[str] = "participant_updated"
    participant: ParticipantInfo


@dataclass(frozen=True, slots=True)
class Offer:
    """An SDP offer. Answer it with ``answer`` carrying the same ``offer_id``.

    ``fresh`` marks the first offer of a new server-side peer connection (after admission, a
    reconnect or a media failure): the client closes any peer connection it has and answers
    on a new one. Otherwise the offer renegotiates the current one.
    """

    type: ClassVar[str] = "offer"
    offer_id: int
    sdp: str
    fresh: bool = False


@dataclass(frozen=True, slots=True)
class MutedByFacilitator:
    type: ClassVar[str] = "muted_by_facilitator"


@dataclass(frozen=True, slots=True)
class CameraOffByFacilitator:
    type: ClassVar[str] = "camera_off_by_facilitator"


@dataclass(frozen=True, slots=True)
class SentToWaiting:
    type: ClassVar[str] = "sent_to_waiting"
    position: int


@dataclass(frozen=True, slots=True)
class Removed:
    type: ClassVar[str] = "removed"


@dataclass(frozen=True, slots=True)
class RoomLocked:
    type: ClassVar[str] = "room_locked"


@dataclass(frozen=True, slots=True)
class RoomUnlocked:
    type: ClassVar[str] = "room_unlocked"


@dataclass(frozen=True, slots=True)
class FacilitatorLost:
    """The last facilitator dropped: media is paused, the room ends in ``seconds_left``."""

    type: ClassVar[str] = "facilitator_lost"
    seconds_left: float


@dataclass(frozen=True, slots=True)
class FacilitatorBack:
    type: ClassVar[str] = "facilitator_back"


@dataclass(frozen=True, slots=True)
class RoomEnded:
    type: ClassVar[str] = "room_ended"
    reason: EndReason


@dataclass(frozen=True, slots=True)
class ErrorMessage:
    """A request was refused; the connection stays open unless a close follows."""

    type: ClassVar[str] = "error"
    code: ErrorCode
    message: str
    # The ``type`` of the client message that caused it, when it could be read.
    in_reply_to: str | None = None


ServerMessage = (
    Welcome
    | TokenRefresh
    | Waiting
    | Admitted
    | Denied
    | Knocking
    | WaitingList
    | ParticipantJoined
    | ParticipantLeft
    | ParticipantUpdated
    | Offer
    | MutedByFacilitator
    | CameraOffByFacilitator
    | SentToWaiting
    | Removed
    | RoomLocked
    | RoomUnlocked
    | FacilitatorLost
    | FacilitatorBack
    | RoomEnded
    | ErrorMessage
)
SERVER_MESSAGE_TYPES: Final[Mapping[str, type[ServerMessage]]] = {
    cls.type: cls for cls in typing.get_args(ServerMessage)
}


# --- decoding ----------------------------------------------------------------------------------

_T = TypeVar("_T")
_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    # Resolved once per class: the annotations are strings (from __future__ import annotations).
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def _type_name(hint: Any) -> str:
    if hint is str:
        return "a string"
    if hint is bool:
        return "a boolean"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    return "an object" if dataclasses.is_dataclass(hint) else "a value"


def _decode(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` (from json.loads) against ``hint`` and build dataclasses on the way."""
    origin = typing.get_origin(hint)
    if origin is types.UnionType:
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        (inner,) = (a for a in args if a is not type(None))
        return _decode(value, inner, where)
    if origin is tuple:
        if not isinstance(value, list):
            raise ProtocolError(ErrorCode.WRONG_TYPE, f"{where} must be a list")
        (item_hint, _ellipsis) = typing.get_args(hint)
        return tuple(_decode(v, item_hint, f"{where}[{i}]") for i, v in enumerate(value))
    if isinstance(hint, type) and issubclass(hint, Enum):
        if not isinstance(value, str):
            raise ProtocolError(ErrorCode.WRONG_TYPE, f"{where} must be a string")
        try:
            return hint(value)
        except ValueError:
            raise ProtocolError(ErrorCode.INVALID_VALUE, f"{where} is not a known value") from None
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ProtocolError(ErrorCode.WRONG_TYPE, f"{where} must be an object")
        return _build(hint, value, prefix=f"{where}.")
    # bool is an int subclass in Python but not in the protocol: true is not 1.
    ok = (
        (hint is bool and isinstance(value, bool))
        or (hint is int and isinstance(value, int) and not isinstance(value, bool))
        or (hint is float and isinstance(value, int | float) and not isinstance(value, bool))
        or (hint is str and isinstance(value, str))
    )
    if not ok:
        raise ProtocolError(ErrorCode.WRONG_TYPE, f"{where} must be {_type_name(hint)}")
    return float(value) if hint is float else value


def _build(cls: type[_T], obj: dict[str, Any], prefix: str = "") -> _T:
    """Build dataclass ``cls`` from ``obj``: no unknown fields, no missing ones, right types."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in obj:
        if key not in fields and not (key == "type" and not prefix):
            raise ProtocolError(ErrorCode.UNKNOWN_FIELD, f"unknown field {prefix}{key[:40]!r}")
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in obj:
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if required:
                raise ProtocolError(ErrorCode.MISSING_FIELD, f"missing field {prefix}{name}")
            continue
        kwargs[name] = _decode(obj[name], hints[name], prefix + name)
    return cls(**kwargs)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two equal keys; a proxy or a logger might keep the first.
    # Refusing both removes the ambiguity.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ProtocolError(ErrorCode.BAD_JSON, "duplicate key in object")
    return obj


def _reject_constant(name: str) -> Any:
    raise ProtocolError(ErrorCode.BAD_JSON, f"{name} is not JSON")


def _load_object(raw: str | bytes) -> dict[str, Any]:
    # Cheap check first: a str of more than MAX chars is more than MAX UTF-8 bytes.
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"message exceeds {MAX_MESSAGE_BYTES} bytes")
    if isinstance(raw, str):
        try:
            size = len(raw.encode("utf-8"))
        except UnicodeEncodeError:  # lone surrogates
            raise ProtocolError(ErrorCode.BAD_JSON, "message is not valid UTF-8") from None
        if size > MAX_MESSAGE_BYTES:
            raise ProtocolError(ErrorCode.TOO_LARGE, f"message exceeds {MAX_MESSAGE_BYTES} bytes")
        text = raw
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(ErrorCode.BAD_JSON, "message is not valid UTF-8") from None
    try:
        obj = json.loads(
            text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
        )
    except RecursionError:
        raise ProtocolError(ErrorCode.BAD_JSON, "message nested too deeply") from None
    except ValueError:
        raise ProtocolError(ErrorCode.BAD_JSON, "message is not valid JSON") from None
    if not isinstance(obj, dict):
        raise ProtocolError(ErrorCode.NOT_OBJECT, "message must be a JSON object")
    return obj


def _message_class(obj: dict[str, Any], table: Mapping[str, type[_T]]) -> type[_T]:
    if "type" not in obj:
        raise ProtocolError(ErrorCode.MISSING_FIELD, "missing field type")
    kind = obj["type"]
    if not isinstance(kind, str):
        raise ProtocolError(ErrorCode.WRONG_TYPE, "type must be a string")
    cls = table.get(kind)
    if cls is None:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {kind[:40]!r}")
    return cls


def parse_client_message(raw: str | bytes) -> ClientMessage:
    """Parse one WebSocket frame from a client.

    Raises ``ProtocolError`` with: ``too_large`` (over ``MAX_MESSAGE_BYTES``), ``bad_json``
    (not UTF-8, not JSON, duplicate keys, NaN), ``not_object``, ``unknown_type``,
    ``unsupported_version`` (a ``hello`` for another protocol version), ``unknown_field``,
    ``missing_field``, ``wrong_type`` or ``invalid_value``.
    """
    obj = _load_object(raw)
    cls = _message_class(obj, CLIENT_MESSAGE_TYPES)
    version = obj.get("protocol")
    if cls is Hello and type(version) is int and version != PROTOCOL_VERSION:
        # Checked before the other fields: a future hello may be shaped differently, and
        # "wrong version" is the one answer that helps its sender.
        raise ProtocolError(
            ErrorCode.UNSUPPORTED_VERSION, f"this server speaks protocol {PROTOCOL_VERSION}"
        )
    return _build(cls, obj)


def parse_server_message(raw: str | bytes) -> ServerMessage:
    """Parse a server frame; for Python test clients and tools (the server never calls it)."""
    obj = _load_object(raw)
    return _build(_message_class(obj, SERVER_MESSAGE_TYPES), obj)


# --- encoding ----------------------------------------------------------------------------------


def _encode(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, IceServer):
        # The browser's RTCIceServer turns a null username into the string "null": leave
        # absent what is absent.
        return {
            f.name: _encode(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if getattr(value, f.name) is not None
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    return value


def _dump(msg: Any) -> str:
    body = {"type": msg.type, **_encode(msg)}
    # Compact and UTF-8 (not \u escapes): names are shown as typed and frames stay small.
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def dump_server_message(msg: ServerMessage) -> str:
    """Serialize a server message to the JSON text sent on the WebSocket."""
    return _dump(msg)


def dump_client_message(msg: ClientMessage) -> str:
    """Serialize a client message; for Python test clients and tools."""
    return _dump(msg)
