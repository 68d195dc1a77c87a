// AudioWorklet processor: the microphone's first channel, resampled from the context's rate
// (`sampleRate`, usually 48 kHz) to 16 kHz and posted to the page in 512-sample blocks.
//
// Resampling: a moving average over one input period of the output rate (a box low-pass that
// keeps aliasing out of the speech band well enough for ASR), then linear interpolation at
// the fractional positions. It runs on the audio thread and allocates one block per post.

const TARGET_RATE = 16000;
const BLOCK = 512;

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / TARGET_RATE; // input samples per output sample
    this.width = Math.max(1, Math.round(this.step));
    this.history = new Float32Array(this.width); // last `width` inputs, for the average
    this.histPos = 0;
    this.histSum = 0;
    this.prev = 0; // last averaged input sample
    this.pos = 0; // position of the next output sample, in input samples from `prev`
    this.out = new Float32Array(BLOCK);
    this.outLen = 0;
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0) return true;
    const ch = input[0];
    for (let i = 0; i < ch.length; i++) {
      this.histSum += ch[i] - this.history[this.histPos];
      this.history[this.histPos] = ch[i];
      this.histPos = (this.histPos + 1) % this.width;
      const cur = this.histSum / this.width;
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
