// Where the scheduler is and what the cluster can serve. The scheduler URL comes from, in
// order: the `?scheduler=` query parameter, the page's saved setting (localStorage), the
// `config.json` next to the page (`hatch run client --web` serves one), and last
// ws(s)://<this host>:5010/ws/session.

export const STORAGE_KEY = "lingua.scheduler";

export function queryPresets(search) {
  const q = new URLSearchParams(search);
  const get = (k) => (q.get(k) || "").slice(0, 200) || null;
  return {
    scheduler: get("scheduler"),
    src: get("src"),
    tgt: get("tgt"),
    room: get("room"),
    name: get("name"),
    tts: q.get("tts") !== "0",
    duplex: q.get("duplex") === "1",
  };
}

export async function schedulerUrl(presets, loc = location) {
  if (presets.scheduler) return presets.scheduler;
  try {
    const saved = localStorage.getItem(STORAGE_KEY);
    if (saved) return saved;
  } catch (_) { /* storage blocked: fall through to the defaults */ }
  try {
    const response = await fetch(new URL("config.json", loc.href), { cache: "no-store" });
    if (response.ok) {
      const config = await response.json();
      if (typeof config.scheduler === "string" && config.scheduler) return config.scheduler;
    }
  } catch (_) { /* no config next to the page: use the default */ }
  const ws = loc.protocol === "https:" ? "wss:" : "ws:";
  return `${ws}//${loc.hostname || "127.0.0.1"}:5010/ws/session`;
}

// ws://host:port/ws/session -> http://host:port (wss -> https).
export function httpBase(wsUrl) {
  const u = new URL(wsUrl);
  u.protocol = u.protocol === "wss:" ? "https:" : "http:";
  return u.origin;
}

export async function fetchLanguages(wsUrl, timeoutMs = 5000) {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeoutMs);
  try {
    const response = await fetch(`${httpBase(wsUrl)}/api/v1/languages`, { signal: ctrl.signal });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return await response.json();
  } finally {
    clearTimeout(timer);
  }
}

// Whether some ready node serves src -> tgt ("*" = speech translation from any language the
// node transcribes).
export function pairServed(langs, src, tgt) {
  if (!langs || !Array.isArray(langs.pairs)) return false;
  return langs.pairs.some((p) => p.tgt === tgt && (p.src === src || (p.src === "*" && src !== tgt)));
}

const names = typeof Intl !== "undefined" && Intl.DisplayNames
  ? new Intl.DisplayNames([navigator.language || "en"], { type: "language" })
  : null;

export function languageLabel(code) {
  if (code === "auto") return "detect automatically";
  try {
    const name = names ? names.of(code) : null;
    return name && name !== code ? `${name} (${code})` : code;
  } catch (_) {
    return code;
  }
}
