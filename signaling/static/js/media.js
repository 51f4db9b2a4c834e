// Local devices (camera, microphone) and the one peer connection to the server's relay.
//
// The server always offers; the page only answers (docs/signaling.md, "Media negotiation").
// Each offer's send-only sections carry one participant's audio or video, named by the msid
// stream id (the participant id); its receive-only sections are where this page publishes.

import { ClientType } from "./protocol.js";

/** The camera and microphone of this device. The camera is off until asked for. */
export class LocalMedia {
  constructor() {
    this.audioTrack = null;
    this.videoTrack = null;
    this.micId = "";
    this.camId = "";
    this.fitted = ""; // track id and width last asked of the camera (fitCamera)
  }

  /** Open the microphone; throws the browser's error (NotAllowedError, NotFoundError...). */
  async startMic(deviceId = this.micId) {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: {
        deviceId: deviceId ? { exact: deviceId } : undefined,
        echoCancellation: true,
        noiseSuppression: true,
        autoGainControl: true,
      },
    });
    const track = stream.getAudioTracks()[0];
    const enabled = this.audioTrack ? this.audioTrack.enabled : true;
    this.stopMic();
    track.enabled = enabled;
    this.audioTrack = track;
    this.micId = track.getSettings().deviceId || deviceId || "";
    return track;
  }

  stopMic() {
    if (this.audioTrack) this.audioTrack.stop();
    this.audioTrack = null;
  }

  /** Open the camera at a size that suits a small call on a phone's connection. */
  async startCamera(deviceId = this.camId) {
    const stream = await navigator.mediaDevices.getUserMedia({
      video: {
        deviceId: deviceId ? { exact: deviceId } : undefined,
        width: { ideal: 640 },
        height: { ideal: 360 },
        frameRate: { ideal: 24, max: 30 },
      },
    });
    this.stopCamera();
    const track = stream.getVideoTracks()[0];
    track.contentHint = "motion";
    this.videoTrack = track;
    this.camId = track.getSettings().deviceId || deviceId || "";
    return track;
  }

  /**
   * Capture no more than the room needs (see sendScale): less for the camera, the encoder and
   * the battery to do. Best effort: a camera that cannot do it keeps its size.
   */
  async fitCamera(participants) {
    const track = this.videoTrack;
    if (!track || track.readyState !== "live") return;
    const width = Math.round(640 / sendScale(participants));
    const height = Math.round(width * 9 / 16);
    // Asked once per track and size: a camera that cannot give exactly this size (a 4:3-only
    // webcam, a phone reporting portrait) is not reconfigured on every room update.
    const asked = `${track.id}/${width}`;
    if (this.fitted === asked) return;
    this.fitted = asked;
    const now = track.getSettings();
    if (now.width === width && now.height === height) return;
    try {
      await track.applyConstraints({
        width: { ideal: width },
        height: { ideal: height },
        aspectRatio: { ideal: 16 / 9 },
        frameRate: { ideal: 24, max: 30 },
      });
    } catch { /* keep what we have */ }
  }

  /** Stop the camera completely, so its light goes off. */
  stopCamera() {
    if (this.videoTrack) this.videoTrack.stop();
    this.videoTrack = null;
  }

  async devices() {
    const all = await navigator.mediaDevices.enumerateDevices();
    return {
      mics: all.filter((d) => d.kind === "audioinput"),
      cams: all.filter((d) => d.kind === "videoinput"),
    };
  }

  stop() {
    this.stopMic();
    this.stopCamera();
  }
}

/** This device's camera and microphone: one for the page, from before joining to the end. */
export const local = new LocalMedia();

/** mid -> participant id, from each send-only section's msid line. */
export function senders(sdp) {
  const found = new Map();
  for (const section of sdp.split(/\r?\nm=/).slice(1)) {
    const mid = /^a=mid:(\S+)/m.exec(section);
    const msid = /^a=msid:(\S+)/m.exec(section);
    if (mid && msid && msid[1] !== "-" && /^a=sendonly\s*$/m.test(section)) {
      found.set(mid[1], msid[1]);
    }
  }
  return found;
}

/** Mids of the sections the server receives on: where this page publishes. */
export function publishMids(sdp) {
  const found = new Set();
  for (const section of sdp.split(/\r?\nm=/).slice(1)) {
    const mid = /^a=mid:(\S+)/m.exec(section);
    if (mid && /^a=recvonly\s*$/m.test(section)) found.add(mid[1]);
  }
  return found;
}

/** The same rule as the server's relay: ~4 Mbit/s shared by the others, 250-1200 kbit/s. */
export function sendKbps(participants) {
  return Math.max(250, Math.min(1200, Math.floor(4000 / Math.max(1, participants - 1))));
}

/**
 * How much to scale our 640x360 camera down for a room this size. Every page decodes every
 * other camera, and tiles shrink as the room grows (on a phone especially): 640x360 for up
 * to three people, 480x270 for four, 320x180 from five.
 */
export function sendScale(participants) {
  if (participants <= 3) return 1;
  return participants === 4 ? 1.333 : 2;
}

/** The page's one peer connection to the relay, rebuilt on a fresh offer. */
export class RoomMedia {
  /**
   * @param {object} opts
   * @param {LocalMedia} opts.local
   * @param {RTCIceServer[]} opts.iceServers
   * @param {(msg: object) => void} opts.send  to the WebSocket
   * @param {(pid: string, kind: string, track: MediaStreamTrack|null) => void} opts.onRemote
   * @param {(state: string) => void} opts.onState
   */
  constructor(opts) {
    this.opts = opts;
    this.pc = null;
    this.byMid = new Map();
    this.publish = { audio: null, video: null };
    this.chain = Promise.resolve();
    this.kbps = 1200;
    this.participants = 2;
    this.tuning = null;
    this.retune = false;
  }

  /** Answer an offer; offers are handled strictly one after another. */
  offer(msg) {
    this.chain = this.chain.then(() => this.answer(msg)).catch((err) => {
      console.warn("dropin: could not answer an offer", err);
    });
    return this.chain;
  }

  async answer({ offer_id: offerId, sdp, fresh }) {
    if (fresh || !this.pc) this.newConnection();
    const pc = this.pc;
    const before = this.byMid;
    this.byMid = senders(sdp);
    const mine = publishMids(sdp);
    await pc.setRemoteDescription({ type: "offer", sdp });
    for (const t of pc.getTransceivers()) {
      if (mine.has(t.mid)) {
        const kind = t.receiver.track.kind;
        t.direction = "sendonly";
        this.publish[kind] = t.sender;
        await t.sender.replaceTrack(kind === "audio" ? this.opts.local.audioTrack : this.opts.local.videoTrack);
      }
    }
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    await gathered(pc, 3000);
    if (pc !== this.pc) return; // replaced while we were working
    this.opts.send({ type: ClientType.ANSWER, offer_id: offerId, sdp: pc.localDescription.sdp });
    this.tune(); // not awaited: the tiles below need not wait for the camera to refit
    // Tell the page who is in which section now (tracks may be reused for someone else).
    for (const [mid, pid] of before) {
      if (this.byMid.get(mid) !== pid) this.opts.onRemote(pid, kindOf(pc, mid), null);
    }
    for (const t of pc.getTransceivers()) {
      const pid = this.byMid.get(t.mid);
      if (pid) this.opts.onRemote(pid, t.receiver.track.kind, t.receiver.track);
    }
  }

  newConnection() {
    this.close();
    const pc = new RTCPeerConnection({ iceServers: this.opts.iceServers, bundlePolicy: "max-bundle" });
    pc.onconnectionstatechange = () => this.opts.onState(pc.connectionState);
    this.pc = pc;
    this.publish = { audio: null, video: null };
    this.byMid = new Map();
  }

  /** Send this track as our video (null: send none). */
  async setVideo(track) {
    if (this.publish.video) await this.publish.video.replaceTrack(track);
    if (track) await this.tune(); // a new camera starts at full size
  }

  async setAudio(track) {
    if (this.publish.audio) await this.publish.audio.replaceTrack(track);
  }

  /** Cap what we send for the room's size: the relay forwards, it does not adapt. */
  setRoomSize(participants) {
    // Called on every render: only a new size needs work (answers and a new camera tune too).
    if (participants === this.participants) return this.tuning || Promise.resolve();
    this.participants = participants;
    this.kbps = sendKbps(participants);
    return this.tune();
  }

  /**
   * Fit the camera and the video sender to the room's size. One pass at a time, and one more
   * if asked meanwhile, so the latest size wins: the size changes in bursts (admit all, a
   * render per message), and overlapping applyConstraints or setParameters calls finish in
   * any order, which left an older size in place.
   */
  tune() {
    if (this.tuning) {
      this.retune = true;
      return this.tuning;
    }
    this.tuning = (async () => {
      try {
        do {
          this.retune = false;
          await this.opts.local.fitCamera(this.participants);
          await this.applyBitrate();
        } while (this.retune);
      } catch (err) {
        console.warn("dropin: could not fit what we send to the room", err);
      } finally {
        this.tuning = null;
      }
    })();
    return this.tuning;
  }

  async applyBitrate() {
    const sender = this.publish.video;
    if (!sender) return;
    const params = sender.getParameters();
    if (!params.encodings || params.encodings.length === 0) return;
    params.encodings[0].maxBitrate = this.kbps * 1000;
    params.encodings[0].maxFramerate = 24;
    // The camera is already captured at the room's size (fitCamera); scale only if it could not.
    const captured = this.opts.local.videoTrack ? this.opts.local.videoTrack.getSettings().width || 640 : 640;
    const wanted = 640 / sendScale(this.participants);
    params.encodings[0].scaleResolutionDownBy = Math.max(1, captured / wanted);
    try { await sender.setParameters(params); } catch { /* not negotiated yet */ }
  }

  /** Per participant: frames decoded, audio samples received (for tests and diagnostics). */
  async stats() {
    const out = {};
    if (!this.pc) return out;
    const report = await this.pc.getStats();
    const encoding = this.publish.video?.getParameters().encodings?.[0];
    const capture = this.opts.local.videoTrack?.getSettings();
    report.forEach((s) => {
      if (s.type === "outbound-rtp" && s.kind === "video") {
        // What we send, under a key no participant id can take.
        out["-sent"] = {
          width: s.frameWidth || 0,
          height: s.frameHeight || 0,
          framesPerSecond: s.framesPerSecond || 0,
          framesEncoded: s.framesEncoded || 0,
          limitedBy: s.qualityLimitationReason || "none",
          // What this page asks for (the encoder may send less while bandwidth ramps up).
          maxBitrate: encoding?.maxBitrate || 0,
          scaleDown: encoding?.scaleResolutionDownBy || 1,
          captureWidth: capture?.width || 0,
          captureHeight: capture?.height || 0,
        };
      }
      if (s.type !== "inbound-rtp") return;
      const pid = this.byMid.get(s.mid);
      if (!pid) return;
      const entry = (out[pid] ||= { framesDecoded: 0, framesPerSecond: 0, totalSamplesReceived: 0, audioEnergy: 0 });
      if (s.kind === "video") {
        entry.framesDecoded += s.framesDecoded || 0;
        entry.framesPerSecond = s.framesPerSecond || 0;
      } else {
        entry.totalSamplesReceived += s.totalSamplesReceived || 0;
        entry.audioEnergy += s.totalAudioEnergy || 0; // grows only with sound, not silence
      }
    });
    return out;
  }

  /** Audio levels (0-1) by participant id, and "me" for our own microphone. */
  async levels() {
    const out = {};
    if (!this.pc) return out;
    const report = await this.pc.getStats();
    report.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "audio") {
        const pid = this.byMid.get(s.mid);
        if (pid) out[pid] = s.audioLevel || 0;
      } else if (s.type === "media-source" && s.kind === "audio") {
        out.me = s.audioLevel || 0;
      }
    });
    return out;
  }

  close() {
    if (this.pc) {
      this.pc.onconnectionstatechange = null;
      this.pc.close();
    }
    for (const pid of new Set(this.byMid.values())) {
      this.opts.onRemote(pid, "audio", null);
      this.opts.onRemote(pid, "video", null);
    }
    this.pc = null;
  }
}

function kindOf(pc, mid) {
  const t = pc.getTransceivers().find((x) => x.mid === mid);
  return t ? t.receiver.track.kind : "video";
}

/** Resolve when ICE gathering is complete (the server does not need trickled candidates). */
function gathered(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      pc.removeEventListener("icegatheringstatechange", check);
      clearTimeout(timer);
      resolve();
    };
    const check = () => { if (pc.iceGatheringState === "complete") done(); };
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener("icegatheringstatechange", check);
  });
}
