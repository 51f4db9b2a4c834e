// The join page's wiring: the link's info, "Ask to join", the room's socket, and each server
// message turned into a state change (state.js) and a render (render.js, host.js) or a media
// action (call.js). Details live in those modules; this one says what happens when.
//
// Flow: GET /j/{token}/info says what state the link is in. From "Ask to join" the page
// exchanges the link for a room token (POST /j/{token}/room-token), opens the WebSocket
// (socket.js), accepts the agreement and knocks; the server decides the rest and the page
// renders what it is told (docs/signaling.md). Names are only ever set as text, never as HTML.

import {
  answerOffer, applySnapshot, closeMedia, dropRemote, fitToRoom, initCall, mediaStats, openMedia,
  reopenDevices, restDevices, setCamera, setMic, stopCall,
} from "./call.js";
import { initHost, renderWaiting } from "./host.js";
import { local } from "./media.js";
import { closedNotice, linkNotice, linkProblem, notice, tooEarly, unreachable } from "./notices.js";
import { initPrejoin, showPrejoin, showPrejoinError, stopMeter, takeName } from "./prejoin.js";
import { ClientType, CloseCode, ErrorCode, ParticipantState, Role, ServerType } from "./protocol.js";
import {
  dropTile, enterRoomView, enterWaitingView, renderControls, renderReconnecting, renderRoom,
  renderRoomState, renderTile, renderWaitingView,
} from "./render.js";
import { RoomSocket } from "./socket.js";
import { chime, resumeAudio, suspendAudio } from "./sound.js";
import * as change from "./state.js";
import { state, token } from "./state.js";
import { announce, el } from "./view.js";

let socket = null; // the room's RoomSocket, from "Ask to join"

// ------------------------------------------------------------------ start

async function main() {
  let response;
  try {
    response = await fetch(`/j/${encodeURIComponent(token)}/info`, { cache: "no-store" });
  } catch {
    return unreachable();
  }
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    return linkProblem(response.status, body.error);
  }
  change.loaded(await response.json());
  document.title = state.info.discreet ? "Video call" : state.info.title;
  const saved = change.savedChoices();
  switch (state.info.status) {
    case "open":
      return saved ? resume(saved) : prejoin();
    case "too_early":
      return tooEarly(main);
    default:
      return linkNotice(state.info.status);
  }
}

function prejoin() {
  socket = null;
  return showPrejoin();
}

// ------------------------------------------------------------------ joining

async function ask() {
  if (socket && !socket.ended) return; // a double tap
  const name = takeName();
  if (name === null) return;
  change.named(name);
  change.asked();
  resumeAudio(); // inside the click, so sound may play; no need to wait for it
  stopMeter();
  if (state.info.role !== Role.FACILITATOR) setTimeout(suspendAudio, 500); // only the chime needs it
  if (!local.audioTrack) change.micLost(); // no microphone: others see us muted
  change.saveChoices();
  connect();
}

/** After a reload: go straight back in, with the choices made before. */
async function resume(saved) {
  change.restored(saved);
  change.asked();
  notice("Rejoining…", "Taking you back to the drop-in.");
  await reopenDevices(saved.camOn);
  connect();
}

async function exchange() {
  let response;
  try {
    response = await fetch(`/j/${encodeURIComponent(token)}/room-token`, { method: "POST", cache: "no-store" });
  } catch {
    throw { final: false };
  }
  if (response.ok) return response.json();
  const body = await response.json().catch(() => ({}));
  throw { final: response.status !== 429 && response.status < 500, status: response.status, code: body.error };
}

function connect() {
  change.connecting();
  socket = new RoomSocket({
    exchange,
    displayName: () => state.name,
    onMessage,
    onState: (connection) => renderReconnecting(connection === "reconnecting"),
    onEnd,
  });
  socket.start().catch((err) => onEnd(CloseCode.INVALID_TOKEN, err));
}

function send(msg) {
  if (socket) socket.send(msg);
}

// ------------------------------------------------------------------ messages

/** What the page does on each server message. */
const HANDLERS = {
  [ServerType.WELCOME]: welcome,
  [ServerType.WAITING]: (msg) => showWaiting(msg.position),
  [ServerType.ADMITTED]: (msg) => enterRoom(msg.room),
  [ServerType.OFFER]: (msg) => {
    change.mark("offer");
    return answerOffer(msg);
  },
  [ServerType.KNOCK]: (msg) => {
    change.waitingChanged(msg.waiting);
    renderWaiting();
    chime();
    announce(`${msg.display_name} is waiting to join.`);
  },
  [ServerType.WAITING_LIST]: (msg) => {
    change.waitingChanged(msg.waiting);
    renderWaiting();
  },
  [ServerType.PARTICIPANT_JOINED]: (msg) => {
    change.participantJoined(msg.participant);
    participantShown(msg.participant);
    announce(`${msg.participant.display_name} joined.`);
  },
  [ServerType.PARTICIPANT_LEFT]: (msg) => {
    const p = change.participantLeft(msg.participant_id);
    dropTile(msg.participant_id);
    dropRemote(msg.participant_id);
    roomChanged();
    if (p) announce(`${p.display_name} left.`);
  },
  [ServerType.PARTICIPANT_UPDATED]: (msg) => {
    const p = msg.participant;
    const before = change.participantUpdated(p);
    participantShown(p);
    if (p.participant_id === state.me) {
      renderControls();
    } else if (before && p.hand_raised && !before.hand_raised) {
      announce(`${p.display_name} raised a hand.`);
    } else if (before && before.connected && !p.connected) {
      announce(`${p.display_name} is reconnecting.`);
    }
  },
  [ServerType.MUTED_BY_FACILITATOR]: () => {
    setMic(false, false);
    announce("The facilitator muted your microphone. You can unmute it when you want to speak.", true);
  },
  [ServerType.CAMERA_OFF_BY_FACILITATOR]: () => {
    setCamera(false, false);
    announce("The facilitator turned your camera off.", true);
  },
  [ServerType.SENT_TO_WAITING]: (msg) => {
    closeMedia();
    showWaiting(msg.position);
    announce("The facilitator moved you to the waiting room.", true);
  },
  [ServerType.ROOM_LOCKED]: () => {
    change.lockChanged(true);
    roomChanged();
  },
  [ServerType.ROOM_UNLOCKED]: () => {
    change.lockChanged(false);
    roomChanged();
  },
  [ServerType.FACILITATOR_LOST]: (msg) => {
    change.pausedChanged(true);
    roomChanged(msg.seconds_left);
    announce("The facilitator's connection dropped. The call is paused until they are back.", true);
  },
  [ServerType.FACILITATOR_BACK]: () => {
    change.pausedChanged(false);
    roomChanged();
    announce("The facilitator is back.");
  },
  // The server said this is the end: act on the message itself, so a close frame lost on
  // the way cannot turn it into a reconnect.
  [ServerType.ROOM_ENDED]: (msg) => {
    change.roomEnded(msg.reason);
    return socket && socket.finishWith(CloseCode.ROOM_ENDED);
  },
  [ServerType.DENIED]: () => socket && socket.finishWith(CloseCode.DENIED),
  [ServerType.REMOVED]: () => socket && socket.finishWith(CloseCode.REMOVED),
  [ServerType.ERROR]: (msg) => {
    if (msg.in_reply_to === ClientType.HELLO && msg.code === ErrorCode.INVALID_VALUE && state.view === "prejoin") {
      // The server would not take the name: say so here, and let them fix it.
      socket.finishWith(null);
      showPrejoinError("Your name contains a character we cannot show. Please type it with letters only.");
    }
  },
};

function onMessage(msg) {
  const handler = Object.prototype.hasOwnProperty.call(HANDLERS, msg.type) ? HANDLERS[msg.type] : null;
  if (handler) handler(msg);
}

function welcome(msg) {
  change.mark("welcome");
  change.welcomed(msg);
  applySnapshot(msg.room);
  if (msg.state === ParticipantState.LOBBY) {
    for (const first of change.knock()) send(first);
  } else if (msg.state === ParticipantState.ADMITTED) {
    enterRoom(msg.room);
  }
}

function showWaiting(position) {
  restDevices();
  change.placedInLine(position);
  if (state.view !== "waiting") {
    change.viewShown("waiting");
    enterWaitingView();
  }
  renderWaitingView();
}

function enterRoom(room) {
  applySnapshot(room);
  change.mark("admitted");
  openMedia();
  if (state.view !== "room") {
    change.viewShown("room");
    enterRoomView();
  }
  renderRoom();
  fitToRoom();
}

/** A participant joined or changed: their tile (in the call) and the room's count. */
function participantShown(p) {
  if (state.view === "room") renderTile(p);
  roomChanged();
}

/** The room's size, lock or pause changed: show it, and fit what we send to the size. */
function roomChanged(secondsLeft) {
  renderRoomState(secondsLeft);
  fitToRoom();
}

// ------------------------------------------------------------------ the end

function onEnd(code, err) {
  if (code === null) return; // the page took over (a refused name)
  change.viewShown("ended");
  stopCall();
  stopMeter();
  renderReconnecting(false);
  if (code !== CloseCode.REPLACED) change.forgetChoices();
  if (!closedNotice(code, err)) main(); // the info endpoint says what is true now
}

/** Leave for good: on the socket, and by the link too (keepalive: sent even if the tab
 * closes next). While reconnecting, or on a socket that looks open but is not, the link is
 * the only way; without it the others would see us "reconnecting" for the grace window.
 * Saying it twice is harmless. */
function leave() {
  if (socket) {
    socket.leave();
    fetch(`/j/${encodeURIComponent(token)}/leave`, { method: "POST", keepalive: true, cache: "no-store" })
      .catch(() => { /* offline: the grace window lets us go */ });
  }
  onEnd(CloseCode.NORMAL, null);
}

// ------------------------------------------------------------------ wiring

initPrejoin(ask);
initCall(send);
initHost(send);
el("ctl-leave").addEventListener("click", leave);
el("waiting-leave").addEventListener("click", leave);

// For tests and support: what this page receives, and how long joining took.
window.__dropin = {
  stats: mediaStats,
  state: () => ({
    view: state.view,
    me: state.me,
    role: state.role,
    participants: [...state.participants.values()],
    waiting: state.waiting,
    paused: state.paused,
    locked: state.locked,
    // Whether this page holds a live camera track (its light on).
    cameraLive: !!(local.videoTrack && local.videoTrack.readyState === "live"),
    micLive: !!(local.audioTrack && local.audioTrack.readyState === "live"),
  }),
  timings: state.timings,
};

main();
