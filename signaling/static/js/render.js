// Rendering from state (state.js): the waiting view, the call's tiles, the room's badges and
// banner, our own controls, the speaking rings. Nothing here changes the state, except the
// first decoded frame's time (a measurement). Names are only ever set as text.

import { addHostMenu, renderWaiting } from "./host.js";
import { local } from "./media.js";
import { Role } from "./protocol.js";
import { isFacilitator, mark, myself, state } from "./state.js";
import { ICONS, announce, el, initials, make, show } from "./view.js";

const tiles = new Map(); // pid -> tile elements

// ------------------------------------------------------------------ views

export function enterWaitingView() {
  document.body.classList.remove("in-room");
  show("waiting-view", "waiting-title");
}

export function renderWaitingView() {
  const position = state.position;
  el("waiting-position").textContent = position === 1 ? "You are next in line." : `You are number ${position} in line.`;
  el("waiting-paused").hidden = !state.paused;
}

export function enterRoomView() {
  document.body.classList.add("in-room");
  el("room-title").textContent = state.info.discreet ? "Drop-in" : state.info.title;
  show("room-view", "room-title");
  announce("You are in the call.");
}

/** The whole call: tiles, the facilitator's panel, the room's state, our controls. */
export function renderRoom() {
  for (const pid of [...tiles.keys()]) if (!state.participants.has(pid)) dropTile(pid);
  for (const p of state.participants.values()) renderTile(p);
  el("host-panel").hidden = !isFacilitator();
  document.querySelector(".room-body").classList.toggle("with-panel", isFacilitator());
  renderWaiting();
  renderRoomState();
  renderControls();
}

// ------------------------------------------------------------------ the room

export function renderRoomState(secondsLeft) {
  const n = state.participants.size;
  el("room-count").textContent = n === 1 ? "Only you so far" : `${n} in the call`;
  el("room-locked").hidden = !state.locked;
  el("lock").textContent = state.locked ? "Unlock the room" : "Lock the room";
  el("lock").setAttribute("data-on", String(state.locked));
  const banner = el("room-banner");
  if (state.paused) {
    const minutes = secondsLeft ? Math.max(1, Math.round(secondsLeft / 60)) : null;
    banner.textContent = isFacilitator()
      ? "No facilitator is connected: the call is paused for the parents."
      : `The facilitator's connection dropped. The call is paused until they are back${minutes ? ` (it will wait up to ${minutes} min)` : ""}.`;
    banner.hidden = false;
  } else {
    banner.hidden = true;
  }
  el("waiting-paused").hidden = !state.paused;
}

export function renderControls() {
  const { micOn, camOn, listenOnly, audioOnly } = state;
  const mic = el("ctl-mic");
  mic.disabled = listenOnly;
  mic.setAttribute("data-on", String(!micOn));
  mic.querySelector(".label").textContent = listenOnly ? "No mic" : micOn ? "Mute" : "Unmute";
  mic.querySelector(".icon").innerHTML = micOn && !listenOnly ? ICONS.mic : ICONS.micOff;
  const cam = el("ctl-camera");
  cam.disabled = audioOnly || listenOnly;
  cam.setAttribute("data-on", String(camOn));
  cam.querySelector(".label").textContent = camOn ? "Camera off" : "Camera on";
  cam.querySelector(".icon").innerHTML = camOn ? ICONS.camera : ICONS.cameraOff;
  const me = myself();
  const hand = el("ctl-hand");
  const raised = !!(me && me.hand_raised);
  hand.setAttribute("data-on", String(raised));
  hand.querySelector(".label").textContent = raised ? "Lower hand" : "Raise hand";
  hand.querySelector(".icon").innerHTML = ICONS.hand;
  el("ctl-leave").querySelector(".icon").innerHTML = ICONS.leave;
  if (tiles.has(state.me)) renderTile(me);
}

/** Our own tile as the camera is now (before the server confirms it). */
export function renderMyTile() {
  const me = myself();
  if (me) renderTile({ ...me, camera_on: state.camOn });
}

// ------------------------------------------------------------------ tiles

export function renderTile(p) {
  if (!p) return;
  let tile = tiles.get(p.participant_id);
  if (!tile) {
    tile = buildTile(p);
    tiles.set(p.participant_id, tile);
    el("tiles").append(tile.li);
  }
  const isMe = p.participant_id === state.me;
  tile.name.textContent = isMe ? `${p.display_name} (you)` : p.display_name;
  tile.avatar.textContent = initials(p.display_name);
  tile.hand.hidden = !p.hand_raised;
  tile.away.hidden = p.connected;
  tile.micOff.hidden = !p.audio_muted;
  const track = isMe ? local.videoTrack : (state.remote.get(p.participant_id) || {}).video;
  const showVideo = !!(p.camera_on && track);
  if (showVideo && tile.track !== track) {
    tile.video.srcObject = new MediaStream([track]);
    tile.track = track;
    if (!isMe) watchFirstFrame(tile.video);
  }
  tile.video.hidden = !showVideo;
  tile.avatar.hidden = showVideo;
  tile.li.setAttribute("aria-label", describeTile(p, isMe));
  if (tile.hostButton) tile.hostButton.hidden = !isFacilitator();
}

/** A participant's tile, if shown (after a render in the call). */
export function renderTileOf(pid) {
  const p = state.participants.get(pid);
  if (p) renderTile(p);
}

function describeTile(p, isMe) {
  const bits = [isMe ? `${p.display_name} (you)` : p.display_name];
  if (p.role === Role.FACILITATOR) bits.push("facilitator");
  bits.push(p.audio_muted ? "muted" : "microphone on");
  bits.push(p.camera_on ? "camera on" : "camera off");
  if (p.hand_raised) bits.push("hand raised");
  if (!p.connected) bits.push("reconnecting");
  return bits.join(", ");
}

function buildTile(p) {
  const isMe = p.participant_id === state.me;
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
  if (p.role === Role.FACILITATOR) plate.insertBefore(make("span", { class: "role", text: "Facilitator" }), plate.children[1]);
  li.append(video, avatar, hand, away, plate);
  const tile = { li, video, avatar, hand, away, name, micOff, track: null, hostButton: null };
  if (!isMe && p.role === Role.PARENT) tile.hostButton = addHostMenu(li, p.participant_id);
  return tile;
}

export function dropTile(pid) {
  const tile = tiles.get(pid);
  if (tile) tile.li.remove();
  tiles.delete(pid);
}

function watchFirstFrame(video) {
  if (state.timings.firstFrame !== null || !video.requestVideoFrameCallback) return;
  video.requestVideoFrameCallback(() => mark("firstFrame"));
}

/** Speaking rings from audio levels (0-1) by participant id, "me" for our microphone. */
export function renderSpeaking(audio) {
  for (const [pid, tile] of tiles) {
    const p = state.participants.get(pid);
    const level = audio[pid === state.me ? "me" : pid] || 0;
    tile.li.classList.toggle("speaking", !!p && !p.audio_muted && level > 0.03);
  }
}

/** The microphone meter before joining (0-100). */
export function renderMeter(levels) {
  const level = levels.get("me") || 0;
  el("meter-fill").style.width = `${level}%`;
  document.querySelector(".meter").setAttribute("aria-valuenow", String(level));
}

/** "Reconnecting…" while the socket is down within the grace window. */
export function renderReconnecting(on) {
  el("reconnecting").hidden = !on;
}
