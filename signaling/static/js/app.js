// The join page: before joining, the waiting room, the call, and the facilitator's controls.
//
// Flow: GET /j/{token}/info says what state the link is in. From "Ask to join" the page
// exchanges the link for a room token (POST /j/{token}/room-token), opens the WebSocket
// (socket.js), accepts the agreement and knocks; the server decides the rest and the page
// renders what it is told (docs/signaling.md). Names are only ever set as text, never as HTML.

import { LocalMedia, RoomMedia } from "./media.js";
import { RoomSocket } from "./socket.js";
import { LevelWatcher, chime, resumeAudio, suspendAudio } from "./sound.js";
import { ICONS, announce, el, initials, make, show } from "./view.js";

const token = decodeURIComponent(location.pathname.split("/")[2] || "");
const local = new LocalMedia();

const S = {
  info: null,
  socket: null,
  media: null,
  me: null,
  role: null,
  name: "",
  participants: new Map(), // pid -> participant info from the server
  waiting: [],
  locked: false,
  paused: false,
  listenOnly: false,
  audioOnly: false,
  micOn: true,
  camOn: false,
  micStarting: false, // restartMic in flight
  tiles: new Map(), // pid -> tile elements
  remote: new Map(), // pid -> {audio, video} tracks
  audioEls: new Map(), // pid -> <audio>
  view: "loading",
  endReason: null,
  // Milliseconds after "Ask to join" (performance.now()), for diagnostics and the benchmark.
  timings: { ask: null, welcome: null, admitted: null, offer: null, connected: null, firstFrame: null },
};

// The microphone meter before joining (WebAudio). In the call, speaking rings come from the
// peer connection's own audio levels instead: no audio graph per participant to run.
const levels = new LevelWatcher(onLevels);
let speakingTimer = null;
const storageKey = () => `dropin:${S.info ? S.info.session_id : token.slice(0, 16)}`;

// ------------------------------------------------------------------ start

async function main() {
  let response;
  try {
    response = await fetch(`/j/${encodeURIComponent(token)}/info`, { cache: "no-store" });
  } catch {
    return notice("We could not reach the drop-in", "Check your internet connection, then try again.", [reloadButton("Try again")]);
  }
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    return linkProblem(response.status, body.error);
  }
  S.info = await response.json();
  document.title = S.info.discreet ? "Video call" : S.info.title;
  const stored = sessionStorage.getItem(storageKey());
  switch (S.info.status) {
    case "open":
      return stored ? resume(JSON.parse(stored)) : prejoin();
    case "too_early":
      return tooEarly();
    case "ended":
      return ended("This drop-in has ended");
    case "cancelled":
      return ended("This drop-in was cancelled", "The organizer cancelled it. Nothing else changes for you.");
    case "removed":
      return notice("You cannot join this drop-in",
        "A facilitator asked you to leave this drop-in. If you think this was a mistake, please contact the organizer of your group.",
        [linkButton("My drop-ins", S.info.page_url)]);
    default:
      return notice("You do not have a place in this drop-in",
        "Your booking may have been cancelled. You can book another drop-in from your page.",
        [linkButton("My drop-ins", S.info.page_url)]);
  }
}

function linkProblem(status, code) {
  if (status === 410 || code === "link_expired") {
    return notice("This link has expired", "Links stop working a while after their drop-in. Your newest invitation has a fresh one, or ask the organizer of your group.");
  }
  return notice("This link does not work", "Please check that you copied the whole link from your invitation, or ask the organizer of your group for a new one.");
}

// ------------------------------------------------------------------ notices

function notice(title, text, actions = [], extra = {}) {
  el("notice-title").textContent = title;
  el("notice-text").textContent = text;
  const next = S.info && S.info.next_session;
  el("notice-next").hidden = !(extra.next && next);
  if (extra.next && next) {
    el("notice-next-title").textContent = next.title;
    el("notice-next-when").textContent = `${next.when} (${S.info.timezone})`;
  }
  el("notice-countdown").hidden = !extra.countdown;
  el("notice-actions").replaceChildren(...actions);
  document.body.classList.remove("in-room");
  S.view = "notice";
  show("notice-view", "notice-title");
}

function reloadButton(label) {
  return make("button", { type: "button", class: "primary", text: label, onclick: () => location.reload() });
}

function linkButton(label, href, primary = false) {
  return make("a", { class: primary ? "button primary" : "button", href, text: label });
}

function ended(title, text = "Thank you for coming.") {
  const actions = [];
  if (S.info && S.info.next_session) {
    actions.push(linkButton("Add the drop-ins to my calendar", S.info.feed_url.replace(/^https?:/, "webcal:"), true));
  }
  if (S.info) actions.push(linkButton("My drop-ins", S.info.page_url));
  notice(title, text, actions, { next: true });
}

function tooEarly() {
  const opens = new Date(S.info.opens_at);
  const at = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", timeZone: S.info.timezone }).format(opens);
  notice("It is a little early",
    `${S.info.title}: ${S.info.when}. The room opens 15 minutes before the start, at ${at} (${S.info.timezone}). This page will open it by itself.`,
    [], { countdown: true });
  const started = performance.now();
  const total = S.info.seconds_until_open;
  const counter = el("notice-countdown");
  const tick = () => {
    const left = Math.max(0, Math.ceil(total - (performance.now() - started) / 1000));
    const h = Math.floor(left / 3600);
    const m = Math.floor((left % 3600) / 60);
    const s = left % 60;
    counter.textContent = h > 0 ? `Opens in ${h} h ${m} min` : `Opens in ${m}:${String(s).padStart(2, "0")}`;
    if (left <= 0) {
      clearInterval(timer);
      main();
    }
  };
  const timer = setInterval(tick, 1000);
  tick();
}

// ------------------------------------------------------------------ before joining

let prejoinWired = false;

async function prejoin() {
  S.view = "prejoin";
  S.socket = null;
  el("prejoin-title").textContent = S.info.discreet ? "Your drop-in" : S.info.title;
  el("prejoin-when").textContent = `${S.info.when} (${S.info.timezone})`;
  el("name-input").value = S.name || S.info.display_name;
  el("preview-avatar").textContent = initials(el("name-input").value);
  el("prejoin-error").hidden = true;
  if (!local.videoTrack) stopPreviewCamera(); // the camera is off unless it is really on
  show("prejoin-view", "prejoin-title");
  if (!prejoinWired) wirePrejoin();
  prejoinWired = true;
  updateAsk();
  if (!S.listenOnly) await startPreviewMic();
}

/** The pre-join controls' listeners, added once however often the view is shown. */
function wirePrejoin() {
  // Browsers start audio suspended until the person interacts: the meter needs it running.
  const wake = () => { if (S.view === "prejoin") resumeAudio(); };
  document.addEventListener("pointerdown", wake);
  document.addEventListener("keydown", wake);
  el("agree").addEventListener("change", updateAsk);
  el("name-input").addEventListener("input", () => {
    el("preview-avatar").textContent = initials(el("name-input").value);
    el("prejoin-error").hidden = true;
    updateAsk();
  });
  el("prejoin-camera").addEventListener("click", togglePreviewCamera);
  el("prejoin-mic").addEventListener("click", togglePreviewMic);
  el("audio-only").addEventListener("change", () => {
    S.audioOnly = el("audio-only").checked;
    if (S.audioOnly) stopPreviewCamera();
    el("prejoin-camera").disabled = S.audioOnly || S.listenOnly;
  });
  el("mic-select").addEventListener("change", async () => {
    try { levels.watch("me", await local.startMic(el("mic-select").value)); } catch (err) { permissionProblem(err, "microphone"); }
  });
  el("cam-select").addEventListener("change", async () => {
    if (S.camOn) await startPreviewCamera(el("cam-select").value);
  });
  el("permission-retry").addEventListener("click", () => {
    if (S.failed === "camera") startPreviewCamera(el("cam-select").value);
    else startPreviewMic();
  });
  el("permission-listen").addEventListener("click", () => {
    // Listening only: nothing of ours is captured or sent, the camera light goes off.
    S.listenOnly = true;
    S.micOn = false;
    stopPreviewCamera();
    local.stopMic();
    levels.unwatch("me");
    el("permission-problem").hidden = true;
    el("meter-label").textContent = "Listening only";
    el("prejoin-mic").disabled = true;
    el("prejoin-camera").disabled = true;
    announce("You will join to listen only.");
    updateAsk();
  });
  el("permission-audio-only").addEventListener("click", () => {
    el("audio-only").checked = true;
    S.audioOnly = true;
    stopPreviewCamera();
    el("prejoin-camera").disabled = true;
    el("permission-problem").hidden = true;
  });
  el("prejoin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    ask();
  });
}

function updateAsk() {
  el("ask").disabled = !(el("agree").checked && el("name-input").value.trim());
}

async function startPreviewMic() {
  try {
    const track = await local.startMic(el("mic-select").value);
    S.listenOnly = false;
    el("permission-problem").hidden = true;
    el("meter-label").textContent = "Microphone";
    el("prejoin-mic").disabled = false;
    levels.watch("me", track);
    await fillDevices();
  } catch (err) {
    S.failed = "microphone";
    permissionProblem(err, "microphone");
  }
}

async function fillDevices() {
  const { mics, cams } = await local.devices();
  const fill = (select, devices, current, fallback) => {
    select.replaceChildren(...devices.map((d, i) =>
      make("option", { value: d.deviceId, text: d.label || `${fallback} ${i + 1}`, selected: d.deviceId === current })));
  };
  fill(el("mic-select"), mics, local.micId, "Microphone");
  fill(el("cam-select"), cams, local.camId, "Camera");
}

function togglePreviewMic() {
  S.micOn = !S.micOn;
  if (local.audioTrack) local.audioTrack.enabled = S.micOn;
  el("prejoin-mic").textContent = S.micOn ? "Mute microphone" : "Unmute microphone";
  el("prejoin-mic").setAttribute("data-on", String(S.micOn));
}

async function togglePreviewCamera() {
  if (S.camOn) stopPreviewCamera();
  else await startPreviewCamera(el("cam-select").value);
}

async function startPreviewCamera(deviceId) {
  try {
    const track = await local.startCamera(deviceId);
    if (S.view !== "prejoin" || S.audioOnly || S.listenOnly) { local.stopCamera(); return; }
    S.camOn = true;
    el("permission-problem").hidden = true;
    el("preview-video").srcObject = new MediaStream([track]);
    el("preview-video").hidden = false;
    el("preview-avatar").hidden = true;
    el("preview-state").textContent = "Your camera is on";
    el("prejoin-camera").textContent = "Turn camera off";
    el("prejoin-camera").setAttribute("data-on", "true");
    await fillDevices();
  } catch (err) {
    S.failed = "camera";
    permissionProblem(err, "camera");
  }
}

function stopPreviewCamera() {
  local.stopCamera();
  S.camOn = false;
  el("preview-video").srcObject = null;
  el("preview-video").hidden = true;
  el("preview-avatar").hidden = false;
  el("preview-state").textContent = "Your camera is off";
  el("prejoin-camera").textContent = "Turn camera on";
  el("prejoin-camera").setAttribute("data-on", "false");
}

function permissionProblem(err, what) {
  const name = err && err.name;
  const help = [];
  let text;
  if (name === "NotAllowedError" || name === "SecurityError") {
    text = `Your browser is not letting this page use your ${what}.`;
    help.push(`Tap the camera or lock symbol next to the web address, choose "Allow" for the ${what}, then tap "Try again".`);
    help.push(`On an iPhone or iPad: Settings, then Safari, then ${what === "camera" ? "Camera" : "Microphone"}: choose "Allow".`);
  } else if (name === "NotFoundError" || name === "OverconstrainedError") {
    text = `We could not find a ${what} on this device.`;
    help.push("Check it is plugged in, or choose another one below.");
  } else if (name === "NotReadableError") {
    text = `Another app seems to be using your ${what}.`;
    help.push("Close the other app (another video call, for example), then tap \"Try again\".");
  } else {
    text = `Your ${what} did not start.`;
  }
  el("permission-text").textContent = text;
  el("permission-help").replaceChildren(...help.map((h) => make("li", { text: h })));
  el("permission-audio-only").hidden = what !== "camera";
  if (what === "microphone") el("prejoin-mic").disabled = true;
  el("permission-problem").hidden = false;
  announce(text);
}

// ------------------------------------------------------------------ joining

/** What the server will refuse in a name (protocol.normalize_display_name), said kindly. */
function nameProblem(name) {
  if (!name) return "Please type the name others will see.";
  if (Array.from(name.normalize("NFC")).length > 40) return "Please use at most 40 characters.";
  // Control, format (other than the joiners emoji need), private-use and separator characters.
  if (/[\p{Cc}\p{Co}\p{Cs}\p{Zl}\p{Zp}]/u.test(name) || /[\p{Cf}]/u.test(name.replace(/[\u200c\u200d]/g, ""))) {
    return "Your name contains a character we cannot show. Please type it with letters only.";
  }
  return null;
}

function showPrejoinError(text) {
  el("prejoin-error").textContent = text;
  el("prejoin-error").hidden = false;
  updateAsk();
}

function saveChoices() {
  if (S.info && S.name) {
    sessionStorage.setItem(storageKey(), JSON.stringify({ name: S.name, camOn: S.camOn, micOn: S.micOn, audioOnly: S.audioOnly, listenOnly: S.listenOnly }));
  }
}

async function ask() {
  if (S.socket && !S.socket.ended) return; // a double tap
  const name = el("name-input").value.trim();
  const problem = nameProblem(name);
  if (problem) return showPrejoinError(problem);
  el("prejoin-error").hidden = true;
  S.name = name;
  S.timings.ask = performance.now();
  el("ask").disabled = true;
  resumeAudio(); // inside the click, so sound may play; no need to wait for it
  levels.stop();
  if (S.info.role !== "facilitator") setTimeout(suspendAudio, 500); // only the chime needs it
  if (!local.audioTrack) S.listenOnly = true; // no microphone: others see us muted
  saveChoices();
  connect();
}

/** After a reload: go straight back in, with the choices made before. */
async function resume(saved) {
  S.name = saved.name || S.info.display_name;
  S.micOn = saved.micOn !== false;
  S.audioOnly = !!saved.audioOnly;
  S.listenOnly = !!saved.listenOnly;
  S.timings.ask = performance.now();
  notice("Rejoining…", "Taking you back to the drop-in.");
  if (!S.listenOnly) {
    try {
      await local.startMic();
      local.audioTrack.enabled = S.micOn;
    } catch {
      S.listenOnly = true;
    }
  }
  if (saved.camOn && !S.audioOnly && !S.listenOnly) {
    try {
      await local.startCamera();
      S.camOn = true;
    } catch { S.camOn = false; }
  }
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
  S.endReason = null; // a new connection: an earlier room's end says nothing about this one
  S.socket = new RoomSocket({
    exchange,
    displayName: () => S.name,
    onMessage,
    onState: (state) => { el("reconnecting").hidden = state !== "reconnecting"; },
    onEnd,
  });
  S.socket.start().catch((err) => onEnd(4401, err));
}

function send(msg) {
  if (S.socket) S.socket.send(msg);
}

// ------------------------------------------------------------------ messages

function onMessage(msg) {
  switch (msg.type) {
    case "welcome": return welcome(msg);
    case "waiting": return showWaiting(msg.position);
    case "admitted": return enterRoom(msg.room);
    case "offer":
      mark("offer");
      return S.media && S.media.offer(msg);
    case "knock":
      S.waiting = msg.waiting;
      renderWaiting();
      chime();
      announce(`${msg.display_name} is waiting to join.`);
      return;
    case "waiting_list":
      S.waiting = msg.waiting;
      return renderWaiting();
    case "participant_joined":
      upsert(msg.participant);
      announce(`${msg.participant.display_name} joined.`);
      return;
    case "participant_left": {
      const p = S.participants.get(msg.participant_id);
      removeParticipant(msg.participant_id);
      if (p) announce(`${p.display_name} left.`);
      return;
    }
    case "participant_updated": return updated(msg.participant);
    case "muted_by_facilitator":
      setMic(false, false);
      announce("The facilitator muted your microphone. You can unmute it when you want to speak.", true);
      return;
    case "camera_off_by_facilitator":
      setCamera(false, false);
      announce("The facilitator turned your camera off.", true);
      return;
    case "sent_to_waiting":
      leaveMedia();
      showWaiting(msg.position);
      announce("The facilitator moved you to the waiting room.", true);
      return;
    case "room_locked":
    case "room_unlocked":
      S.locked = msg.type === "room_locked";
      return renderRoomState();
    case "facilitator_lost":
      S.paused = true;
      renderRoomState(msg.seconds_left);
      announce("The facilitator's connection dropped. The call is paused until they are back.", true);
      return;
    case "facilitator_back":
      S.paused = false;
      renderRoomState();
      announce("The facilitator is back.");
      return;
    case "room_ended":
      S.endReason = msg.reason;
      return S.socket && S.socket.finishWith(4410);
    case "denied":
      return S.socket && S.socket.finishWith(4406);
    case "removed":
      return S.socket && S.socket.finishWith(4403);
    case "error":
      if (msg.in_reply_to === "hello" && msg.code === "invalid_value" && S.view === "prejoin") {
        // The server would not take the name: say so here, and let them fix it.
        S.socket.finishWith(null);
        return showPrejoinError("Your name contains a character we cannot show. Please type it with letters only.");
      }
      return;
    default:
      return;
  }
}

function mark(what) {
  if (S.timings.ask !== null && S.timings[what] === null) S.timings[what] = performance.now() - S.timings.ask;
}

function welcome(msg) {
  mark("welcome");
  S.me = msg.participant_id;
  S.role = msg.role;
  S.iceServers = msg.ice_servers;
  applySnapshot(msg.room);
  if (msg.state === "lobby") {
    send({ type: "accept_agreement" });
    send({
      type: "knock",
      audio_muted: !S.micOn || S.listenOnly, // no microphone at all is listenOnly (ask)
      // The choice, not the device: the camera rests while waiting (a re-knock after a long
      // drop comes from the waiting room) and starts again on admission.
      camera_on: S.camOn && !S.audioOnly && !S.listenOnly,
    });
  } else if (msg.state === "admitted") {
    enterRoom(msg.room);
  }
}

function applySnapshot(room) {
  S.locked = room.locked;
  S.paused = room.paused;
  S.participants = new Map(room.participants.map((p) => [p.participant_id, p]));
  S.waiting = room.waiting;
  const mine = S.participants.get(S.me);
  if (!mine) return;
  // Our own microphone and camera: whichever side says "off" wins. A mute made while the
  // connection was down is kept (and told to the server); a mute by the facilitator is kept.
  if (mine.audio_muted) S.micOn = false;
  else if (!S.micOn || S.listenOnly) send({ type: "mute_self" });
  if (local.audioTrack) local.audioTrack.enabled = S.micOn && !S.listenOnly;
  if (!mine.camera_on && S.camOn) {
    local.stopCamera();
    S.camOn = false;
  } else if (mine.camera_on && !S.camOn) {
    send({ type: "camera_self", on: false });
  }
  saveChoices();
}

function showWaiting(position) {
  // Nothing is sent from the waiting room: the camera and microphone rest (the browser's
  // indicators off) until admitted. S.camOn and S.micOn keep the person's choices;
  // enterRoom starts both again.
  local.stopCamera();
  local.stopMic();
  if (S.view !== "waiting") {
    S.view = "waiting";
    document.body.classList.remove("in-room");
    show("waiting-view", "waiting-title");
  }
  el("waiting-position").textContent = position === 1 ? "You are next in line." : `You are number ${position} in line.`;
  el("waiting-paused").hidden = !S.paused;
}

// ------------------------------------------------------------------ the room

function enterRoom(room) {
  applySnapshot(room);
  mark("admitted");
  if (!S.media) {
    S.media = new RoomMedia({
      local,
      iceServers: S.iceServers || [],
      send,
      onRemote,
      onState: (state) => { if (state === "connected") mark("connected"); },
    });
  }
  if (!S.listenOnly && !local.audioTrack) restartMic();
  if (S.camOn && !local.videoTrack) restartCamera();
  if (speakingTimer === null) speakingTimer = setInterval(showSpeaking, 400);
  if (S.view !== "room") {
    S.view = "room";
    document.body.classList.add("in-room");
    el("room-title").textContent = S.info.discreet ? "Drop-in" : S.info.title;
    show("room-view", "room-title");
    announce("You are in the call.");
  }
  for (const pid of [...S.tiles.keys()]) if (!S.participants.has(pid)) dropTile(pid);
  for (const p of S.participants.values()) renderTile(p);
  el("host-panel").hidden = S.role !== "facilitator";
  document.querySelector(".room-body").classList.toggle("with-panel", S.role === "facilitator");
  renderWaiting();
  renderRoomState();
  renderControls();
}

function upsert(p) {
  S.participants.set(p.participant_id, p);
  if (S.view === "room") renderTile(p);
  renderRoomState();
}

function updated(p) {
  const before = S.participants.get(p.participant_id);
  upsert(p);
  if (p.participant_id === S.me) {
    S.micOn = !p.audio_muted;
    renderControls();
  } else if (before && p.hand_raised && !before.hand_raised) {
    announce(`${p.display_name} raised a hand.`);
  } else if (before && before.connected && !p.connected) {
    announce(`${p.display_name} is reconnecting.`);
  }
}

function removeParticipant(pid) {
  S.participants.delete(pid);
  dropTile(pid);
  onRemote(pid, "audio", null);
  onRemote(pid, "video", null);
  renderRoomState();
}

function renderRoomState(secondsLeft) {
  const n = S.participants.size;
  el("room-count").textContent = n === 1 ? "Only you so far" : `${n} in the call`;
  el("room-locked").hidden = !S.locked;
  el("lock").textContent = S.locked ? "Unlock the room" : "Lock the room";
  el("lock").setAttribute("data-on", String(S.locked));
  const banner = el("room-banner");
  if (S.paused) {
    const minutes = secondsLeft ? Math.max(1, Math.round(secondsLeft / 60)) : null;
    banner.textContent = S.role === "facilitator"
      ? "No facilitator is connected: the call is paused for the parents."
      : `The facilitator's connection dropped. The call is paused until they are back${minutes ? ` (it will wait up to ${minutes} min)` : ""}.`;
    banner.hidden = false;
  } else {
    banner.hidden = true;
  }
  el("waiting-paused").hidden = !S.paused;
  if (S.media) S.media.setRoomSize(n);
}

function renderControls() {
  const mic = el("ctl-mic");
  mic.disabled = S.listenOnly;
  mic.setAttribute("data-on", String(!S.micOn));
  mic.querySelector(".label").textContent = S.listenOnly ? "No mic" : S.micOn ? "Mute" : "Unmute";
  mic.querySelector(".icon").innerHTML = S.micOn && !S.listenOnly ? ICONS.mic : ICONS.micOff;
  const cam = el("ctl-camera");
  cam.disabled = S.audioOnly || S.listenOnly;
  cam.setAttribute("data-on", String(S.camOn));
  cam.querySelector(".label").textContent = S.camOn ? "Camera off" : "Camera on";
  cam.querySelector(".icon").innerHTML = S.camOn ? ICONS.camera : ICONS.cameraOff;
  const me = S.participants.get(S.me);
  const hand = el("ctl-hand");
  const raised = !!(me && me.hand_raised);
  hand.setAttribute("data-on", String(raised));
  hand.querySelector(".label").textContent = raised ? "Lower hand" : "Raise hand";
  hand.querySelector(".icon").innerHTML = ICONS.hand;
  el("ctl-leave").querySelector(".icon").innerHTML = ICONS.leave;
  const mine = S.tiles.get(S.me);
  if (mine) renderTile(me);
}

async function setMic(on, tell = true) {
  if (S.listenOnly) return;
  S.micOn = on;
  if (local.audioTrack) local.audioTrack.enabled = on;
  if (tell) send({ type: on ? "unmute_self" : "mute_self" });
  saveChoices();
  renderControls();
}

/** Back from the waiting room: open the microphone again and send it (muted if it was). */
async function restartMic() {
  if (S.micStarting) return;
  S.micStarting = true;
  let track;
  try {
    track = await local.startMic();
  } catch {
    S.micStarting = false;
    if (S.view !== "room") return; // sent back meanwhile: the next admission tries again
    // The microphone went away while waiting: listen only, shown to the others as muted.
    S.listenOnly = true;
    send({ type: "mute_self" });
    announce("Your microphone did not start again. You can still listen.", true);
    renderControls();
    return;
  }
  S.micStarting = false;
  if (S.view !== "room") { local.stopMic(); return; }
  track.enabled = S.micOn;
  // If the connection is being rebuilt meanwhile, its next answer takes local.audioTrack.
  if (S.media) S.media.setAudio(track).catch(() => {});
}

/** Back from the waiting room with the camera chosen on: start it and send it again. */
async function restartCamera() {
  try {
    const track = await local.startCamera();
    if (S.view !== "room" || !S.camOn) { local.stopCamera(); return; }
    if (S.media) await S.media.setVideo(track);
    const me = S.participants.get(S.me);
    if (me) renderTile(me);
  } catch {
    S.camOn = false;
    send({ type: "camera_self", on: false });
    renderControls();
  }
}

async function setCamera(on, tell = true) {
  if (on) {
    try {
      const track = await local.startCamera();
      if (S.view !== "room") { local.stopCamera(); return; } // left meanwhile
      S.camOn = true;
      if (S.media) await S.media.setVideo(track);
    } catch (err) {
      announce("Your camera did not start. Check that the browser may use it.", true);
      return;
    }
  } else {
    if (S.media) await S.media.setVideo(null);
    local.stopCamera();
    S.camOn = false;
  }
  if (tell) send({ type: "camera_self", on });
  saveChoices();
  renderControls();
  const me = S.participants.get(S.me);
  if (me) renderTile({ ...me, camera_on: S.camOn });
}

function leaveMedia() {
  if (S.media) S.media.close();
  S.media = null;
}

// ------------------------------------------------------------------ tiles

function renderTile(p) {
  if (!p) return;
  let tile = S.tiles.get(p.participant_id);
  if (!tile) {
    tile = buildTile(p);
    S.tiles.set(p.participant_id, tile);
    el("tiles").append(tile.li);
  }
  const isMe = p.participant_id === S.me;
  tile.name.textContent = isMe ? `${p.display_name} (you)` : p.display_name;
  tile.avatar.textContent = initials(p.display_name);
  tile.hand.hidden = !p.hand_raised;
  tile.away.hidden = p.connected;
  tile.micOff.hidden = !p.audio_muted;
  const track = isMe ? local.videoTrack : (S.remote.get(p.participant_id) || {}).video;
  const showVideo = !!(p.camera_on && track);
  if (showVideo && tile.track !== track) {
    tile.video.srcObject = new MediaStream([track]);
    tile.track = track;
    if (!isMe) watchFirstFrame(tile.video);
  }
  tile.video.hidden = !showVideo;
  tile.avatar.hidden = showVideo;
  tile.li.setAttribute("aria-label", describeTile(p, isMe));
  if (tile.hostButton) tile.hostButton.hidden = S.role !== "facilitator";
}

function describeTile(p, isMe) {
  const bits = [isMe ? `${p.display_name} (you)` : p.display_name];
  if (p.role === "facilitator") bits.push("facilitator");
  bits.push(p.audio_muted ? "muted" : "microphone on");
  bits.push(p.camera_on ? "camera on" : "camera off");
  if (p.hand_raised) bits.push("hand raised");
  if (!p.connected) bits.push("reconnecting");
  return bits.join(", ");
}

function buildTile(p) {
  const isMe = p.participant_id === S.me;
  const li = make("li", { class: isMe ? "tile me" : "tile", "data-pid": p.participant_id });
  const video = make("video", { autoplay: true, playsinline: true, muted: true });
  video.muted = true;
  const avatar = make("div", { class: "avatar", "aria-hidden": "true" });
  const hand = make("span", { class: "hand", text: "✋ Hand raised" });
  const away = make("span", { class: "away", text: "Reconnecting…" });
  const name = make("span", { class: "name" });
  const micOff = make("span", { class: "mic-off", title: "Muted" });
  micOff.innerHTML = ICONS.micOff;
  const plate = make("div", { class: "nameplate" }, [name, make("span", { class: "state-icons" }, [micOff])]);
  if (p.role === "facilitator") plate.insertBefore(make("span", { class: "role", text: "Facilitator" }), plate.children[1]);
  li.append(video, avatar, hand, away, plate);
  const tile = { li, video, avatar, hand, away, name, micOff, track: null, hostButton: null };
  if (!isMe && p.role === "parent") addHostMenu(tile, p.participant_id);
  return tile;
}

function addHostMenu(tile, pid) {
  const wrap = make("div", { class: "host-actions" });
  const button = make("button", { type: "button", "aria-haspopup": "true", "aria-expanded": "false", text: "⋯" });
  const menu = make("div", { class: "tile-menu", hidden: true });
  const name = () => (S.participants.get(pid) || {}).display_name || "this person";
  const close = () => {
    menu.hidden = true;
    button.setAttribute("aria-expanded", "false");
  };
  const item = (label, action, cls = "secondary") =>
    make("button", {
      type: "button", class: cls, text: label,
      onclick: () => {
        close();
        if (S.participants.has(pid)) action(); // they may have left meanwhile
        if (button.isConnected) button.focus();
      },
    });
  const fill = () => {
    menu.replaceChildren(
      item(`Mute ${name()}`, () => send({ type: "mute", participant_id: pid })),
      item(`Turn off ${name()}'s camera`, () => send({ type: "camera_off", participant_id: pid })),
      item("Send to the waiting room", () => send({ type: "send_to_waiting", participant_id: pid })),
      make("button", {
        type: "button", class: "danger", text: `Remove ${name()}…`,
        onclick: () => {
          menu.replaceChildren(
            make("p", { text: `Remove ${name()} from this drop-in? They cannot come back to it.` }),
            item("Yes, remove", () => send({ type: "remove", participant_id: pid }), "danger"),
            item("No", () => {}),
          );
          menu.querySelector("button").focus();
        },
      }),
    );
  };
  button.setAttribute("aria-label", `Actions for ${name()}`);
  button.addEventListener("click", () => {
    const opening = menu.hidden;
    if (opening) fill();
    menu.hidden = !opening;
    button.setAttribute("aria-expanded", String(opening));
    if (opening) menu.querySelector("button").focus();
  });
  menu.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { close(); button.focus(); }
  });
  wrap.append(button);
  tile.li.append(wrap, menu);
  tile.hostButton = wrap;
}

function dropTile(pid) {
  const tile = S.tiles.get(pid);
  if (tile) tile.li.remove();
  S.tiles.delete(pid);
}

function watchFirstFrame(video) {
  if (S.timings.firstFrame !== null || !video.requestVideoFrameCallback) return;
  video.requestVideoFrameCallback(() => {
    if (S.timings.firstFrame === null && S.timings.ask !== null) {
      S.timings.firstFrame = performance.now() - S.timings.ask;
    }
  });
}

// Remote media: one <audio> per participant (always playing), video into their tile.
function onRemote(pid, kind, track) {
  const entry = S.remote.get(pid) || {};
  if (entry[kind] === track) return;
  entry[kind] = track;
  S.remote.set(pid, entry);
  if (kind === "audio") {
    let audio = S.audioEls.get(pid);
    if (!track) {
      if (audio) { audio.srcObject = null; audio.remove(); }
      S.audioEls.delete(pid);
      return;
    }
    if (!audio) {
      audio = make("audio"); // played below: a refusal shows the tap-to-hear button
      document.body.append(audio);
      S.audioEls.set(pid, audio);
    }
    audio.srcObject = new MediaStream([track]);
    audio.play().catch(() => { el("sound-on").hidden = false; });
  } else {
    const p = S.participants.get(pid);
    if (p) renderTile(p);
  }
}

function onLevels(map) {
  const level = map.get("me") || 0;
  el("meter-fill").style.width = `${level}%`;
  document.querySelector(".meter").setAttribute("aria-valuenow", String(level));
}

async function showSpeaking() {
  if (!S.media) return;
  const audio = await S.media.levels();
  for (const [pid, tile] of S.tiles) {
    const p = S.participants.get(pid);
    const level = audio[pid === S.me ? "me" : pid] || 0;
    tile.li.classList.toggle("speaking", !!p && !p.audio_muted && level > 0.03);
  }
}

// ------------------------------------------------------------------ facilitator

function renderWaiting() {
  if (S.role !== "facilitator") return;
  const list = el("waiting-list");
  // Keep keyboard focus on the same person's row (or the next one) across updates.
  const focused = list.contains(document.activeElement) ? document.activeElement : null;
  const focusedPid = focused && focused.dataset.pid;
  const focusedIndex = focused ? [...list.querySelectorAll("button")].indexOf(focused) : -1;
  el("waiting-count").textContent = String(S.waiting.length);
  el("admit-all").disabled = S.waiting.length === 0;
  if (S.waiting.length === 0) {
    list.replaceChildren(make("li", { class: "empty", text: "Nobody is waiting." }));
  } else {
    list.replaceChildren(...S.waiting.map((w) => make("li", {}, [
      make("span", { class: "who", text: w.connected ? w.display_name : `${w.display_name} (reconnecting)` }),
      hostButton("Admit", `Admit ${w.display_name}`, "primary", w.participant_id, { type: "admit", participant_id: w.participant_id }),
      hostButton("Deny", `Deny ${w.display_name}`, "secondary", w.participant_id, { type: "deny", participant_id: w.participant_id }),
    ])));
  }
  if (focused) {
    const buttons = [...list.querySelectorAll("button")];
    const same = buttons.find((b) => b.dataset.pid === focusedPid && b.textContent === focused.textContent);
    const next = same || buttons[Math.min(Math.max(focusedIndex, 0), buttons.length - 1)];
    const target = next || (el("admit-all").disabled ? el("waiting-list-title") : el("admit-all"));
    target.focus();
  }
}

/** A facilitator action button that works once (a double tap sends one command). */
function hostButton(label, ariaLabel, cls, pid, command) {
  const button = make("button", { type: "button", class: cls, text: label, "aria-label": ariaLabel, "data-pid": pid });
  button.addEventListener("click", () => {
    if (button.disabled) return;
    button.disabled = true;
    for (const sibling of button.parentElement.querySelectorAll("button")) sibling.disabled = true;
    send(command);
  });
  return button;
}

// ------------------------------------------------------------------ the end

function onEnd(code, err) {
  if (code === null) return; // the page took over (a refused name)
  S.view = "ended";
  clearInterval(speakingTimer);
  speakingTimer = null;
  leaveMedia();
  local.stop();
  levels.stop();
  el("reconnecting").hidden = true;
  for (const audio of S.audioEls.values()) audio.remove();
  S.audioEls.clear();
  if (code !== 4409) sessionStorage.removeItem(storageKey());
  const again = reloadButton("Join again");
  switch (code) {
    case 1000:
      return ended("You have left the drop-in", "You can join again while it is still on.");
    case 4403:
      return notice("You have been removed from this drop-in",
        "A facilitator asked you to leave this drop-in. If you think this was a mistake, please contact the organizer of your group.");
    case 4406:
      return notice("The facilitator could not let you in this time",
        "You can ask again. If this keeps happening, please contact the organizer of your group.", [reloadButton("Ask again")]);
    case 4409:
      return notice("You joined from another window",
        "This drop-in is open in another tab or on another device, so this window has stepped aside.", [reloadButton("Use this window instead")]);
    case 4410: {
      // The organizer cancelled or moved the session: the link's page says what is true now
      // (cancelled, or too early with a countdown to the new time).
      if (S.endReason === "cancelled" || S.endReason === "rescheduled") return main();
      const why = {
        ended_by_facilitator: "The facilitator has ended the drop-in. Thank you for coming.",
        facilitator_lost: "The facilitator could not come back, so the drop-in has ended. We are sorry.",
        time_up: "The drop-in's time is up. Thank you for coming.",
      }[S.endReason] || "Thank you for coming.";
      return ended("This drop-in has ended", why);
    }
    case 4423:
      return notice("The room is locked", "The facilitator has closed the room to new arrivals for now. You can try again in a little while.", [reloadButton("Try again")]);
    case 4424:
      return notice("This drop-in is full", "Every place in the room is taken.", [linkButton("My drop-ins", S.info.page_url)]);
    case 4404:
      return main(); // the info endpoint says what the room's state is now
    case 4401:
      if (err && err.status) return main();
      return notice("We could not connect you", "The drop-in did not answer. Check your internet connection, then try again.", [again]);
    default:
      return notice("We lost the connection", "Your internet connection dropped for too long. You can join again.", [again]);
  }
}

// ------------------------------------------------------------------ wiring

el("ctl-mic").addEventListener("click", () => setMic(!S.micOn));
el("ctl-camera").addEventListener("click", () => setCamera(!S.camOn));
el("ctl-hand").addEventListener("click", () => {
  const me = S.participants.get(S.me);
  send({ type: me && me.hand_raised ? "lower_hand" : "raise_hand" });
});
/** Leave for good: on the socket, and by the link too (keepalive: sent even if the tab
 * closes next). While reconnecting, or on a socket that looks open but is not, the link is
 * the only way; without it the others would see us "reconnecting" for the grace window.
 * Saying it twice is harmless. */
function leave() {
  if (S.socket) {
    S.socket.leave();
    fetch(`/j/${encodeURIComponent(token)}/leave`, { method: "POST", keepalive: true, cache: "no-store" })
      .catch(() => { /* offline: the grace window lets us go */ });
  }
  onEnd(1000, null);
}
el("ctl-leave").addEventListener("click", leave);
el("waiting-leave").addEventListener("click", leave);
el("admit-all").addEventListener("click", () => send({ type: "admit_all" }));
el("mute-all").addEventListener("click", () => send({ type: "mute_all" }));
el("lock").addEventListener("click", () => send({ type: S.locked ? "unlock" : "lock" }));
el("end").addEventListener("click", () => {
  el("end-confirm").hidden = false;
  el("end-yes").focus();
});
el("end-no").addEventListener("click", () => {
  el("end-confirm").hidden = true;
  el("end").focus();
});
el("end-yes").addEventListener("click", () => send({ type: "end" }));
el("sound-on").addEventListener("click", () => {
  // play() first, synchronously inside the tap: the strictest browsers honour a tap only
  // for calls made while it is being handled, not after an await.
  const started = [...S.audioEls.values()].map((audio) => audio.play());
  resumeAudio();
  el("sound-on").hidden = true;
  Promise.all(started).catch((err) => {
    // AbortError: a new track replaced that element's source meanwhile, not a refusal.
    if (err.name !== "AbortError") el("sound-on").hidden = false;
  });
});

// For tests and support: what this page receives, and how long joining took.
window.__dropin = {
  stats: () => (S.media ? S.media.stats() : Promise.resolve({})),
  state: () => ({
    view: S.view,
    me: S.me,
    role: S.role,
    participants: [...S.participants.values()],
    waiting: S.waiting,
    paused: S.paused,
    locked: S.locked,
    // Whether this page holds a live camera track (its light on).
    cameraLive: !!(local.videoTrack && local.videoTrack.readyState === "live"),
    micLive: !!(local.audioTrack && local.audioTrack.readyState === "live"),
  }),
  timings: S.timings,
};

main();
