// Translated speech through Web Audio, one clip at a time in arrival order (which is
// utterance order: the scheduler sequences results), each at the result's own
// tts_sample_rate (the AudioContext resamples). `playedMs` counts what has been played;
// onBusy(true/false) tells the page when playback starts and stops, so it can mute the mic.
//
// The queue is bounded (MAX_QUEUED_CLIPS, MAX_QUEUED_SECONDS): past it the oldest waiting
// clip is skipped and reported through onSkip, rather than letting speech fall minutes behind.

import { pcm16ToFloat } from "./protocol.js";

export const MAX_QUEUED_CLIPS = 16;
export const MAX_QUEUED_SECONDS = 120;

export class Player {
  constructor(context, { onBusy = () => {}, onProgress = () => {}, onSkip = () => {} } = {}) {
    this.ctx = context;
    this.onBusy = onBusy;
    this.onProgress = onProgress;
    this.onSkip = onSkip;
    this.queue = [];
    this.current = null; // {source, startedAt, durationMs}
    this.playedMs = 0;
    this.enabled = true;
  }

  queuedSeconds() {
    return this.queue.reduce((s, b) => s + b.duration, 0);
  }

  // pcm: Uint8Array of little-endian PCM16 at sampleRateHz.
  enqueue(pcm, sampleRateHz) {
    if (!this.enabled || !pcm || pcm.byteLength < 2) return;
    const samples = pcm16ToFloat(pcm);
    const buffer = this.ctx.createBuffer(1, samples.length, sampleRateHz);
    buffer.copyToChannel(samples, 0);
    this.queue.push(buffer);
    while (this.queue.length > MAX_QUEUED_CLIPS || this.queuedSeconds() > MAX_QUEUED_SECONDS) {
      const skipped = this.queue.shift();
      this.onSkip(skipped.duration);
    }
    if (!this.current) this.next();
  }

  next() {
    const buffer = this.queue.shift();
    if (!buffer) {
      this.current = null;
      this.onBusy(false);
      return;
    }
    const source = this.ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(this.ctx.destination);
    const clip = { source, startedAt: this.ctx.currentTime, durationMs: buffer.duration * 1000 };
    source.onended = () => {
      if (this.current !== clip) return;
      this.playedMs += clip.durationMs;
      this.onProgress(this.playedMs);
      this.next();
    };
    this.current = clip;
    this.onBusy(true);
    source.start();
  }

  // Milliseconds played so far, including the part of the clip now playing.
  progressMs() {
    if (!this.current) return this.playedMs;
    const inClip = (this.ctx.currentTime - this.current.startedAt) * 1000;
    return this.playedMs + Math.max(0, Math.min(inClip, this.current.durationMs));
  }

  stop() {
    this.queue = [];
    const clip = this.current;
    this.current = null;
    if (clip) {
      try {
        clip.source.stop();
      } catch (_) { /* already stopped */ }
      this.playedMs += Math.min(clip.durationMs, (this.ctx.currentTime - clip.startedAt) * 1000);
    }
    this.onBusy(false);
  }
}
