// Cut a live 16 kHz stream into utterances, with the terminal client's rules
// (lingua_client/_cutter.py): speech starts when a window's speech probability reaches
// startThreshold (keeping preRollMs of audio before it), ends after hangoverMs below
// endThreshold, is cut anyway at maxUtteranceS, and pieces with under minSpeechMs of speech
// are dropped. Plain state fed blocks of samples; no timers, no audio API.
//
// The probability comes from an energy detector (EnergyVad) rather than Silero: the page
// then needs no model download and no WebAssembly runtime, and the cutter's rules (which
// decide the latency and the cut points) stay the same as the terminal client's.

export const RATE = 16000;
export const WINDOW = 512; // 32 ms, the terminal client's window

export const DEFAULT_CUTTER = {
  startThreshold: 0.5,
  endThreshold: 0.35,
  hangoverMs: 500,
  maxUtteranceS: 15,
  preRollMs: 200,
  minSpeechMs: 250,
};

// Speech "probability" of a window from its level over a tracked noise floor: 0 at 6 dB
// above the floor, 1 at 18 dB above it; the floor never counts below -60 dBFS, so digital
// silence does not make faint hiss look like speech. The floor follows quiet windows down at
// once and rises by 0.05 dB per window (about 1.5 dB/s), so speech does not lift it.
export class EnergyVad {
  constructor() {
    this.noiseDb = -60;
  }

  probability(window) {
    let sum = 0;
    for (let i = 0; i < window.length; i++) sum += window[i] * window[i];
    const rms = Math.sqrt(sum / Math.max(1, window.length));
    const db = 20 * Math.log10(rms + 1e-9);
    this.noiseDb = Math.min(this.noiseDb + 0.05, Math.max(db, -90));
    const floor = Math.max(this.noiseDb, -60);
    return Math.min(1, Math.max(0, (db - floor - 6) / 12));
  }
}

export class UtteranceCutter {
  constructor(probability, settings = {}) {
    this.probability = probability;
    this.s = { ...DEFAULT_CUTTER, ...settings };
    this.state = "silence"; // "silence" | "speech"
    this.level = 0;
    this.pending = new Float32Array(0);
    this.pre = [];
    this.speech = [];
    this.silentWindows = 0;
    this.voicedWindows = 0;
  }

  // Take any number of samples; returns the cuts they completed: {audio, manual, reason}.
  feed(block) {
    const s = this.s;
    const joined = new Float32Array(this.pending.length + block.length);
    joined.set(this.pending);
    joined.set(block, this.pending.length);
    const hang = Math.max(1, Math.floor((s.hangoverMs * RATE) / 1000 / WINDOW));
    const pre = Math.max(0, Math.floor((s.preRollMs * RATE) / 1000 / WINDOW));
    const maxWindows = Math.floor((s.maxUtteranceS * RATE) / WINDOW);
    const cuts = [];
    let at = 0;
    for (; at + WINDOW <= joined.length; at += WINDOW) {
      const window = joined.slice(at, at + WINDOW);
      let sum = 0;
      for (let i = 0; i < WINDOW; i++) sum += window[i] * window[i];
      this.level = Math.sqrt(sum / WINDOW);
      const p = this.probability(window);
      if (this.state === "silence") {
        this.pre.push(window);
        while (this.pre.length > pre + 1) this.pre.shift();
        if (p >= s.startThreshold) {
          this.state = "speech";
          this.speech = this.pre;
          this.pre = [];
          this.silentWindows = 0;
          this.voicedWindows = 1;
        }
        continue;
      }
      this.speech.push(window);
      if (p < s.endThreshold) {
        this.silentWindows += 1;
      } else {
        this.silentWindows = 0;
        this.voicedWindows += 1;
      }
      if (this.silentWindows >= hang) {
        const cut = this.emit("end_of_speech", false, false);
        if (cut) cuts.push(cut);
      } else if (this.speech.length >= maxWindows) {
        const cut = this.emit("max_length", false, true);
        if (cut) cuts.push(cut);
      }
    }
    this.pending = joined.slice(at);
    return cuts;
  }

  // The user pressed cut: whatever speech is buffered goes now.
  cutNow() {
    if (this.state !== "speech") return null;
    return this.emit("manual", true, false);
  }

  // Forget buffered speech (the mic was muted for playback).
  reset() {
    this.state = "silence";
    this.pending = new Float32Array(0);
    this.pre = [];
    this.speech = [];
    this.silentWindows = 0;
    this.voicedWindows = 0;
  }

  emit(reason, manual, keepSpeaking) {
    const total = this.speech.reduce((n, w) => n + w.length, 0);
    const audio = new Float32Array(total);
    let off = 0;
    for (const w of this.speech) {
      audio.set(w, off);
      off += w.length;
    }
    const voicedMs = (this.voicedWindows * WINDOW * 1000) / RATE;
    this.speech = [];
    this.silentWindows = 0;
    this.voicedWindows = keepSpeaking ? 1 : 0;
    this.state = keepSpeaking ? "speech" : "silence";
    if (voicedMs < this.s.minSpeechMs && !manual) return null; // a click or a cough
    return { audio, manual, reason };
  }
}
