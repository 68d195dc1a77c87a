// The page's session with the scheduler: numbering, flow control, resume, reconnect.
//
// Same rules as the terminal client (lingua_client/_connection.py): every utterance is kept
// until its final answer (translation_result, missing_result, or an error for its index);
// when the connection drops the page reconnects with backoff and resumes with its
// resume_token and the last index it received, re-sending what is unanswered (the scheduler
// does not run work in progress twice and replays answers it had). When the scheduler no
// longer knows the session (it restarted), the page opens a new session and sends every
// unanswered utterance again under new indexes, so nothing the user said is lost.
//
// Utterances are numbered twice: `row` is the caption row (stable for the page's life) and
// `index` is the utterance_index in the current scheduler session.
//
// Flow control: the page keeps at most `max_in_flight_utterances` (and
// `max_in_flight_bytes` of audio) sent and unanswered, as the ack states; the rest wait
// in order on the page. An utterance answered RATE_LIMITED is sent again (same index) after
// a backoff. The page's own queue is bounded: LOCAL_QUEUE_MAX_UTTERANCES utterances or
// LOCAL_QUEUE_MAX_BYTES of audio waiting; past that a cut is refused with a visible error.

import { CLIENT_VERSION, PROTOCOL_VERSION, decodeMessage, utteranceWire } from "./protocol.js";

export const LOCAL_QUEUE_MAX_UTTERANCES = 64;
export const LOCAL_QUEUE_MAX_BYTES = 16 * 1024 * 1024;
export const RECONNECT_MIN_S = 0.3;
export const RECONNECT_MAX_S = 10;
export const RATE_LIMIT_RETRY_MIN_S = 0.5;
export const RATE_LIMIT_RETRY_MAX_S = 8;
export const ACK_TIMEOUT_S = 10;
// After a reconnect the scheduler may be up before any node has registered again (a restart):
// for this long, NO_AVAILABLE_NODE for an utterance is retried under a new index instead of
// being shown as its answer.
export const NO_NODE_GRACE_S = 20;

function isRoomMessage(message, ownSession) {
  if (message.type === "room_error") return true;
  const speaker = message.speaker_session_id;
  if (speaker != null && speaker !== ownSession) return true;
  return message.type === "error" && message.room_code != null && speaker !== ownSession;
}

export class Session {
  // init: {src_lang, tgt_lang, pipeline?, features?, pairing_code?}
  // on(event): {kind: "status"|"answer"|"partial"|"room"|"notice"|"message"|"refused", ...}
  constructor(url, init, on, deps = {}) {
    this.url = url;
    this.init = init;
    this.on = on;
    this.WS = deps.WebSocket || globalThis.WebSocket;
    this.now = deps.now || (() => performance.now());
    this.random = deps.random || Math.random;
    this.setTimer = deps.setTimeout || ((f, ms) => setTimeout(f, ms));
    this.clearTimer = deps.clearTimeout || ((t) => clearTimeout(t));
    this.sessionId = null;
    this.resumeToken = null;
    this.binary = false;
    this.maxInFlight = null;
    this.maxInFlightBytes = null;
    this.items = new Map(); // row -> {row, pcm, manual, spokenAt, index, sent, retries, retryAt}
    this.indexToRow = new Map();
    this.answered = new Set(); // indexes answered in this scheduler session
    this.partialRevisions = new Map(); // index -> last partial revision shown (until answered)
    this.nextIndex = 0;
    this.nextRow = 0;
    this.ws = null;
    this.ready = false;
    this.closed = false;
    this.connects = 0;
    this.delayS = RECONNECT_MIN_S;
    this.timer = null;
    this.pumpTimer = null;
    this.ackTimer = null;
    this.room = null; // {code, display_name, preferred_lang} to rejoin after a new session
    this.reopenedAt = null; // when a reconnect (not the first connect) was acknowledged
  }

  start() {
    this.open();
  }

  close() {
    this.closed = true;
    for (const t of [this.timer, this.pumpTimer, this.ackTimer]) if (t) this.clearTimer(t);
    const ws = this.ws;
    if (ws && this.ready && this.sessionId) {
      try {
        ws.send(JSON.stringify({ type: "session_close", session_id: this.sessionId,
          reason: "page closed" }));
      } catch (_) { /* the socket is already closing: nothing to tell */ }
    }
    if (ws) ws.close();
    this.ws = null;
  }

  // --- sending ------------------------------------------------------------------------------

  // Queue one utterance (16 kHz PCM16 bytes); returns its caption row, or throws when the
  // page's own queue is full.
  sendUtterance(pcm, { manual = false, spokenAt = this.now() } = {}) {
    let waiting = 0;
    let waitingBytes = 0;
    for (const item of this.items.values()) {
      if (!item.sent) {
        waiting += 1;
        waitingBytes += item.pcm.byteLength;
      }
    }
    if (waiting >= LOCAL_QUEUE_MAX_UTTERANCES || waitingBytes + pcm.byteLength > LOCAL_QUEUE_MAX_BYTES) {
      const e = new Error(
        `not sent: ${waiting} utterances (${waitingBytes} bytes) already wait to be sent`);
      e.code = "LOCAL_QUEUE_FULL";
      throw e;
    }
    const row = this.nextRow++;
    this.items.set(row, { row, pcm, manual, spokenAt, index: null, sent: false, retries: 0,
      retryAt: 0 });
    this.emit({ kind: "queued", row });
    this.pump();
    return row;
  }

  // Any other client message (rooms). Remembered room membership is rejoined on a new session.
  sendControl(message) {
    if (message.type === "room_join") {
      this.room = { ...message };
    } else if (message.type === "room_leave") {
      this.room = null;
    }
    if (this.ws && this.ready) this.ws.send(JSON.stringify(message));
    else if (message.type !== "room_join") throw new Error("not connected to the scheduler");
  }

  get unansweredCount() {
    return this.items.size;
  }

  inFlight() {
    let n = 0;
    let bytes = 0;
    for (const item of this.items.values()) {
      if (item.sent) {
        n += 1;
        bytes += item.pcm.byteLength;
      }
    }
    return { n, bytes };
  }

  // Send waiting utterances in row order while the window allows.
  pump() {
    if (!this.ws || !this.ready || this.closed) return;
    let { n, bytes } = this.inFlight();
    const now = this.now();
    let nextRetry = null;
    for (const item of this.items.values()) {
      if (item.sent) continue;
      if (item.retryAt > now) {
        nextRetry = nextRetry === null ? item.retryAt : Math.min(nextRetry, item.retryAt);
        continue;
      }
      if (this.maxInFlight != null && n >= this.maxInFlight) break;
      if (this.maxInFlightBytes != null && n > 0 && bytes + item.pcm.byteLength > this.maxInFlightBytes) break;
      if (item.index === null) {
        item.index = this.nextIndex++;
        this.indexToRow.set(item.index, item.row);
      }
      const header = {
        type: "utterance",
        session_id: this.sessionId,
        utterance_index: item.index,
        manual_cut: item.manual,
        audio_format: "pcm16",
        sample_rate: 16000,
      };
      this.ws.send(utteranceWire(header, item.pcm, this.binary));
      item.sent = true;
      n += 1;
      bytes += item.pcm.byteLength;
      this.emit({ kind: "sent", row: item.row, index: item.index });
    }
    if (nextRetry !== null) {
      if (this.pumpTimer) this.clearTimer(this.pumpTimer);
      this.pumpTimer = this.setTimer(() => {
        this.pumpTimer = null;
        this.pump();
      }, Math.max(0, nextRetry - now));
    }
  }

  // --- connection ---------------------------------------------------------------------------

  open() {
    if (this.closed) return;
    this.ready = false;
    let ws;
    try {
      ws = new this.WS(this.url);
    } catch (err) {
      this.emit({ kind: "status", state: "unreachable", text: `cannot open ${this.url}: ${err.message}` });
      this.scheduleReconnect();
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      const init = {
        type: "session_init",
        client_version: CLIENT_VERSION,
        platform: "web",
        protocol_version: PROTOCOL_VERSION,
        binary_audio: true,
        ...this.init,
      };
      if (this.resumeToken) {
        init.resume_token = this.resumeToken;
        const last = this.contiguousAnswered();
        if (last !== null) init.last_received_index = last;
      }
      ws.send(JSON.stringify(init));
      this.ackTimer = this.setTimer(() => ws.close(), ACK_TIMEOUT_S * 1000);
    };
    ws.onmessage = (event) => {
      if (this.ws !== ws) return;
      let decoded;
      try {
        decoded = decodeMessage(event.data);
      } catch (err) {
        this.emit({ kind: "notice", text: `unreadable message from the scheduler: ${err.message}` });
        return;
      }
      if (this.ready) this.dispatch(decoded.message, decoded.audio);
      else this.handshake(decoded.message);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      if (this.ackTimer) this.clearTimer(this.ackTimer);
      this.ws = null;
      this.ready = false;
      for (const item of this.items.values()) item.sent = false;
      if (this.closed) return;
      this.emit({
        kind: "status",
        state: opened ? "reconnecting" : "unreachable",
        text: opened ? "connection lost; reconnecting" : `scheduler unreachable at ${this.url}; retrying`,
      });
      this.scheduleReconnect();
    };
  }

  scheduleReconnect() {
    if (this.closed) return;
    const delay = this.delayS * (0.5 + this.random() / 2);
    this.delayS = Math.min(this.delayS * 2, RECONNECT_MAX_S);
    this.timer = this.setTimer(() => {
      this.timer = null;
      this.open();
    }, delay * 1000);
  }

  handshake(message) {
    if (this.ackTimer) this.clearTimer(this.ackTimer);
    if (message.type === "error") {
      if (this.resumeToken && message.code === "INVALID_SESSION") {
        // The scheduler no longer knows this session (restart, or past the resume grace):
        // open a new one and send what is unanswered again under new indexes.
        this.resumeToken = null;
        this.ws.onclose = null;
        this.ws.close();
        this.ws = null;
        this.open();
        return;
      }
      this.closed = true;
      this.emit({ kind: "refused", code: message.code, text: String(message.message ?? "") });
      this.ws.close();
      return;
    }
    if (message.type !== "session_init_ack") {
      this.emit({ kind: "notice", text: `expected session_init_ack, got ${String(message.type)}` });
      this.ws.close();
      return;
    }
    const resumed = Boolean(message.resumed) && message.session_id === this.sessionId;
    if (!resumed) this.renumber();
    this.sessionId = message.session_id;
    this.resumeToken = message.resume_token || null;
    this.binary = message.binary_audio === true;
    this.maxInFlight = message.max_in_flight_utterances ?? null;
    this.maxInFlightBytes = message.max_in_flight_bytes ?? null;
    this.ready = true;
    this.connects += 1;
    this.reopenedAt = this.connects > 1 ? this.now() : null;
    this.delayS = RECONNECT_MIN_S;
    this.emit({ kind: "status", state: "connected", text: "connected", ack: message, resumed });
    if (!resumed && this.room && this.connects > 1) {
      this.ws.send(JSON.stringify(this.room)); // a new session: join the room again
    }
    // Resumed: answers up to last_delivered_index are on their way; send the rest again.
    const onTheWay = resumed && Number.isInteger(message.last_delivered_index)
      ? message.last_delivered_index : -1;
    for (const item of this.items.values()) {
      item.sent = item.index !== null && item.index <= onTheWay;
    }
    this.pump();
  }

  // A new scheduler session: indexes start again at 0, in caption-row order.
  renumber() {
    this.indexToRow.clear();
    this.answered.clear();
    this.partialRevisions.clear(); // revisions count per scheduler session
    this.nextIndex = 0;
    for (const item of this.items.values()) {
      item.index = null;
      item.sent = false;
      item.retryAt = 0;
    }
  }

  contiguousAnswered() {
    let last = null;
    let i = 0;
    while (this.answered.has(i)) last = i++;
    return last;
  }

  dispatch(message, audio) {
    if (isRoomMessage(message, this.sessionId)) {
      // a member's words while they talk: the live line, never a row of its own
      const kind = message.type === "asr_partial" ? "room_partial" : "room";
      this.emit({ kind, message, audio });
      return;
    }
    const index = message.utterance_index;
    const hasIndex = Number.isInteger(index) && this.indexToRow.has(index);
    switch (message.type) {
      case "translation_result":
      case "missing_result":
        if (hasIndex) this.answer(index, message, audio);
        return;
      case "asr_partial":
        if (hasIndex && !this.answered.has(index)) {
          // a revision not above the last one shown is stale: it never overwrites a newer one
          const revision = Number(message.revision ?? 0);
          const last = this.partialRevisions.get(index);
          if (last !== undefined && revision <= last) return;
          this.partialRevisions.set(index, revision);
          this.emit({ kind: "partial", row: this.indexToRow.get(index), message });
        }
        return;
      case "error":
        if (hasIndex) {
          if (message.code === "RATE_LIMITED") this.retryLater(index, false);
          else if (message.code === "NO_AVAILABLE_NODE" && this.inNoNodeGrace()) {
            this.retryLater(index, true);
          } else this.answer(index, message, null);
        } else {
          this.emit({ kind: "notice", code: message.code, text: String(message.message ?? ""), message });
        }
        return;
      case "server_heartbeat":
        return;
      default:
        this.emit({ kind: "message", message, audio });
    }
  }

  answer(index, message, audio) {
    if (this.answered.has(index)) return; // a replay of something already shown
    this.answered.add(index);
    this.partialRevisions.delete(index);
    const row = this.indexToRow.get(index);
    const item = this.items.get(row);
    this.items.delete(row);
    const spokenAt = item ? item.spokenAt : null;
    this.emit({ kind: "answer", row, index, message, audio, spokenAt });
    this.pump();
  }

  inNoNodeGrace() {
    return this.reopenedAt !== null && this.now() - this.reopenedAt < NO_NODE_GRACE_S * 1000;
  }

  // Send this utterance again after a backoff: under the same index when the scheduler did
  // not accept it (RATE_LIMITED), under a new one when that index already has its answer.
  retryLater(index, newIndex) {
    const item = this.items.get(this.indexToRow.get(index));
    if (!item || this.answered.has(index)) return;
    if (newIndex) {
      this.answered.add(index);
      item.index = null;
    }
    item.sent = false;
    item.retries += 1;
    const backoffS = Math.min(RATE_LIMIT_RETRY_MIN_S * 2 ** (item.retries - 1), RATE_LIMIT_RETRY_MAX_S);
    item.retryAt = this.now() + backoffS * 1000 * (0.5 + this.random() / 2);
    this.emit({ kind: "rate_limited", row: item.row, index, retryInS: backoffS });
    this.pump();
  }

  emit(event) {
    try {
      this.on(event);
    } catch (err) {
      console.error("lingua: event handler failed", event.kind, err);
    }
  }
}
