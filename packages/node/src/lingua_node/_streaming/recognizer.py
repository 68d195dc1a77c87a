"""Streaming recognition of one utterance over a growing, trimmed audio buffer.

Each pass (`update`) re-decodes the buffer with Whisper and feeds the hypothesis to
LocalAgreement-2 (`agreement.py`): words two passes agree on are committed. The text
committed before the buffer's start goes in as Whisper's prompt, so a pass over a trimmed
buffer continues its sentence. Once the buffer is longer than `trim_after_s` it is cut at the
end of the last committed sentence: the cost of a pass then depends on the buffer, not on how
long the speaker has talked. Whisper's encoder is run on the buffer plus a margin only
(`backends/asr.py`, short context), so a short buffer costs little.

A pass over a buffer that ends in a pause (the speaker stopped) is an endpoint pass: it
decodes up to the pause, which is what the final pass would decode if nothing more is said.
At the end of the utterance (`finish`) that pass's hypothesis is the final transcript when
the VAD finds no speech after it, and nothing is decoded; otherwise one more pass over the
buffer up to the end of speech completes the committed words. Not decoding at the end is
where streaming's earlier final result comes from: a pass costs about what a whole decode of
a short utterance costs.

Blocking (inference): `update` and `finish` run on worker threads; passes of one stream may
overlap around a pause (see `update`); `add` may be called from another thread.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
from lingua_protocol import FloatAudio

from .._backends.interfaces import Recognizer, Transcript, VoiceActivity, Word
from .agreement import LocalAgreement, words_text
from .pause import frame_levels, trailing_quiet

log = logging.getLogger("lingua.node.streaming")

SAMPLE_RATE_HZ = 16000
SPEECH_PAD_S = 0.2
"""Audio kept before the first and after the last speech the VAD finds (as the
whole-utterance VAD pads)."""
PAD = int(SPEECH_PAD_S * SAMPLE_RATE_HZ)
SENTENCE_ENDS = (".", "?", "!", "。", "？", "！")


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """The knobs of streaming recognition; docs/node.md ("Streaming") has the measurements
    behind each default."""

    interval_ms: int = 1000
    """Time between passes over one stream when the job states no
    `partial_update_interval_ms`. Each pass costs a decode of the buffer, so CPU per audio
    second is about (pass cost / interval): shorter intervals show words sooner and cost
    more, and fewer streams fit on a node."""
    first_update_ms: int = 500
    """The first pass runs once this much audio has arrived, not a whole interval in, so the
    first words show early."""
    commit_context_s: float = 1.0
    """A word is committed only once the earlier of the two agreeing passes had heard this
    much audio after it (`LocalAgreement.min_context_s`); it costs one interval of commit
    delay for the newest words and nothing at the end (endpoint and final passes)."""
    first_speech_ms: int = 300
    """No pass runs before the buffer holds this much speech (the VAD's)."""
    min_interval_ms: int = 200
    """The shortest interval a job may ask for (a smaller one is raised to this)."""
    trim_after_s: float = 8.0
    """The buffer is cut at the last committed sentence end once longer than this. Up to
    about 8 s the short-context encoder runs its 10 s minimum window anyway, so cutting
    earlier saves little and loses Whisper context."""
    max_buffer_s: float = 20.0
    """Speech without a sentence end: past this, the buffer is cut at the last committed
    word, committing words older than `force_commit_s` that did not agree (Whisper's window
    is 30 s; a buffer must never reach it)."""
    force_commit_s: float = 5.0
    endpoint_silence_s: float = 0.12
    """A pass whose buffer ends in this much quiet (`pause.py`'s rule) is an endpoint pass:
    it decodes up to the start of the quiet plus `SPEECH_PAD_S`, as the final pass would,
    and the final reuses it when the VAD finds no speech after that (`update`)."""
    pause_ms: int = 150
    """Quiet audio after speech that makes a stream due for a pass at once (`pause.py`)."""
    final_pass: str = "buffer"
    """What the final pass decodes when the last pass did not hear the speech's end:
    "buffer" (the trimmed buffer, at most `trim_after_s` plus what came after its last cut)
    or "tail" (from the end of the committed words, less `final_overlap_s`)."""
    final_overlap_s: float = 0.5
    """A "tail" final pass starts this long before the end of the last committed word, so a word
    boundary misplaced by Whisper's timestamps cannot clip the next word; the repeated word
    is recognised as already committed and dropped."""
    partial_beam: int | None = None
    """Beam of the passes while audio arrives; None: the node's (5)."""
    partial_fallback: bool = True
    """Passes while audio arrives decode as a whole utterance does: when a decode looks
    unlikely, faster-whisper decodes again at higher temperatures (up to five times). False:
    temperature 0 only, cheaper, but measured to commit more wrong words ("water" for
    "weather" in two agreeing passes); endpoint and final passes always fall back."""
    final_beam: int | None = None
    """Beam of the final pass; None: the node's (5)."""
    prompt_chars: int = 200
    """Committed text handed to Whisper as the prompt, at most this many characters."""
    max_audio_s: float = 120.0
    """Longest streamed utterance (as a whole-utterance job): longer audio fails the job with
    AUDIO_DECODE_FAILED. Bounds the node's memory per stream (the whole audio is kept for
    speech translation at the end): 120 s is 7.7 MB of float32."""

    def interval_s(self, asked_ms: int | None) -> float:
        """The interval a job gets: what it asked for (not under `min_interval_ms`), or the
        default."""
        if asked_ms is None or asked_ms <= 0:
            return self.interval_ms / 1000
        return max(asked_ms, self.min_interval_ms) / 1000


class AudioTooLong(ValueError):
    """The stream passed `StreamConfig.max_audio_s`."""


@dataclass(frozen=True, slots=True)
class Hypothesis:
    """What one pass knows: `text` the whole hypothesis, `stable_text` its committed prefix."""

    text: str
    stable_text: str
    audio_ms: int


@runtime_checkable
class SpeechSpan(Protocol):
    """A voice-activity engine that says where speech starts and ends
    (`SileroVAD.speech_span`)."""

    def speech_span(self, audio: FloatAudio) -> tuple[int, int] | None: ...


@runtime_checkable
class StreamPass(Protocol):
    """A recogniser with a streaming pass (`WhisperASR.transcribe_stream`)."""

    def transcribe_stream(
        self,
        audio: FloatAudio,
        language: str | None,
        *,
        prompt: str | None = ...,
        beam_size: int | None = ...,
        temperature: float | None = ...,
    ) -> Transcript: ...


@dataclass
class StreamRecognizer:
    recognizer: Recognizer
    language: str | None
    """The utterance's language; None: detected by the first pass that hears words, then kept."""
    vad: VoiceActivity | None = None
    """No pass runs before the VAD finds speech in the buffer (Whisper invents words for
    silence); None: every pass runs."""
    config: StreamConfig = field(default_factory=StreamConfig)
    agreement: LocalAgreement = field(init=False)
    language_probability: float = 0.0
    passes: int = 0
    _incoming: list[FloatAudio] = field(default_factory=list)
    _chunks: list[FloatAudio] = field(default_factory=list)
    _received: int = 0
    _buffer: FloatAudio = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    _buffer_start: int = 0
    """Samples from the utterance's start to the buffer's first sample."""
    _decoded_upto: int = 0
    _heard_speech: bool = False
    """Speech was found once (the silence before it was cut)."""
    _endpoint: int | None = None
    """Where the last pass stopped (samples from the utterance's start) when it was an
    endpoint pass; None otherwise. The final reuses it when all speech ends before it."""
    _peak: float = 0.0
    """The loudest 20 ms frame heard (RMS), the reference for quiet (`pause.py`)."""
    final_decoded: bool = False
    """Whether `finish` had to decode (False: the last pass had heard all the speech)."""
    endpoint_running: int | None = None
    """Where a running endpoint pass stops (a final pass waits for it rather than decode
    the same audio again)."""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    """Guards the incoming audio (added from the event loop)."""
    _state: threading.RLock = field(default_factory=threading.RLock)
    """Guards the buffer and the agreement between passes on worker threads."""
    _generation: int = 0
    _counted: int = 0
    """The newest pass whose words went into the agreement."""
    _closed: bool = False

    def __post_init__(self) -> None:
        self.agreement = LocalAgreement(self.config.commit_context_s)

    # --- audio in -------------------------------------------------------------------------------

    def add(self, audio: FloatAudio) -> None:
        """More audio (16 kHz mono float32). Raises `AudioTooLong` past `max_audio_s`."""
        with self._lock:
            if self._received + audio.size > self.config.max_audio_s * SAMPLE_RATE_HZ:
                raise AudioTooLong(
                    f"streamed audio passed {self.config.max_audio_s:.0f} s, the node's limit"
                )
            self._incoming.append(audio)
            self._received += audio.size

    @property
    def received_ms(self) -> int:
        return self._received * 1000 // SAMPLE_RATE_HZ

    def has_new_audio(self) -> bool:
        return self._received > self._decoded_upto

    def audio(self) -> FloatAudio:
        """The whole utterance so far."""
        with self._state:
            self._take()
        if not self._chunks:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(self._chunks)

    def _take(self) -> None:
        with self._lock:
            incoming, self._incoming = self._incoming, []
        if incoming:
            self._chunks.extend(incoming)
            self._buffer = np.concatenate([self._buffer, *incoming])

    # --- passes ---------------------------------------------------------------------------------

    def update(self) -> Hypothesis | None:
        """One pass over the buffer; None when there was nothing new to hear (no new audio,
        no speech in the buffer) or a newer pass already counted.

        When the buffer ends in a pause (`endpoint_silence_s` of quiet) the pass decodes up
        to the pause plus `SPEECH_PAD_S`, what the final pass would decode if the speaker
        said no more: `finish` then reuses its hypothesis.

        Passes of one stream may overlap (an endpoint or final pass does not wait for a
        running pass, see `rotation.py`): each takes its audio under the state lock, decodes
        outside it, and counts only when no newer pass has counted yet."""
        with self._state:
            self._take()
            end = self._buffer_start + self._buffer.size
            if end <= self._decoded_upto or self._closed:
                return None
            self._decoded_upto = end
            span = self._span(self._buffer)
            if span is None:
                return None
            if not self._heard_speech:
                if span[1] - span[0] < int(self.config.first_speech_ms * SAMPLE_RATE_HZ / 1000):
                    return None  # a fraction of a word: Whisper would only guess
                span = self._cut_leading_silence(span)
            levels = frame_levels(self._buffer)
            self._peak = max(self._peak, float(levels.max()) if levels.size else 0.0)
            quiet = trailing_quiet(self._buffer, self._peak)
            stop = self._buffer.size
            endpoint = quiet >= int(self.config.endpoint_silence_s * SAMPLE_RATE_HZ)
            if endpoint:
                stop = min(stop, stop - quiet + PAD)
            beam = self.config.final_beam if endpoint else self.config.partial_beam
            offset, audio, prompt = self._buffer_start, self._buffer[:stop], self._prompt()
            speech_end = offset + stop
            self._generation += 1
            generation = self._generation
            if endpoint:
                self.endpoint_running = speech_end
        log.debug("pass %d over %d..%d, endpoint %s", generation, offset, end, endpoint)
        try:
            words = self._decode(audio, offset, prompt, beam, endpoint)
        finally:
            if endpoint and self.endpoint_running == speech_end:
                self.endpoint_running = None
        with self._state:
            if generation <= self._counted or self._closed:
                return None
            self._counted = generation
            self.agreement.insert(words, end / SAMPLE_RATE_HZ)
            self._endpoint = speech_end if endpoint else None
            self._trim()
            return Hypothesis(
                self.agreement.text, self.agreement.stable_text, end * 1000 // SAMPLE_RATE_HZ
            )

    def finish(self) -> Transcript:
        """The final transcript: the committed words plus the rest of the speech. The speech
        ends where the VAD says (trailing silence is never decoded). When the last pass was
        an endpoint pass that heard all of it, its hypothesis is final and nothing is decoded;
        otherwise one pass up to the end (`StreamConfig.final_pass`). A pass still running
        when this starts does not count any more."""
        with self._state:
            self._closed = True
            self._take()
            span = self._span(self._buffer)
            log.debug(
                "final: speech ends %s, last endpoint pass %s, %d passes",
                None if span is None else self._buffer_start + span[1],
                self._endpoint,
                self.passes,
            )
            self._decoded_upto = self._buffer_start + self._buffer.size
            if span is None:
                self.agreement.close([])  # no speech left in the buffer: a guess was noise
                return self._final()
            if self._endpoint is not None and self._buffer_start + span[1] <= self._endpoint:
                self.agreement.close(self.agreement.pending)
                return self._final()
            start = self._buffer_start
            if self.config.final_pass == "tail":
                start = self._tail_start()
            stop = min(self._buffer.size, span[1] + PAD)
            audio = self._buffer[start - self._buffer_start : stop]
            prompt = self._prompt(upto=start)
        words = self._decode(audio, start, prompt, self.config.final_beam, True)
        with self._state:
            self.agreement.close(words)
            self.final_decoded = True
            return self._final()

    def _final(self) -> Transcript:
        return Transcript(
            self.agreement.stable_text,
            self.language or "",
            self.language_probability,
            list(self.agreement.committed),
        )

    def _cut_leading_silence(self, span: tuple[int, int]) -> tuple[int, int]:
        """The first speech: the silence before it (less `SPEECH_PAD_S`) leaves the buffer,
        as the whole-utterance VAD cuts it, so Whisper hears the same start in both modes."""
        self._heard_speech = True
        lead = max(0, span[0] - PAD)
        self._buffer = self._buffer[lead:].copy()
        self._buffer_start += lead
        return span[0] - lead, span[1] - lead

    def _span(self, audio: FloatAudio) -> tuple[int, int] | None:
        """Where speech in `audio` starts and ends (samples, unpadded), None when none."""
        if audio.size == 0:
            return None
        if self.vad is None:
            return 0, audio.size
        if isinstance(self.vad, SpeechSpan):
            return self.vad.speech_span(audio)
        return (0, audio.size) if self.vad.speech(audio).size else None

    def _tail_start(self) -> int:
        """Where a "tail" final pass starts: the end of the committed words less the
        overlap, or the buffer's start when nothing in the buffer is committed."""
        committed_end = int(self.agreement.committed_end_s * SAMPLE_RATE_HZ)
        overlap = int(self.config.final_overlap_s * SAMPLE_RATE_HZ)
        return max(self._buffer_start, committed_end - overlap)

    def _prompt(self, upto: int | None = None) -> str | None:
        """Committed text said before sample `upto` (default: the buffer's start)."""
        limit_s = (self._buffer_start if upto is None else upto) / SAMPLE_RATE_HZ
        before = [w for w in self.agreement.committed if w.end <= limit_s + 0.01]
        text = words_text(before)[-self.config.prompt_chars :]
        return text or None

    def _decode(
        self, audio: FloatAudio, offset: int, prompt: str | None, beam: int | None, final: bool
    ) -> list[Word]:
        """Words of one pass, with times from the utterance's start (runs outside the state
        lock: `language` is written once, to the same value by any pass)."""
        self.passes += 1
        if isinstance(self.recognizer, StreamPass):
            heard = self.recognizer.transcribe_stream(
                audio,
                self.language,
                prompt=prompt,
                beam_size=beam,
                temperature=None if final or self.config.partial_fallback else 0.0,
            )
        else:  # an engine without a streaming pass: no prompt, its own beam
            heard = self.recognizer.transcribe(audio, self.language)
        if self.language is None and heard.text:
            self.language = heard.language
            self.language_probability = heard.language_probability
        shift = offset / SAMPLE_RATE_HZ
        return [Word(w.word, w.start + shift, w.end + shift) for w in heard.words]

    def _trim(self) -> None:
        """Cuts the buffer at the last committed sentence end once it is long; forced at the
        last committed word past `max_buffer_s` (see `StreamConfig`)."""
        length_s = self._buffer.size / SAMPLE_RATE_HZ
        if length_s <= self.config.trim_after_s:
            return
        start_s = self._buffer_start / SAMPLE_RATE_HZ
        cut_s: float | None = None
        for w in reversed(self.agreement.committed):
            if w.end <= start_s:
                break
            if w.word.rstrip().endswith(SENTENCE_ENDS):
                cut_s = w.end
                break
        if cut_s is None and length_s > self.config.max_buffer_s:
            end_s = start_s + length_s
            self.agreement.commit_pending_before(end_s - self.config.force_commit_s)
            if self.agreement.committed_end_s > start_s:
                cut_s = self.agreement.committed_end_s
            else:  # nothing heard as words: keep the last `force_commit_s` of audio
                cut_s = end_s - self.config.force_commit_s
        if cut_s is None:
            return
        cut = min(int(cut_s * SAMPLE_RATE_HZ), self._buffer_start + self._buffer.size)
        self._buffer = self._buffer[cut - self._buffer_start :].copy()
        self._buffer_start = cut
