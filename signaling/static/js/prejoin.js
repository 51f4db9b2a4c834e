// Before joining: the camera preview (off until turned on), the microphone meter, device
// choice, "sound only" and "listen only", the name others will see, the group agreement, and
// a permission problem explained. The choices go into state.js for the call.

import { local } from "./media.js";
import { MAX_DISPLAY_NAME_CHARS } from "./protocol.js";
import { renderMeter } from "./render.js";
import { LevelWatcher, resumeAudio } from "./sound.js";
import {
  audioOnlyChosen, cameraChosen, failed, listenOnlyChosen, micChosen, state, viewShown,
} from "./state.js";
import { announce, el, initials, make, show } from "./view.js";

// The microphone meter before joining (WebAudio). In the call, speaking rings come from the
// peer connection's own audio levels instead: no audio graph per participant to run.
const levels = new LevelWatcher(renderMeter);
let onAsk = () => {};
let wired = false;

/** ``ask`` runs when the person asks to join (the form is valid as far as the page knows). */
export function initPrejoin(ask) {
  onAsk = ask;
}

export async function showPrejoin() {
  const info = state.info;
  viewShown("prejoin");
  el("prejoin-title").textContent = info.discreet ? "Your drop-in" : info.title;
  el("prejoin-when").textContent = `${info.when} (${info.timezone})`;
  el("name-input").value = state.name || info.display_name;
  el("preview-avatar").textContent = initials(el("name-input").value);
  el("prejoin-error").hidden = true;
  if (!local.videoTrack) stopPreviewCamera(); // the camera is off unless it is really on
  show("prejoin-view", "prejoin-title");
  if (!wired) wire();
  wired = true;
  updateAsk();
  if (!state.listenOnly) await startPreviewMic();
}

/** The meter stops when the person asks to join (and at the end). */
export function stopMeter() {
  levels.stop();
}

/** The pre-join controls' listeners, added once however often the view is shown. */
function wire() {
  // Browsers start audio suspended until the person interacts: the meter needs it running.
  const wake = () => { if (state.view === "prejoin") resumeAudio(); };
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
    audioOnlyChosen(el("audio-only").checked);
    if (state.audioOnly) stopPreviewCamera();
    el("prejoin-camera").disabled = state.audioOnly || state.listenOnly;
  });
  el("mic-select").addEventListener("change", async () => {
    try { levels.watch("me", await local.startMic(el("mic-select").value)); } catch (err) { permissionProblem(err, "microphone"); }
  });
  el("cam-select").addEventListener("change", async () => {
    if (state.camOn) await startPreviewCamera(el("cam-select").value);
  });
  el("permission-retry").addEventListener("click", () => {
    if (state.failed === "camera") startPreviewCamera(el("cam-select").value);
    else startPreviewMic();
  });
  el("permission-listen").addEventListener("click", () => {
    // Listening only: nothing of ours is captured or sent, the camera light goes off.
    listenOnlyChosen(true);
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
    audioOnlyChosen(true);
    stopPreviewCamera();
    el("prejoin-camera").disabled = true;
    el("permission-problem").hidden = true;
  });
  el("prejoin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    onAsk();
  });
}

function updateAsk() {
  el("ask").disabled = !(el("agree").checked && el("name-input").value.trim());
}

async function startPreviewMic() {
  try {
    const track = await local.startMic(el("mic-select").value);
    listenOnlyChosen(false);
    el("permission-problem").hidden = true;
    el("meter-label").textContent = "Microphone";
    el("prejoin-mic").disabled = false;
    levels.watch("me", track);
    await fillDevices();
  } catch (err) {
    failed("microphone");
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
  micChosen(!state.micOn);
  if (local.audioTrack) local.audioTrack.enabled = state.micOn;
  el("prejoin-mic").textContent = state.micOn ? "Mute microphone" : "Unmute microphone";
  el("prejoin-mic").setAttribute("data-on", String(state.micOn));
}

async function togglePreviewCamera() {
  if (state.camOn) stopPreviewCamera();
  else await startPreviewCamera(el("cam-select").value);
}

async function startPreviewCamera(deviceId) {
  try {
    const track = await local.startCamera(deviceId);
    if (state.view !== "prejoin" || state.audioOnly || state.listenOnly) { local.stopCamera(); return; }
    cameraChosen(true);
    el("permission-problem").hidden = true;
    el("preview-video").srcObject = new MediaStream([track]);
    el("preview-video").hidden = false;
    el("preview-avatar").hidden = true;
    el("preview-state").textContent = "Your camera is on";
    el("prejoin-camera").textContent = "Turn camera off";
    el("prejoin-camera").setAttribute("data-on", "true");
    await fillDevices();
  } catch (err) {
    failed("camera");
    permissionProblem(err, "camera");
  }
}

function stopPreviewCamera() {
  local.stopCamera();
  cameraChosen(false);
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

// ------------------------------------------------------------------ the name

/** What the server will refuse in a name (protocol.normalize_display_name), said kindly. */
function nameProblem(name) {
  if (!name) return "Please type the name others will see.";
  if (Array.from(name.normalize("NFC")).length > MAX_DISPLAY_NAME_CHARS) return `Please use at most ${MAX_DISPLAY_NAME_CHARS} characters.`;
  // Control, format (other than the joiners emoji need), private-use and separator characters.
  if (/[\p{Cc}\p{Co}\p{Cs}\p{Zl}\p{Zp}]/u.test(name) || /[\p{Cf}]/u.test(name.replace(/[\u200c\u200d]/g, ""))) {
    return "Your name contains a character we cannot show. Please type it with letters only.";
  }
  return null;
}

/** The name typed, trimmed, or null (and the reason shown) when the server would refuse it. */
export function takeName() {
  const name = el("name-input").value.trim();
  const problem = nameProblem(name);
  if (problem) {
    showPrejoinError(problem);
    return null;
  }
  el("prejoin-error").hidden = true;
  el("ask").disabled = true;
  return name;
}

export function showPrejoinError(text) {
  el("prejoin-error").textContent = text;
  el("prejoin-error").hidden = false;
  updateAsk();
}
