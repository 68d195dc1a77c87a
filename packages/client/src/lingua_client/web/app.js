// The page: wires the microphone, the cutter, the session, playback and the caption list to
// the controls. Decisions live in the modules it imports; this file only moves events.

import { Microphone, MicError } from "./capture.js";
import { CaptionList } from "./captions.js";
import { EnergyVad, UtteranceCutter } from "./cutter.js";
import { Player } from "./playback.js";
import { floatToPcm16 } from "./protocol.js";
import { Session } from "./session.js";
import {
  STORAGE_KEY, fetchLanguages, languageLabel, pairServed, queryPresets, schedulerUrl,
} from "./settings.js";

const $ = (id) => document.getElementById(id);
const LANGUAGE_REFRESH_MS = 20000;

const ui = {
  status: $("status"), src: $("src"), tgt: $("tgt"), speech: $("speech"), duplex: $("duplex"),
  pairNote: $("pair-note"), start: $("start"), stop: $("stop"), cut: $("cut"), vad: $("vad"),
  level: $("level"), name: $("name"), roomCreate: $("room-create"), roomJoin: $("room-join"),
  roomJoinCode: $("room-join-code"), roomCode: $("room-code"), roomLink: $("room-link"),
  members: $("members"), scheduler: $("scheduler"), saveSettings: $("save-settings"),
  latency: $("latency"), node: $("node"), played: $("played"),
};

const presets = queryPresets(location.search);
const captions = new CaptionList($("captions"), $("partial"));
const state = {
  url: null, langs: null, ctx: null, mic: null, player: null, cutter: null, session: null,
  running: false, roomCode: null, joinedPreset: false, meterPending: false, unsent: 0,
};

function setStatus(text, bad = false) {
  ui.status.textContent = text;
  ui.status.classList.toggle("bad", bad);
  ui.status.dataset.state = bad ? "error" : "ok";
}

function fillSelect(select, codes, wanted) {
  const previous = select.value || wanted;
  select.replaceChildren();
  for (const code of codes) {
    const option = document.createElement("option");
    option.value = code;
    option.textContent = languageLabel(code);
    select.append(option);
  }
  if (previous && !codes.includes(previous)) {
    const option = document.createElement("option"); // keep a preset the cluster lacks now
    option.value = previous;
    option.textContent = `${languageLabel(previous)} — not served now`;
    select.append(option);
  }
  if (previous) select.value = previous;
}

async function refreshLanguages() {
  try {
    state.langs = await fetchLanguages(state.url);
  } catch (err) {
    state.langs = null;
    if (ui.src.options.length === 0) fillSelect(ui.src, [], presets.src || "en");
    if (ui.tgt.options.length === 0) fillSelect(ui.tgt, [], presets.tgt || "en");
    if (!state.running) setStatus(`Scheduler unreachable at ${state.url} (${err.message}).`, true);
    return;
  }
  const langs = state.langs;
  fillSelect(ui.src, langs.src_langs || [], presets.src || "en");
  fillSelect(ui.tgt, langs.tgt_langs || [], presets.tgt || "en");
  presets.src = presets.tgt = null;
  if (!state.running) {
    setStatus(langs.ready_nodes > 0
      ? `ready: ${langs.ready_nodes} node(s) online`
      : "No translation node is online right now.", langs.ready_nodes === 0);
  }
  checkPair();
}

function checkPair() {
  const src = ui.src.value;
  const tgt = ui.tgt.value;
  const langs = state.langs;
  let note = "";
  if (langs && src && tgt && !pairServed(langs, src, tgt)) {
    note = `No node serves ${languageLabel(src)} → ${languageLabel(tgt)} right now.`;
  }
  const speakable = !langs || (langs.speech_langs || []).includes(tgt);
  ui.speech.disabled = !speakable;
  if (!speakable && tgt) note += `${note ? " " : ""}No voice for ${languageLabel(tgt)}: text only.`;
  ui.pairNote.textContent = note;
  ui.pairNote.hidden = !note;
  ui.pairNote.classList.toggle("bad", note !== "");
}

// --- audio in ------------------------------------------------------------------------------

function onBlock(block) {
  const cutter = state.cutter;
  if (!cutter || !state.running) return;
  for (const cut of cutter.feed(block)) sendCut(cut);
  if (!state.meterPending) {
    state.meterPending = true;
    requestAnimationFrame(() => {
      state.meterPending = false;
      if (!state.cutter) return;
      ui.level.style.width = `${Math.min(100, Math.round(Math.sqrt(state.cutter.level) * 200))}%`;
      if (!state.mic || !state.mic.muted) {
        ui.vad.textContent = state.cutter.state;
        ui.vad.className = `vad ${state.cutter.state}`;
      }
    });
  }
}

function sendCut(cut) {
  const spokenAt = performance.now(); // the cut: the utterance is complete from here
  const pcm = floatToPcm16(cut.audio);
  try {
    state.session.sendUtterance(pcm, { manual: cut.manual, spokenAt });
  } catch (err) {
    // never sent, so it has no row number from the session: a row of its own
    captions.final(`not-sent-${++state.unsent}`, {
      type: "error", code: err.code || "ERROR", message: err.message,
    });
  }
}

function cutNow() {
  if (!state.running || !state.cutter) return;
  const cut = state.cutter.cutNow();
  if (cut) sendCut(cut);
}

function setMuted(muted) {
  if (!state.mic || (muted && ui.duplex.checked)) return; // unmuting always goes through
  if (muted && !state.mic.muted) {
    const cut = state.cutter.cutNow(); // what was said before playback began goes now
    if (cut) sendCut(cut);
    state.cutter.reset();
  }
  state.mic.muted = muted;
  ui.vad.textContent = muted ? "muted (playing)" : state.cutter.state;
  ui.vad.className = `vad ${muted ? "muted" : state.cutter.state}`;
}

// --- session events ------------------------------------------------------------------------

function onSession(event) {
  switch (event.kind) {
    case "status":
      if (event.state === "connected") {
        setStatus(event.resumed ? "connected (resumed)" : "connected");
        ui.roomCreate.disabled = ui.roomJoin.disabled = false;
        if (presets.room && !state.joinedPreset) {
          state.joinedPreset = true;
          joinRoom(presets.room);
        }
      } else {
        setStatus(event.text, true);
        ui.roomCreate.disabled = ui.roomJoin.disabled = true;
      }
      return;
    case "refused":
      setStatus(`The scheduler refused the session: ${event.code}: ${event.text}`, true);
      stop();
      return;
    case "queued": // its row shows before it is sent, which may be at once
      captions.pending(event.row);
      return;
    case "sent":
      captions.setInfo(event.row, `#${event.row} waiting for the answer`);
      return;
    case "rate_limited":
      captions.setInfo(event.row, `#${event.row} the scheduler is busy; retrying in ${event.retryInS} s`);
      return;
    case "partial":
      captions.showPartial(event.message);
      return;
    case "room_partial":
      captions.showPartial(event.message, String(event.message.speaker_display_name ?? "someone"));
      return;
    case "answer":
      onAnswer(event);
      return;
    case "room":
      if (event.message.type === "translation_result") captions.showPartial(null);
      captions.room(event.message);
      if (event.message.type === "translation_result") playSpeech(event.message, event.audio);
      return;
    case "notice":
      if (event.code === "ROOM_NOT_FOUND" && state.session) {
        state.session.room = null; // e.g. the scheduler restarted and the room went with it
        showRoom(null);
      }
      setStatus(event.code ? `${event.code}: ${event.text}` : event.text, true);
      return;
    case "message":
      onRoomMessage(event.message);
      return;
    default:
  }
}

function onAnswer(event) {
  const { row, message } = event;
  captions.showPartial(null);
  captions.final(row, message);
  if (event.spokenAt !== null) {
    // end of speech (the cut) -> the caption in the document, measured after it is there
    const latencyMs = performance.now() - event.spokenAt;
    captions.setLatency(row, latencyMs, message.node_id ? String(message.node_id) : null);
    ui.latency.textContent = `${Math.round(latencyMs)} ms`;
  }
  if (message.node_id) ui.node.textContent = String(message.node_id);
  if (message.type === "translation_result") playSpeech(message, event.audio);
}

function playSpeech(message, audio) {
  if (!state.player || !ui.speech.checked || !audio || audio.byteLength === 0) return;
  if (message.tts_format && message.tts_format !== "pcm16") return;
  state.player.enqueue(audio, Number(message.tts_sample_rate) || 22050);
}

function onRoomMessage(message) {
  if (message.type === "room_create_ack") {
    showRoom(String(message.room_code));
    // remembered, so that a new session (after a scheduler restart) joins it again
    state.session.room = { type: "room_join", room_code: String(message.room_code), ...roomIdentity() };
  } else if (message.type === "room_members") {
    showRoom(String(message.room_code));
    ui.members.replaceChildren();
    for (const m of Array.isArray(message.members) ? message.members.slice(0, 100) : []) {
      const li = document.createElement("li");
      li.textContent = `${String(m.display_name ?? "anonymous")} (${String(m.preferred_lang ?? "?")})`;
      ui.members.append(li);
    }
  } else if (message.type === "room_expired") {
    if (state.session) state.session.room = null;
    setStatus(`Room ${String(message.room_code)} expired.`, true);
    showRoom(null);
  }
}

function showRoom(code) {
  state.roomCode = code;
  ui.roomCode.textContent = code ? `· ${code}` : "";
  if (!code) {
    ui.roomLink.textContent = "";
    ui.members.replaceChildren();
    return;
  }
  const link = new URL(location.href);
  link.search = "";
  link.searchParams.set("room", code);
  if (new URLSearchParams(location.search).get("scheduler")) link.searchParams.set("scheduler", state.url);
  ui.roomLink.href = link.href;
  ui.roomLink.textContent = link.href;
  $("room-panel").open = true;
}

function roomIdentity() {
  const name = ui.name.value.trim().slice(0, 40) || "guest";
  return { display_name: name, preferred_lang: ui.tgt.value };
}

function joinRoom(code) {
  if (!/^[0-9]{6}$/.test(code)) {
    setStatus("A room code is six digits.", true);
    return;
  }
  state.session.sendControl({ type: "room_join", room_code: code, ...roomIdentity() });
}

// --- start / stop --------------------------------------------------------------------------

async function start() {
  if (state.running) return;
  ui.start.disabled = true;
  setStatus("starting the microphone…");
  const ctx = new AudioContext();
  try {
    await ctx.resume();
    const mic = new Microphone(ctx, onBlock);
    await mic.start();
    state.ctx = ctx;
    state.mic = mic;
  } catch (err) {
    ctx.close();
    ui.start.disabled = false;
    setStatus(err instanceof MicError ? err.message : `Could not start: ${err.message}`, true);
    ui.status.dataset.mic = err instanceof MicError ? err.code : "failed";
    return;
  }
  const vad = new EnergyVad();
  state.cutter = new UtteranceCutter((w) => vad.probability(w));
  state.player = new Player(state.ctx, {
    onBusy: setMuted,
    onProgress: (ms) => { ui.played.textContent = String(Math.round(ms)); },
  });
  const init = {
    src_lang: ui.src.value || "en",
    tgt_lang: ui.tgt.value || "en",
    pipeline: { use_asr: true, use_nmt: true, use_tts: ui.speech.checked && !ui.speech.disabled },
  };
  state.session = new Session(state.url, init, onSession);
  state.running = true;
  for (const el of [ui.src, ui.tgt, ui.speech, ui.scheduler]) el.disabled = true;
  ui.stop.disabled = ui.cut.disabled = false;
  setStatus("connecting…");
  state.session.start();
}

function stop() {
  state.running = false;
  if (state.mic) state.mic.stop();
  if (state.session) state.session.close();
  if (state.player) state.player.stop();
  if (state.ctx) state.ctx.close();
  Object.assign(state, { mic: null, session: null, player: null, ctx: null, cutter: null });
  for (const el of [ui.src, ui.tgt, ui.scheduler]) el.disabled = false;
  ui.start.disabled = false;
  ui.stop.disabled = ui.cut.disabled = ui.roomCreate.disabled = ui.roomJoin.disabled = true;
  ui.vad.textContent = "idle";
  ui.vad.className = "vad";
  checkPair();
  if (!ui.status.classList.contains("bad")) setStatus("stopped");
}

// --- wiring --------------------------------------------------------------------------------

function wire() {
  ui.start.addEventListener("click", start);
  ui.stop.addEventListener("click", stop);
  ui.cut.addEventListener("click", cutNow);
  ui.src.addEventListener("change", checkPair);
  ui.tgt.addEventListener("change", checkPair);
  ui.roomCreate.addEventListener("click", () => {
    state.session.sendControl({ type: "room_create", ...roomIdentity() });
  });
  ui.roomJoin.addEventListener("click", () => joinRoom(ui.roomJoinCode.value.trim()));
  ui.saveSettings.addEventListener("click", () => {
    const value = ui.scheduler.value.trim();
    try {
      if (value) new URL(value);
      if (value) localStorage.setItem(STORAGE_KEY, value);
      else localStorage.removeItem(STORAGE_KEY);
    } catch (_) {
      setStatus("The scheduler address must be a ws:// or wss:// URL.", true);
      return;
    }
    location.reload();
  });
  document.addEventListener("keydown", (event) => {
    if (event.code !== "Space" && event.key !== " ") return;
    const tag = event.target && event.target.tagName;
    if (["INPUT", "SELECT", "TEXTAREA", "BUTTON", "SUMMARY", "A"].includes(tag)) return;
    event.preventDefault();
    cutNow();
  });
  setInterval(() => {
    if (state.player) ui.played.textContent = String(Math.round(state.player.progressMs()));
  }, 250);
}

async function main() {
  wire();
  if (presets.name) ui.name.value = presets.name;
  if (presets.room) ui.roomJoinCode.value = presets.room;
  if (presets.room || presets.name) $("room-panel").open = true;
  ui.speech.checked = presets.tts;
  ui.duplex.checked = presets.duplex;
  state.url = await schedulerUrl(presets);
  ui.scheduler.value = state.url;
  await refreshLanguages();
  setInterval(() => { if (!state.running) refreshLanguages(); }, LANGUAGE_REFRESH_MS);
}

main();
