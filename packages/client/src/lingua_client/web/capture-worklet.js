// AudioWorklet processor: the microphone's first channel, resampled from the context's rate
// (`sampleRate`, usually 48 kHz) to 16 kHz and posted to the page in 512-sample blocks.
//
// Resampling: a 63-tap Blackman-windowed sinc low-pass at 7.2 kHz (0.45 of the output rate,
// so nothing above the 16 kHz Nyquist folds into the speech band), then linear interpolation
// at the fractional output positions; the filtered signal is oversampled at least 2.7x at
// 44.1 kHz and up, where linear interpolation adds little error. About 3 M multiply-adds a
// second at 48 kHz. It runs on the audio thread and allocates one block per post.

const TARGET_RATE = 16000;
const BLOCK = 512;
const TAPS = 63;
const CUTOFF_HZ = 0.45 * TARGET_RATE;

function lowPass(rate) {
  const fc = Math.min(CUTOFF_HZ / rate, 0.5);
  const h = new Float32Array(TAPS);
  const mid = (TAPS - 1) / 2;
  let sum = 0;
  for (let i = 0; i < TAPS; i++) {
    const n = i - mid;
    const sinc = n === 0 ? 2 * fc : Math.sin(2 * Math.PI * fc * n) / (Math.PI * n);
    const w = 0.42 - 0.5 * Math.cos((2 * Math.PI * i) / (TAPS - 1))
      + 0.08 * Math.cos((4 * Math.PI * i) / (TAPS - 1));
    h[i] = sinc * w;
    sum += h[i];
  }
  for (let i = 0; i < TAPS; i++) h[i] /= sum; // unity gain at 0 Hz
  return h;
}

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / TARGET_RATE; // input samples per output sample
    this.taps = lowPass(sampleRate);
    this.history = new Float32Array(TAPS * 2); // doubled ring: a window is always contiguous
    this.histPos = 0;
    this.prev = 0; // last filtered input sample
    this.pos = 0; // position of the next output sample, in input samples from `prev`
    this.out = new Float32Array(BLOCK);
    this.outLen = 0;
  }

  filter(x) {
    const hist = this.history;
    hist[this.histPos] = x;
    hist[this.histPos + TAPS] = x;
    this.histPos = (this.histPos + 1) % TAPS;
    const taps = this.taps;
    let acc = 0;
    for (let k = 0; k < TAPS; k++) acc += taps[k] * hist[this.histPos + k];
    return acc;
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0) return true;
    const ch = input[0];
    for (let i = 0; i < ch.length; i++) {
      const cur = this.filter(ch[i]);
      // output samples that fall between prev (at 0) and cur (at 1)
      while (this.pos <= 1) {
        this.out[this.outLen++] = this.prev + (cur - this.prev) * this.pos;
        this.pos += this.step;
        if (this.outLen === BLOCK) {
          this.port.postMessage(this.out, [this.out.buffer]);
          this.out = new Float32Array(BLOCK);
          this.outLen = 0;
        }
      }
      this.pos -= 1;
      this.prev = cur;
    }
    return true;
  }
}

registerProcessor("lingua-capture", CaptureProcessor);
