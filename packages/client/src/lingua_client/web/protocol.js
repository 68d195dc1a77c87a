// The wire format the page speaks: JSON text messages and binary audio frames, exactly as
// lingua_protocol defines them (docs/protocol.md). Plain functions, no I/O.

export const PROTOCOL_VERSION = "0.2";
export const CLIENT_VERSION = "lingua-web/0.1.0";

// Which member of a message carries its audio (lingua_protocol's AUDIO_FIELD per type).
const AUDIO_FIELD = {
  utterance: "audio",
  audio_chunk: "payload",
  translation_result: "tts_audio",
};

// A binary frame: uint32 big-endian N, N bytes of UTF-8 JSON (the message without its audio),
// then the raw audio bytes. Headers over 1 MiB are refused, as lingua_protocol._frames does.
export const MAX_HEADER_BYTES = 1 << 20;

export function encodeFrame(message, audioBytes) {
  const header = new TextEncoder().encode(JSON.stringify(message));
  const out = new Uint8Array(4 + header.length + audioBytes.byteLength);
  new DataView(out.buffer).setUint32(0, header.length, false);
  out.set(header, 4);
  out.set(new Uint8Array(audioBytes.buffer, audioBytes.byteOffset, audioBytes.byteLength),
    4 + header.length);
  return out;
}

// Returns {message, audio} where audio is a Uint8Array (or null); throws Error on bad input.
export function decodeMessage(data) {
  if (typeof data === "string") {
    const message = JSON.parse(data);
    if (message === null || typeof message !== "object" || Array.isArray(message)) {
      throw new Error("message is not a JSON object");
    }
    const field = AUDIO_FIELD[message.type];
    let audio = null;
    if (field && typeof message[field] === "string") {
      audio = base64ToBytes(message[field]);
      delete message[field];
    }
    return { message, audio };
  }
  const bytes = new Uint8Array(data);
  if (bytes.length < 4) throw new Error("binary frame shorter than its header");
  const n = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, false);
  if (n > MAX_HEADER_BYTES || 4 + n > bytes.length) {
    throw new Error("binary frame header length out of range");
  }
  const message = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + n)));
  if (message === null || typeof message !== "object" || Array.isArray(message)) {
    throw new Error("frame header must be a JSON object");
  }
  return { message, audio: bytes.slice(4 + n) };
}

export function bytesToBase64(bytes) {
  let s = "";
  const step = 0x8000;
  for (let i = 0; i < bytes.length; i += step) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + step));
  }
  return btoa(s);
}

export function base64ToBytes(text) {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

// Float samples in [-1, 1] -> little-endian PCM16 bytes.
export function floatToPcm16(samples) {
  const out = new Uint8Array(samples.length * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < samples.length; i++) {
    const v = Math.max(-1, Math.min(1, samples[i]));
    view.setInt16(i * 2, v < 0 ? v * 0x8000 : v * 0x7fff, true);
  }
  return out;
}

// Little-endian PCM16 bytes -> Float32Array.
export function pcm16ToFloat(bytes) {
  const n = Math.floor(bytes.byteLength / 2);
  const view = new DataView(bytes.buffer, bytes.byteOffset, n * 2);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = view.getInt16(i * 2, true) / 0x8000;
  return out;
}

// The message that carries this utterance: a binary frame when the scheduler accepted
// binary_audio, else JSON text with base64 audio (the audio member written last).
export function utteranceWire(header, pcm, binary) {
  if (binary) return encodeFrame(header, pcm);
  return JSON.stringify({ ...header, audio: bytesToBase64(pcm) });
}
