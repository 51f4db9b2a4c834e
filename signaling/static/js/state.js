// The page's state: one object, changed only by the functions below, as signaling/room.py
// changes a room. Other modules read `state` (writing a field elsewhere throws) and render
// from it (render.js). A change that owes the server a message or the devices an action
// returns it as an effect, for the caller to carry out, rather than doing any I/O here.

import { ClientType, Role } from "./protocol.js";

/** The join token, from the page's path (/j/{token}). */
export const token = decodeURIComponent(location.pathname.split("/")[2] || "");

const S = {
  info: null, // GET /j/{token}/info
  me: null, // our participant id
  role: null,
  iceServers: [],
  name: "",
  participants: new Map(), // pid -> participant info from the server
  waiting: [], // facilitators only: who waits, in order
  position: null, // our place in the waiting room's line (1 = next)
  locked: false,
  paused: false,
  listenOnly: false, // nothing of ours is captured or sent
  audioOnly: false,
  micOn: true,
  camOn: false,
  failed: null, // the device whose permission problem is shown: "microphone" or "camera"
  remote: new Map(), // pid -> {audio, video} tracks
  view: "loading", // loading, notice, prejoin, waiting, room, ended
  endReason: null, // the last room_ended's reason, for the close that follows
  // Milliseconds after "Ask to join" (performance.now()), for diagnostics and the benchmark.
  timings: { ask: null, welcome: null, admitted: null, offer: null, connected: null, firstFrame: null },
};

/** The page's state, read-only outside this module. */
export const state = new Proxy(S, {
  set(_target, key) {
    throw new TypeError(`state.${String(key)} changes only through state.js`);
  },
  deleteProperty(_target, key) {
    throw new TypeError(`state.${String(key)} changes only through state.js`);
  },
});

export const isFacilitator = () => S.role === Role.FACILITATOR;
export const myself = () => S.participants.get(S.me);

// ------------------------------------------------------------------ the link and the view

export function loaded(info) {
  S.info = info;
}

export function viewShown(view) {
  S.view = view;
}

export function failed(what) {
  S.failed = what;
}

// ------------------------------------------------------------------ choices before joining

export function named(name) {
  S.name = name;
}

export function micChosen(on) {
  S.micOn = on;
}

export function cameraChosen(on) {
  S.camOn = on;
}

export function audioOnlyChosen(on) {
  S.audioOnly = on;
}

/** Listening only (or not): nothing of ours is captured or sent, shown to others muted. */
export function listenOnlyChosen(on) {
  S.listenOnly = on;
  if (on) S.micOn = false;
}

/** No microphone (it failed or went away): listen only, keeping the mute choice. */
export function micLost() {
  S.listenOnly = true;
}

/** After a reload: the choices this tab made before. */
export function restored(saved) {
  S.name = saved.name || S.info.display_name;
  S.micOn = saved.micOn !== false;
  S.audioOnly = !!saved.audioOnly;
  S.listenOnly = !!saved.listenOnly;
}

// ------------------------------------------------------------------ this tab's memory

const storageKey = () => `dropin:${S.info ? S.info.session_id : token.slice(0, 16)}`;

/** What a reload needs to go straight back in (the name and the device choices only). */
export function saveChoices() {
  if (S.info && S.name) {
    sessionStorage.setItem(storageKey(), JSON.stringify({ name: S.name, camOn: S.camOn, micOn: S.micOn, audioOnly: S.audioOnly, listenOnly: S.listenOnly }));
  }
}

export function savedChoices() {
  const stored = sessionStorage.getItem(storageKey());
  return stored ? JSON.parse(stored) : null;
}

export function forgetChoices() {
  sessionStorage.removeItem(storageKey());
}

// ------------------------------------------------------------------ timings

export function asked() {
  S.timings.ask = performance.now();
}

/** The first time ``what`` happened after "Ask to join". */
export function mark(what) {
  if (S.timings.ask !== null && S.timings[what] === null) S.timings[what] = performance.now() - S.timings.ask;
}

// ------------------------------------------------------------------ the room, as the server says

export function connecting() {
  S.endReason = null; // a new connection: an earlier room's end says nothing about this one
}

export function welcomed(msg) {
  S.me = msg.participant_id;
  S.role = msg.role;
  S.iceServers = msg.ice_servers;
}

/**
 * The room as the server sees it (welcome, admitted). Our own microphone and camera:
 * whichever side says "off" wins. A mute made while the connection was down is kept (and
 * told to the server); a mute by the facilitator is kept. Returns the effects, in order:
 * ``{send: message}``, ``{micEnabled: boolean}``, ``{stopCamera: true}``.
 */
export function roomSnapshot(room) {
  S.locked = room.locked;
  S.paused = room.paused;
  S.participants = new Map(room.participants.map((p) => [p.participant_id, p]));
  S.waiting = room.waiting;
  const mine = S.participants.get(S.me);
  if (!mine) return [];
  const effects = [];
  if (mine.audio_muted) S.micOn = false;
  else if (!S.micOn || S.listenOnly) effects.push({ send: { type: ClientType.MUTE_SELF } });
  effects.push({ micEnabled: S.micOn && !S.listenOnly });
  if (!mine.camera_on && S.camOn) {
    effects.push({ stopCamera: true });
    S.camOn = false;
  } else if (mine.camera_on && !S.camOn) {
    effects.push({ send: { type: ClientType.CAMERA_SELF, on: false } });
  }
  return effects;
}

/** The first messages of a participant at the door: the agreement, then the knock. */
export function knock() {
  return [
    { type: ClientType.ACCEPT_AGREEMENT },
    {
      type: ClientType.KNOCK,
      audio_muted: !S.micOn || S.listenOnly, // no microphone at all is listenOnly (ask)
      // The choice, not the device: the camera rests while waiting (a re-knock after a long
      // drop comes from the waiting room) and starts again on admission.
      camera_on: S.camOn && !S.audioOnly && !S.listenOnly,
    },
  ];
}

export function placedInLine(position) {
  S.position = position;
}

export function waitingChanged(waiting) {
  S.waiting = waiting;
}

export function participantJoined(p) {
  S.participants.set(p.participant_id, p);
}

/** Returns the participant as they were before. Our own mute follows the server. */
export function participantUpdated(p) {
  const before = S.participants.get(p.participant_id);
  S.participants.set(p.participant_id, p);
  if (p.participant_id === S.me) S.micOn = !p.audio_muted;
  return before;
}

/** Returns the participant who left, if they were known. */
export function participantLeft(pid) {
  const p = S.participants.get(pid);
  S.participants.delete(pid);
  return p;
}

export function lockChanged(locked) {
  S.locked = locked;
}

export function pausedChanged(paused) {
  S.paused = paused;
}

export function roomEnded(reason) {
  S.endReason = reason;
}

/** A remote participant's audio or video track (null: none). False when nothing changed. */
export function remoteTrack(pid, kind, track) {
  const entry = S.remote.get(pid) || {};
  if (entry[kind] === track) return false;
  entry[kind] = track;
  S.remote.set(pid, entry);
  return true;
}
