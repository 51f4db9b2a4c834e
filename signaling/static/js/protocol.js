// Generated from signaling/protocol.py by `python -m signaling.protocol_js`: do not edit.
// Change protocol.py, then run the command again; while this file is stale,
// `python -m signaling.protocol_js --check` and tests/signaling/test_protocol_js.py fail.

export const PROTOCOL_VERSION = 1;
export const MAX_DISPLAY_NAME_CHARS = 40;
export const MAX_MESSAGE_BYTES = 65536;

/** protocol.ErrorCode: The `code` of an `error` message. Clients switch on these, never on the text. */
export const ErrorCode = Object.freeze({
  BAD_JSON: "bad_json",
  NOT_OBJECT: "not_object",
  TOO_LARGE: "too_large",
  UNKNOWN_TYPE: "unknown_type",
  UNSUPPORTED_VERSION: "unsupported_version",
  MISSING_FIELD: "missing_field",
  UNKNOWN_FIELD: "unknown_field",
  WRONG_TYPE: "wrong_type",
  INVALID_VALUE: "invalid_value",
  INVALID_TOKEN: "invalid_token",
  RATE_LIMITED: "rate_limited",
  NOT_JOINED: "not_joined",
  WRONG_STATE: "wrong_state",
  AGREEMENT_REQUIRED: "agreement_required",
  FORBIDDEN: "forbidden",
  NO_SUCH_PARTICIPANT: "no_such_participant",
  NO_SUCH_ROOM: "no_such_room",
  ROOM_LOCKED: "room_locked",
  ROOM_FULL: "room_full",
  ROOM_ENDED: "room_ended",
  REMOVED: "removed",
  BAD_SDP: "bad_sdp",
  STALE_ANSWER: "stale_answer",
  NEGOTIATION_TIMEOUT: "negotiation_timeout",
});

/** protocol.CloseCode: WebSocket close codes the server uses (application range 4000-4999). */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  BAD_MESSAGE: 4400,
  INVALID_TOKEN: 4401,
  REMOVED: 4403,
  NO_SUCH_ROOM: 4404,
  DENIED: 4406,
  TIMEOUT: 4408,
  REPLACED: 4409,
  ROOM_ENDED: 4410,
  TOO_LARGE: 4413,
  ROOM_LOCKED: 4423,
  ROOM_FULL: 4424,
  RATE_LIMITED: 4429,
});

/** protocol.Role. */
export const Role = Object.freeze({
  PARENT: "parent",
  FACILITATOR: "facilitator",
});

/** protocol.ParticipantState: Where a participant is: at the door, in the waiting room, or in the room. */
export const ParticipantState = Object.freeze({
  LOBBY: "lobby",
  WAITING: "waiting",
  ADMITTED: "admitted",
});

/** protocol.LeaveReason. */
export const LeaveReason = Object.freeze({
  LEFT: "left",
  DISCONNECTED: "disconnected",
  REMOVED: "removed",
  SENT_TO_WAITING: "sent_to_waiting",
});

/** protocol.EndReason. */
export const EndReason = Object.freeze({
  ENDED_BY_FACILITATOR: "ended_by_facilitator",
  FACILITATOR_LOST: "facilitator_lost",
  TIME_UP: "time_up",
  SHUTDOWN: "shutdown",
  CANCELLED: "cancelled",
  RESCHEDULED: "rescheduled",
});

/** The `type` of each message the page may send (protocol.CLIENT_MESSAGE_TYPES). */
export const ClientType = Object.freeze({
  ACCEPT_AGREEMENT: "accept_agreement",
  ADMIT: "admit",
  ADMIT_ALL: "admit_all",
  ANSWER: "answer",
  CAMERA_OFF: "camera_off",
  CAMERA_SELF: "camera_self",
  DENY: "deny",
  END: "end",
  HELLO: "hello",
  ICE_CANDIDATE: "ice_candidate",
  KNOCK: "knock",
  LEAVE: "leave",
  LOCK: "lock",
  LOWER_HAND: "lower_hand",
  MUTE: "mute",
  MUTE_ALL: "mute_all",
  MUTE_SELF: "mute_self",
  RAISE_HAND: "raise_hand",
  REMOVE: "remove",
  SEND_TO_WAITING: "send_to_waiting",
  UNLOCK: "unlock",
  UNMUTE_SELF: "unmute_self",
});

/** The `type` of each message the server sends (protocol.SERVER_MESSAGE_TYPES). */
export const ServerType = Object.freeze({
  ADMITTED: "admitted",
  CAMERA_OFF_BY_FACILITATOR: "camera_off_by_facilitator",
  DENIED: "denied",
  ERROR: "error",
  FACILITATOR_BACK: "facilitator_back",
  FACILITATOR_LOST: "facilitator_lost",
  KNOCK: "knock",
  MUTED_BY_FACILITATOR: "muted_by_facilitator",
  OFFER: "offer",
  PARTICIPANT_JOINED: "participant_joined",
  PARTICIPANT_LEFT: "participant_left",
  PARTICIPANT_UPDATED: "participant_updated",
  REMOVED: "removed",
  ROOM_ENDED: "room_ended",
  ROOM_LOCKED: "room_locked",
  ROOM_UNLOCKED: "room_unlocked",
  SENT_TO_WAITING: "sent_to_waiting",
  TOKEN_REFRESH: "token_refresh",
  WAITING: "waiting",
  WAITING_LIST: "waiting_list",
  WELCOME: "welcome",
});
