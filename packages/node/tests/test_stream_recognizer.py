"""The streaming recogniser over tone speech (`lingua_node.testing.stream_doubles`): what is
committed, where the buffer is cut, what the final pass decodes. No model, no clock."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from lingua_node._streaming.recognizer import AudioTooLong, StreamConfig, StreamRecognizer
from lingua_node.testing.stream_doubles import LevelVAD, ScriptedStreamRecognizer, tone_speech

VOCAB = ["one", "two", "three", "four.", "five", "six", "seven", "eight.", "nine", "ten."]
RATE = 16000


def stream(config: StreamConfig | None = None) -> tuple[StreamRecognizer, ScriptedStreamRecognizer]:
    asr = ScriptedStreamRecognizer(VOCAB)
    return StreamRecognizer(asr, "en", LevelVAD(), config or StreamConfig()), asr


def feed_in_steps(rec: StreamRecognizer, audio: np.ndarray, step_s: float) -> list[str]:
    """Adds the audio `step_s` at a time with a pass after each step; the stable texts."""
    step = int(step_s * RATE)
    stable = []
    for at in range(0, audio.size, step):
        rec.add(audio[at : at + step])
        heard = rec.update()
        stable.append(heard.stable_text if heard else "")
    return stable


def test_partials_commit_words_two_passes_agree_on_and_the_final_completes_the_text() -> None:
    rec, _asr = stream()
    audio = tone_speech(VOCAB, ["one", "two", "three", "four."])
    stable = feed_in_steps(rec, audio, 0.5)
    assert stable[0] == ""  # one pass alone commits nothing
    assert stable[-1].startswith("one")
    final = rec.finish()
    assert final.text == "one two three four."
    assert [w.word.strip() for w in final.words] == ["one", "two", "three", "four."]
    assert all("guess" not in c for c in final.text.split())


def test_no_pass_runs_before_there_is_speech() -> None:
    rec, asr = stream()
    rec.add(np.zeros(RATE, dtype=np.float32))
    assert rec.update() is None
    assert asr.calls == []
    assert rec.finish().text == ""
    assert asr.calls == []


def test_the_buffer_is_cut_at_committed_sentence_ends_so_each_pass_stays_short() -> None:
    """Over 60 s of speech no pass decodes more than `trim_after_s` plus one step and a
    sentence; without the cut the last passes would decode the whole minute."""
    config = StreamConfig(trim_after_s=3.0, commit_context_s=0.0)
    rec, asr = stream(config)
    sentence = ["five", "six", "seven", "eight."]
    audio = tone_speech(VOCAB, sentence * 30)  # 60 s
    feed_in_steps(rec, audio, 0.5)
    final = rec.finish()
    assert final.text == " ".join(sentence * 30)
    longest_s = max(c.samples for c in asr.calls) / RATE
    assert longest_s <= config.trim_after_s + 0.5 + 2.0
    # after a cut, the committed text before the buffer goes in as the prompt
    assert asr.calls[-1].prompt is not None
    assert asr.calls[-1].prompt.endswith("eight.")
    assert len(asr.calls[-1].prompt) <= config.prompt_chars


def test_speech_without_sentence_ends_is_still_cut_past_max_buffer() -> None:
    config = StreamConfig(trim_after_s=3.0, max_buffer_s=6.0, force_commit_s=2.0)
    rec, asr = stream(config)
    audio = tone_speech(VOCAB, ["one", "two", "three", "five", "six", "seven"] * 6)  # 18 s
    feed_in_steps(rec, audio, 0.5)
    assert max(c.samples for c in asr.calls) / RATE <= config.max_buffer_s + 0.5
    assert rec.finish().text == " ".join(["one", "two", "three", "five", "six", "seven"] * 6)


def test_a_pass_over_a_pause_decodes_up_to_the_end_of_speech_and_is_the_final_one() -> None:
    rec, asr = stream()
    speech = tone_speech(VOCAB, ["one", "two", "three"])
    voiced_end = int(np.flatnonzero(speech)[-1]) + 1
    rec.add(speech)
    rec.add(np.zeros(RATE // 2, dtype=np.float32))  # the speaker paused
    rec.update()
    assert asr.calls[-1].samples == voiced_end + int(0.2 * RATE)  # the end plus the pad
    passes = len(asr.calls)
    rec.add(np.zeros(RATE // 2, dtype=np.float32))  # the client's hangover, then the end
    final = rec.finish()
    assert len(asr.calls) == passes
    assert not rec.final_decoded
    assert final.text == "one two three"


def test_speech_after_a_pause_is_decoded_by_the_final_pass() -> None:
    rec, _asr = stream()
    rec.add(tone_speech(VOCAB, ["one", "two"]))
    rec.add(np.zeros(RATE // 2, dtype=np.float32))
    rec.update()
    rec.add(tone_speech(VOCAB, ["three"]))
    final = rec.finish()
    assert rec.final_decoded
    assert final.text == "one two three"


def test_leading_silence_is_cut_and_word_times_stay_on_the_utterance_clock() -> None:
    rec, asr = stream()
    rec.add(np.zeros(RATE, dtype=np.float32))
    rec.add(tone_speech(VOCAB, ["one", "two"]))
    rec.update()
    assert asr.calls[0].samples == int(0.2 * RATE) + int(1.0 * RATE)  # pad + two words
    final = rec.finish()
    assert final.words[0].start == pytest.approx(1.0)


def test_the_final_pass_decodes_speech_the_last_pass_did_not_hear_and_not_the_silence_after() -> (
    None
):
    rec, asr = stream()
    speech = tone_speech(VOCAB, ["one", "two", "three", "five"])
    rec.add(speech[:RATE])
    rec.update()
    rec.add(speech[RATE:])
    rec.add(np.zeros(RATE, dtype=np.float32))
    final = rec.finish()
    assert rec.final_decoded
    assert final.text == "one two three five"
    voiced_end = int(np.flatnonzero(speech)[-1]) + 1
    assert asr.calls[-1].samples == voiced_end + int(0.2 * RATE)  # not the second of silence


def test_a_tail_final_pass_starts_just_before_the_committed_end_with_the_rest_as_prompt() -> None:
    rec, asr = stream(StreamConfig(final_pass="tail", final_overlap_s=0.2, commit_context_s=0.0))
    speech = tone_speech(VOCAB, ["one", "two", "three", "five", "six", "seven"])
    feed_in_steps(rec, speech[: 2 * RATE], 0.5)
    committed = rec.agreement.stable_text
    assert committed
    rec.add(speech[2 * RATE :])
    final = rec.finish()
    assert final.text == "one two three five six seven"
    # the pass re-hears the last committed word (the overlap), so the prompt is what was
    # committed before it, and the pass decodes from there to the end of speech only
    assert asr.calls[-1].prompt == committed.rsplit(" ", 1)[0]
    committed_end = int(rec.agreement.committed[len(committed.split()) - 1].end * RATE)
    voiced_end = int(np.flatnonzero(speech)[-1]) + 1
    stop = min(speech.size, voiced_end + int(0.2 * RATE))
    assert asr.calls[-1].samples == stop - (committed_end - int(0.2 * RATE))


def test_audio_past_the_limit_is_refused() -> None:
    rec, _ = stream(StreamConfig(max_audio_s=1.0))
    rec.add(np.zeros(RATE, dtype=np.float32))
    with pytest.raises(AudioTooLong):
        rec.add(np.zeros(1, dtype=np.float32))


class FirstPassBlocks(ScriptedStreamRecognizer):
    """The first pass waits for `release`; later ones run at once."""

    def __init__(self) -> None:
        super().__init__(VOCAB)
        self.release = threading.Event()
        self.entered = threading.Event()

    def transcribe_stream(self, audio, language, **options):  # type: ignore[no-untyped-def]
        first = not self.calls
        out = super().transcribe_stream(audio, language, **options)
        if first:
            self.entered.set()
            self.release.wait(10)
        return out


def test_an_older_pass_that_ends_after_a_newer_one_and_a_pass_after_the_final_do_not_count() -> (
    None
):
    asr = FirstPassBlocks()
    rec = StreamRecognizer(asr, "en", LevelVAD(), StreamConfig())
    rec.add(tone_speech(VOCAB, ["one"]))
    with ThreadPoolExecutor(1) as pool:
        older = pool.submit(rec.update)
        assert asr.entered.wait(10)
        rec.add(tone_speech(VOCAB, ["two"]))
        newer = rec.update()
        assert newer is not None
        assert newer.text == "one two"
        asr.release.set()
        assert older.result(10) is None  # it heard less and ended later: dropped
    assert rec.agreement.text == "one two"
    rec.finish()
    rec.add(tone_speech(VOCAB, ["three"]))
    assert rec.update() is None  # the utterance is closed
