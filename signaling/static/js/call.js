// The call's media on this page: our microphone and camera on and off (and resting in the
// waiting room), the one peer connection (media.js RoomMedia), everyone's audio elements,
// "Tap to turn on sound", and the speaking rings. Choices go through state.js; what is shown
// comes from render.js.

import { RoomMedia, local } from "./media.js";
import { ClientType } from "./protocol.js";
import { renderControls, renderMyTile, renderSpeaking, renderTile, renderTileOf } from "./render.js";
import { resumeAudio } from "./sound.js";
import {
  cameraChosen, mark, micChosen, micLost, myself, remoteTrack, roomSnapshot, saveChoices, state,
} from "./state.js";
import { announce, el, make } from "./view.js";

let send = () => {};
let media = null; // RoomMedia while in the call
let micStarting = false; // restartMic in flight
let speakingTimer = null;
const audioEls = new Map(); // pid -> <audio>

/** Wire our own call controls once; ``sendCommand`` says a message on the room's socket. */
export function initCall(sendCommand) {
  send = sendCommand;
  el("ctl-mic").addEventListener("click", () => setMic(!state.micOn));
  el("ctl-camera").addEventListener("click", () => setCamera(!state.camOn));
  el("ctl-hand").addEventListener("click", () => {
    const me = myself();
    send({ type: me && me.hand_raised ? ClientType.LOWER_HAND : ClientType.RAISE_HAND });
  });
  el("sound-on").addEventListener("click", soundOn);
}

// ------------------------------------------------------------------ the peer connection

/** Admitted: the peer connection (once), our devices as chosen, the speaking rings. */
export function openMedia() {
  if (!media) {
    media = new RoomMedia({
      local,
      iceServers: state.iceServers || [],
      send,
      onRemote,
      onState: (connection) => { if (connection === "connected") mark("connected"); },
    });
  }
  if (!state.listenOnly && !local.audioTrack) restartMic();
  if (state.camOn && !local.videoTrack) restartCamera();
  if (speakingTimer === null) speakingTimer = setInterval(showSpeaking, 400);
}

export function closeMedia() {
  if (media) media.close();
  media = null;
}

export function answerOffer(msg) {
  return media && media.offer(msg);
}

/** Cap what we send for the room's size (media.js). */
export function fitToRoom() {
  if (media) media.setRoomSize(state.participants.size);
}

export function mediaStats() {
  return media ? media.stats() : Promise.resolve({});
}

/** The room as the server says (state.js roomSnapshot), carried out on our devices. */
export function applySnapshot(room) {
  for (const effect of roomSnapshot(room)) {
    if (effect.send) send(effect.send);
    if ("micEnabled" in effect && local.audioTrack) local.audioTrack.enabled = effect.micEnabled;
    if (effect.stopCamera) local.stopCamera();
  }
  saveChoices();
}

/**
 * The waiting room: nothing is sent, the camera and microphone rest (the browser's
 * indicators off) until admitted. state.camOn and state.micOn keep the person's choices;
 * openMedia starts both again.
 */
export function restDevices() {
  local.stopCamera();
  local.stopMic();
}

/** The call is over: stop everything and every sound. */
export function stopCall() {
  clearInterval(speakingTimer);
  speakingTimer = null;
  closeMedia();
  local.stop();
  for (const audio of audioEls.values()) audio.remove();
  audioEls.clear();
}

// ------------------------------------------------------------------ our microphone and camera

export async function setMic(on, tell = true) {
  if (state.listenOnly) return;
  micChosen(on);
  if (local.audioTrack) local.audioTrack.enabled = on;
  if (tell) send({ type: on ? ClientType.UNMUTE_SELF : ClientType.MUTE_SELF });
  saveChoices();
  renderControls();
}

/** Back from the waiting room: open the microphone again and send it (muted if it was). */
async function restartMic() {
  if (micStarting) return;
  micStarting = true;
  let track;
  try {
    track = await local.startMic();
  } catch {
    micStarting = false;
    if (state.view !== "room") return; // sent back meanwhile: the next admission tries again
    // The microphone went away while waiting: listen only, shown to the others as muted.
    micLost();
    send({ type: ClientType.MUTE_SELF });
    announce("Your microphone did not start again. You can still listen.", true);
    renderControls();
    return;
  }
  micStarting = false;
  if (state.view !== "room") { local.stopMic(); return; }
  track.enabled = state.micOn;
  // If the connection is being rebuilt meanwhile, its next answer takes local.audioTrack.
  if (media) media.setAudio(track).catch(() => {});
}

/** Back from the waiting room with the camera chosen on: start it and send it again. */
async function restartCamera() {
  try {
    const track = await local.startCamera();
    if (state.view !== "room" || !state.camOn) { local.stopCamera(); return; }
    if (media) await media.setVideo(track);
    const me = myself();
    if (me) renderTile(me);
  } catch {
    cameraChosen(false);
    send({ type: ClientType.CAMERA_SELF, on: false });
    renderControls();
  }
}

export async function setCamera(on, tell = true) {
  if (on) {
    try {
      const track = await local.startCamera();
      if (state.view !== "room") { local.stopCamera(); return; } // left meanwhile
      cameraChosen(true);
      if (media) await media.setVideo(track);
    } catch (err) {
      announce("Your camera did not start. Check that the browser may use it.", true);
      return;
    }
  } else {
    if (media) await media.setVideo(null);
    local.stopCamera();
    cameraChosen(false);
  }
  if (tell) send({ type: ClientType.CAMERA_SELF, on });
  saveChoices();
  renderControls();
  renderMyTile();
}

// ------------------------------------------------------------------ everyone else

/** Remote media: one <audio> per participant (always playing), video into their tile. */
function onRemote(pid, kind, track) {
  if (!remoteTrack(pid, kind, track)) return;
  if (kind === "audio") {
    let audio = audioEls.get(pid);
    if (!track) {
      if (audio) { audio.srcObject = null; audio.remove(); }
      audioEls.delete(pid);
      return;
    }
    if (!audio) {
      audio = make("audio"); // played below: a refusal shows the tap-to-hear button
      document.body.append(audio);
      audioEls.set(pid, audio);
    }
    audio.srcObject = new MediaStream([track]);
    audio.play().catch(() => { el("sound-on").hidden = false; });
  } else {
    renderTileOf(pid);
  }
}

/** A participant left: their audio and video go. */
export function dropRemote(pid) {
  onRemote(pid, "audio", null);
  onRemote(pid, "video", null);
}

function soundOn() {
  // play() first, synchronously inside the tap: the strictest browsers honour a tap only
  // for calls made while it is being handled, not after an await.
  const started = [...audioEls.values()].map((audio) => audio.play());
  resumeAudio();
  el("sound-on").hidden = true;
  Promise.all(started).catch((err) => {
    // AbortError: a new track replaced that element's source meanwhile, not a refusal.
    if (err.name !== "AbortError") el("sound-on").hidden = false;
  });
}

async function showSpeaking() {
  if (!media) return;
  renderSpeaking(await media.levels());
}

/** After a reload: open the microphone and camera as they were chosen before. */
export async function reopenDevices(camOn) {
  if (!state.listenOnly) {
    try {
      await local.startMic();
      local.audioTrack.enabled = state.micOn;
    } catch {
      micLost();
    }
  }
  if (camOn && !state.audioOnly && !state.listenOnly) {
    try {
      await local.startCamera();
      cameraChosen(true);
    } catch { cameraChosen(false); }
  }
}
