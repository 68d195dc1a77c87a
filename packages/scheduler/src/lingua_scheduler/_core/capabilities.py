"""What a node can run, derived once from its register (and capability updates).

Rules (also in docs/scheduler.md):
- ASR languages: `language_capabilities.asr_languages`, else the languages of installed ASR
  models, else the sources of `supported_language_pairs`. "auto" among them means the node can
  detect the spoken language.
- Translation: text NMT pairs (`supported_language_pairs`, `nmt_pairs`, installed NMT models)
  and speech translation into each of `speech_translation_targets` from any ASR language.
- TTS languages: `tts_languages`, else installed TTS models' languages, else the pairs' targets.
- A stage counts only if `capability_by_type` says it is ready (v0.1 nodes without
  `capability_by_type` count a stage as ready when a model of that kind is installed).
- A node is *ready* when it has at least one complete pipeline: ASR for some language and a
  translation path out of it. TTS is not required, since jobs may ask for text only.
- Optional features (`features_supported`: emotion, voice style, speech rate) never make a
  node unable to run a job: protocol v0.1 §2.3 says an absent module leaves its result field
  null. Selection prefers nodes that have every requested feature (`has_features`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lingua_protocol import NodeHeartbeat, NodeRegister


@dataclass(slots=True)
class Capabilities:
    asr_ready: bool = False
    nmt_ready: bool = False
    tts_ready: bool = False
    asr_languages: set[str] = field(default_factory=set)
    nmt_pairs: set[tuple[str, str]] = field(default_factory=set)
    speech_translation_targets: set[str] = field(default_factory=set)
    tts_languages: set[str] = field(default_factory=set)
    features: set[str] = field(default_factory=set)
    not_ready_types: set[str] = field(default_factory=set)
    _pipelines: list[str] | None = None  # worked out once; capabilities are never mutated
    _summary: str | None = None

    @property
    def auto_detect(self) -> bool:
        return "auto" in self.asr_languages

    def can_transcribe(self, src: str) -> bool:
        return self.asr_ready and (
            src in self.asr_languages or (src == "auto" and self.auto_detect)
        )

    def can_translate(self, src: str, tgt: str) -> bool:
        if src == tgt:
            return True
        if tgt in self.speech_translation_targets and self.asr_ready:
            return True
        if not self.nmt_ready:
            return False
        if src == "auto":
            return any(t == tgt for _, t in self.nmt_pairs)
        return (src, tgt) in self.nmt_pairs

    def can_speak(self, tgt: str) -> bool:
        return self.tts_ready and tgt in self.tts_languages

    def can_run(
        self,
        src: str,
        tgt: str,
        use_tts: bool,
        use_nmt: bool = True,
    ) -> bool:
        """Whether the node has every stage the job needs. Requested optional features are
        not a condition (see `has_features`): a node without one serves the job and leaves
        that result field null."""
        if not self.can_transcribe(src):
            return False
        if use_nmt and not self.can_translate(src, tgt):
            return False
        return not use_tts or self.can_speak(tgt)

    def has_features(self, features: frozenset[str]) -> bool:
        """Whether the node computes every one of the requested optional features."""
        return features <= self.features

    def complete_pipelines(self) -> list[str]:
        """Human-readable list of what the node can run, for the cluster API and the ack.
        Computed on first use and kept: readiness is evaluated on every heartbeat, and this
        is O(pairs log pairs)."""
        if self._pipelines is None:
            self._pipelines = self._work_out_pipelines()
        return self._pipelines

    def pipelines_summary(self, shown: int = 20) -> str:
        """The first `shown` pipelines as one line (and how many more), kept like the list:
        it is the ready node's status reason, evaluated on every heartbeat."""
        if self._summary is None:
            pipelines = self.complete_pipelines()
            more = len(pipelines) - shown
            self._summary = ", ".join(pipelines[:shown]) + (f" and {more} more" if more > 0 else "")
        return self._summary

    def _work_out_pipelines(self) -> list[str]:
        out: list[str] = []
        if not self.asr_ready or not self.asr_languages:
            return out
        for src, tgt in sorted(self.nmt_pairs):
            if self.nmt_ready and (src in self.asr_languages or self.auto_detect):
                out.append(f"{src}->{tgt} (nmt)")
        for tgt in sorted(self.speech_translation_targets):
            out.append(f"*->{tgt} (speech translation)")
        return out

    def pairs(self) -> list[dict[str, str]]:
        pairs = {(s, t) for s, t in self.nmt_pairs if self.nmt_ready}
        pairs |= {("*", t) for t in self.speech_translation_targets}
        return [{"src": s, "tgt": t} for s, t in sorted(pairs)]


CAPABILITY_FIELDS = NodeHeartbeat.CAPABILITY_FIELDS


def merge_update(register: NodeRegister, heartbeat: NodeHeartbeat) -> NodeRegister | None:
    """The register as amended by a heartbeat's capability fields, or None if it has none or
    they repeat the registered ones."""
    update = {
        f: getattr(heartbeat, f) for f in CAPABILITY_FIELDS if getattr(heartbeat, f) is not None
    }
    if not update or all(getattr(register, f) == value for f, value in update.items()):
        return None  # a node that repeats its capabilities changes nothing
    return register.model_copy(update=update)


def derive(message: NodeRegister) -> Capabilities:
    """Capabilities from a register (or a register amended by `merge_update`)."""
    caps = Capabilities()
    types = message.capability_by_type
    models = message.installed_models or []
    lc = message.language_capabilities
    kinds = {m.kind.lower() for m in models if m.enabled is not False}
    services = {s.type.upper() for s in (message.installed_services or [])}
    if types is not None:
        ready = {c.type.upper() for c in types if c.ready}
        caps.not_ready_types = {c.type.upper() for c in types if not c.ready}
    else:
        ready = {k.upper() for k in kinds} | services
    caps.asr_ready = "ASR" in ready
    caps.nmt_ready = "NMT" in ready
    caps.tts_ready = "TTS" in ready

    pairs: set[tuple[str, str]] = set()
    if lc is not None:
        for p in (lc.supported_language_pairs or []) + (lc.nmt_pairs or []):
            pairs.add((p.src, p.tgt))
        caps.speech_translation_targets = set(lc.speech_translation_targets or [])
    for m in models:
        if m.kind.lower() == "nmt" and m.src_lang and m.tgt_lang and m.enabled is not False:
            pairs.add((m.src_lang, m.tgt_lang))
    caps.nmt_pairs = pairs

    if lc is not None and lc.asr_languages is not None:
        caps.asr_languages = set(lc.asr_languages)
    else:
        asr = {lang for m in models if m.kind.lower() == "asr" for lang in (m.languages or [])}
        caps.asr_languages = asr or {s for s, _ in pairs}
    if lc is not None and lc.tts_languages is not None:
        caps.tts_languages = set(lc.tts_languages)
    else:
        tts = {lang for m in models if m.kind.lower() == "tts" for lang in (m.languages or [])}
        caps.tts_languages = tts or {t for _, t in pairs}

    flags = message.features_supported
    if flags is not None:
        caps.features = flags.requested()
    return caps
