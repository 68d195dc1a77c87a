// Caption rows in the DOM. Everything a peer supplies (transcripts, translations, names,
// error messages) goes in through textContent, never as HTML.
//
// Test hooks: own rows are `caption-pending` until answered, then `caption-final` with
// data-state = done | empty | error | missing and data-index = the caption row number;
// what other room members said is `caption-room`.

// Rows kept in the page; older ones are removed so a long session keeps a bounded document.
export const MAX_ROWS = 500;

const HINTS = {
  NO_AVAILABLE_NODE: "No node can serve this language pair right now.",
  RATE_LIMITED: "The scheduler asked the page to slow down.",
  LOCAL_QUEUE_FULL: "Too much speech is waiting to be sent.",
};

function span(cls, text) {
  const el = document.createElement("span");
  el.className = cls;
  el.textContent = text;
  return el;
}

export class CaptionList {
  constructor(list, partialEl) {
    this.list = list;
    this.partial = partialEl;
    this.rows = new Map();
  }

  pending(row) {
    const li = document.createElement("li");
    li.className = "pending";
    li.dataset.testid = "caption-pending";
    li.dataset.index = String(row);
    li.append(span("tr", "…"), span("info", `#${row} sending`));
    this.list.append(li);
    this.rows.set(row, li);
    this.scroll();
    return li;
  }

  setInfo(row, text) {
    const li = this.rows.get(row);
    if (li && li.classList.contains("pending")) li.querySelector(".info").textContent = text;
  }

  // message: translation_result | missing_result | error for this row.
  final(row, message) {
    const li = this.rows.get(row) || this.pending(row);
    li.replaceChildren();
    li.dataset.testid = "caption-final";
    let state = "done";
    if (message.type === "translation_result") {
      const empty = message.extra && message.extra.reason === "ASR_EMPTY";
      state = empty ? "empty" : "done";
      li.append(span("src", String(message.text_asr ?? "")),
        span("tr", empty ? "(nothing heard)" : String(message.text_translated ?? "")));
    } else if (message.type === "missing_result") {
      state = "missing";
      li.append(span("tr", `(no result: ${String(message.reason ?? "")})`));
    } else {
      state = "error";
      const code = String(message.code ?? "ERROR");
      li.append(span("tr", `${code}: ${String(message.message ?? "")}`));
      if (HINTS[code]) li.append(span("info", HINTS[code]));
    }
    li.className = state;
    li.dataset.state = state;
    li.append(span("info", `#${row}`));
    this.scroll();
    return li;
  }

  setLatency(row, latencyMs, node) {
    const li = this.rows.get(row);
    if (!li) return;
    li.dataset.latencyMs = latencyMs.toFixed(1);
    const info = li.querySelector(".info:last-child");
    if (info) info.textContent = `#${row} · ${Math.round(latencyMs)} ms${node ? ` · ${node}` : ""}`;
  }

  // What another room member said (a translation_result), or a room error.
  room(message) {
    const li = document.createElement("li");
    li.dataset.testid = "caption-room";
    if (message.type === "translation_result") {
      li.className = "room";
      const who = span("who", `${String(message.speaker_display_name ?? "someone")}:`);
      const src = span("src", String(message.text_asr ?? ""));
      src.prepend(who);
      li.append(src, span("tr", String(message.text_translated ?? "")),
        span("info", `room · into ${String(message.tgt_lang ?? "?")}`));
    } else {
      li.className = "room error";
      li.dataset.state = "error";
      const who = message.speaker_display_name ? `${String(message.speaker_display_name)}: ` : "";
      li.append(span("tr", `${who}${String(message.code ?? "ERROR")}: ${String(message.message ?? "")}`),
        span("info", "room"));
    }
    this.list.append(li);
    this.scroll();
  }

  // The live line: an `asr_partial`'s committed words (`.stable`) and the guess after them
  // (`.tail`), with the speaker's name for a room member; null clears it. Peer text is only
  // ever set as text, never parsed as HTML.
  showPartial(message, who = null) {
    this.partial.replaceChildren();
    if (!message) return;
    const text = String(message.text ?? "");
    let stable = String(message.stable_text ?? "");
    if (!text.startsWith(stable)) stable = "";
    if (who) this.partial.append(span("who", `${who}:`));
    this.partial.append(span("stable", stable), span("tail", text.slice(stable.length)), " …");
  }

  scroll() {
    while (this.list.childElementCount > MAX_ROWS) {
      const old = this.list.firstElementChild;
      old.remove();
      const row = Number(old.dataset.index);
      if (this.rows.get(row) === old) this.rows.delete(row);
    }
    const last = this.list.lastElementChild;
    if (last && last.scrollIntoView) last.scrollIntoView({ block: "nearest" });
  }
}
