"""The stable-prefix policy (LocalAgreement-2) and the committed-prefix translation, alone."""

from __future__ import annotations

from lingua_node._backends.interfaces import Word
from lingua_node._streaming.agreement import LocalAgreement, same_word
from lingua_node._streaming.prefix_translation import PrefixTranslator, sentences


def hyp(*spec: tuple[str, float]) -> list[Word]:
    """Words with a start time each, 0.3 s long."""
    return [Word(f" {text}", start, start + 0.3) for text, start in spec]


def test_a_word_is_committed_only_when_two_passes_in_a_row_agree_on_it_and_all_before_it() -> None:
    policy = LocalAgreement()
    assert policy.insert(hyp(("The", 0.0), ("water", 0.4))) == []
    assert policy.text == "The water"
    assert policy.stable_text == ""
    newly = policy.insert(hyp(("The", 0.0), ("weather", 0.4), ("today", 0.8)))
    assert [w.word for w in newly] == [" The"]
    assert policy.stable_text == "The"
    assert policy.text == "The weather today"
    policy.insert(hyp(("The", 0.0), ("weather", 0.4), ("today", 0.8), ("is", 1.2)))
    assert policy.stable_text == "The weather today"
    assert [w.word.strip() for w in policy.pending] == ["is"]


def test_committed_words_never_change_even_when_a_later_pass_hears_them_differently() -> None:
    policy = LocalAgreement()
    policy.insert(hyp(("Please", 0.0), ("send", 0.4)))
    policy.insert(hyp(("Please", 0.0), ("send", 0.4), ("the", 0.8)))
    assert policy.stable_text == "Please send"
    policy.insert(hyp(("Pleased", 0.0), ("sent", 0.4), ("the", 0.8), ("report", 1.2)))
    assert policy.stable_text.startswith("Please send")


def test_punctuation_and_case_do_not_hold_a_word_back() -> None:
    assert same_word(" today,", "Today")
    policy = LocalAgreement()
    policy.insert(hyp(("today,", 0.0), ("is", 0.4)))
    policy.insert(hyp(("Today", 0.0), ("is", 0.4), ("sunny", 0.8)))
    assert policy.stable_text == "Today is"  # the newer pass's spelling


def test_a_pass_that_hears_the_last_committed_words_again_adds_them_once() -> None:
    policy = LocalAgreement()
    policy.insert(hyp(("the", 0.0), ("river", 0.4), ("and", 0.8)))
    policy.insert(hyp(("the", 0.0), ("river", 0.4), ("and", 0.8), ("we", 1.2)))
    assert policy.stable_text == "the river and"
    # the words repeat with times just inside the committed end (time filter) or after it
    # (the n-gram check): neither is committed twice
    again = [Word(" and", 0.75, 1.1), Word(" we", 1.2, 1.5), Word(" talked", 1.6, 1.9)]
    policy.insert(again)
    assert policy.text == "the river and we talked"
    policy.insert(again)
    assert policy.stable_text == "the river and we talked"
    # heard again from the very end of the committed words (a cut buffer): dropped once
    refrain = [Word(" we", 1.5, 1.6), Word(" talked", 1.6, 1.9), Word(" home", 2.0, 2.3)]
    policy.insert(refrain)
    assert policy.text == "the river and we talked home"
    policy.insert(refrain)
    assert policy.stable_text == "the river and we talked home"
    # said again later: kept
    policy.insert([Word(" we", 2.5, 2.7), Word(" talked", 2.7, 2.9)])
    policy.insert([Word(" we", 2.5, 2.7), Word(" talked", 2.7, 2.9), Word(" more", 3.0, 3.2)])
    assert policy.stable_text == "the river and we talked home we talked"


def test_a_word_is_committed_only_with_enough_audio_after_it_in_both_passes() -> None:
    policy = LocalAgreement(min_context_s=1.0)
    policy.insert(hyp(("The", 0.0), ("water", 0.4)), heard_s=0.8)
    policy.insert(hyp(("The", 0.0), ("water", 0.4), ("today", 0.8)), heard_s=1.8)
    assert policy.stable_text == ""  # the first pass ended 0.4 s after "water"
    policy.insert(hyp(("The", 0.0), ("weather", 0.4), ("today", 0.8), ("is", 1.2)), heard_s=2.8)
    assert policy.stable_text == "The"
    policy.insert(hyp(("The", 0.0), ("weather", 0.4), ("today", 0.8), ("is", 1.2)), heard_s=3.8)
    assert policy.stable_text == "The weather today is"


def test_close_takes_the_last_hypothesis_as_it_is() -> None:
    policy = LocalAgreement()
    policy.insert(hyp(("Good", 0.0), ("translation", 0.4)))
    policy.insert(hyp(("Good", 0.0), ("translation", 0.4), ("helps", 0.8)))
    policy.close(hyp(("Good", 0.0), ("translation", 0.4), ("helps", 0.8), ("people.", 1.2)))
    assert policy.stable_text == "Good translation helps people."
    assert policy.pending == []


def test_forced_commit_takes_only_the_pending_words_that_ended_before_the_cut() -> None:
    policy = LocalAgreement()
    policy.insert(hyp(("a", 0.0), ("b", 0.4), ("c", 5.0)))
    assert [w.word.strip() for w in policy.commit_pending_before(1.0)] == ["a", "b"]
    assert policy.stable_text == "a b"
    assert [w.word.strip() for w in policy.pending] == ["c"]


def test_finished_sentences_of_the_committed_prefix_are_translated_once() -> None:
    calls: list[str] = []

    def translate(text: str) -> str:
        calls.append(text)
        return text.upper()

    prefix = PrefixTranslator(translate)
    assert prefix.translated("Hello there.") == "HELLO THERE."
    assert prefix.translated("Hello there. How") == "HELLO THERE. HOW"
    assert prefix.translated("Hello there. How are you?") == "HELLO THERE. HOW ARE YOU?"
    assert prefix.translated("Hello there. How are you?") == "HELLO THERE. HOW ARE YOU?"
    assert calls == ["Hello there.", "How", "How are you?"]
    assert sentences("One. Two? Three") == ["One.", "Two?", "Three"]
