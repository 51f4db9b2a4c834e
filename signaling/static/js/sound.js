// Sound helpers on one shared AudioContext: a soft chime for knocks, and the microphone meter
// before joining. (In the call, speaking rings use the peer connection's audio levels.)

let context = null;

export function audioContext() {
  if (!context) context = new AudioContext();
  return context;
}

/** Resume audio after a user gesture (browsers start an AudioContext suspended). */
export async function resumeAudio() {
  const ctx = audioContext();
  if (ctx.state !== "running") {
    try { await ctx.resume(); } catch { /* still blocked: the page offers a button */ }
  }
  return ctx.state === "running";
}

/** Stop the audio clock while nothing needs it (it costs CPU even when silent). */
export async function suspendAudio() {
  if (context && context.state === "running") {
    try { await context.suspend(); } catch { /* already closed */ }
  }
}

/** Two soft notes, for a knock at the waiting room. */
export async function chime() {
  const ctx = audioContext();
  if (ctx.state !== "running" && !(await resumeAudio())) return;
  const now = ctx.currentTime;
  [660, 880].forEach((freq, i) => {
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = "sine";
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, now + i * 0.18);
    gain.gain.exponentialRampToValueAtTime(0.15, now + i * 0.18 + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.18 + 0.35);
    osc.connect(gain).connect(ctx.destination);
    osc.start(now + i * 0.18);
    osc.stop(now + i * 0.18 + 0.4);
  });
}

/** Watches audio tracks and reports a 0-100 level for each, a few times a second. */
export class LevelWatcher {
  constructor(onLevels, intervalMs = 150) {
    this.onLevels = onLevels;
    this.intervalMs = intervalMs;
    this.meters = new Map();
    this.buffer = new Float32Array(512);
    this.timer = null;
  }

  watch(key, track) {
    this.unwatch(key);
    if (!track) return;
    if (this.timer === null) this.timer = setInterval(() => this.tick(), this.intervalMs);
    const ctx = audioContext();
    const source = ctx.createMediaStreamSource(new MediaStream([track]));
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 512;
    source.connect(analyser);
    this.meters.set(key, { source, analyser });
  }

  unwatch(key) {
    const meter = this.meters.get(key);
    if (meter) meter.source.disconnect();
    this.meters.delete(key);
  }

  tick() {
    const levels = new Map();
    for (const [key, { analyser }] of this.meters) {
      analyser.getFloatTimeDomainData(this.buffer);
      let sum = 0;
      for (const v of this.buffer) sum += v * v;
      const rms = Math.sqrt(sum / this.buffer.length);
      levels.set(key, Math.min(100, Math.round(rms * 400)));
    }
    this.onLevels(levels);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    for (const key of [...this.meters.keys()]) this.unwatch(key);
  }
}
