// The microphone: getUserMedia -> AudioWorklet (capture-worklet.js) -> 16 kHz float blocks
// handed to onBlock. Errors become a MicError with a plain sentence for the page.

export class MicError extends Error {
  constructor(code, text) {
    super(text);
    this.code = code; // "denied" | "no_device" | "insecure" | "failed"
  }
}

export function micErrorFrom(err) {
  const name = err && err.name;
  if (name === "NotAllowedError" || name === "SecurityError") {
    return new MicError("denied",
      "Microphone access was denied. Allow the microphone for this page in the browser's site settings, then press Start again.");
  }
  if (name === "NotFoundError" || name === "OverconstrainedError" || name === "DevicesNotFoundError") {
    return new MicError("no_device", "No microphone was found. Connect one and press Start again.");
  }
  if (name === "NotReadableError") {
    return new MicError("no_device", "The microphone is in use by another application or cannot be read.");
  }
  return new MicError("failed", `The microphone could not be started: ${err && err.message ? err.message : err}`);
}

export class Microphone {
  constructor(context, onBlock) {
    this.ctx = context;
    this.onBlock = onBlock;
    this.stream = null;
    this.node = null;
    this.source = null;
    this.muted = false;
  }

  async start() {
    if (!globalThis.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new MicError("insecure",
        "This page needs a secure address (https:// or http://localhost) to use the microphone.");
    }
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
        video: false,
      });
    } catch (err) {
      throw micErrorFrom(err);
    }
    await this.ctx.audioWorklet.addModule(new URL("./capture-worklet.js", import.meta.url));
    this.source = this.ctx.createMediaStreamSource(this.stream);
    this.node = new AudioWorkletNode(this.ctx, "lingua-capture", { numberOfInputs: 1, numberOfOutputs: 0 });
    this.node.port.onmessage = (event) => {
      if (!this.muted) this.onBlock(event.data);
    };
    this.source.connect(this.node);
  }

  stop() {
    if (this.source) this.source.disconnect();
    if (this.node) this.node.port.onmessage = null;
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
    this.stream = this.node = this.source = null;
  }
}
