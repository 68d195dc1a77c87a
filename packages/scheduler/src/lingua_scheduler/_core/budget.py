"""What a message costs in memory, and how to keep one within a byte budget.

Every buffer the core holds (dispatch queue, results held for ordering or for a disconnected
client, the replay buffer) is bounded in bytes, so they all measure messages the same way: the
audio's size (known without decoding it) plus the text fields plus a fixed overhead for the
object itself. O(1) per message: no serialisation to measure it.
"""

from __future__ import annotations

from lingua_protocol import Error, Message, TranslationResult

OVERHEAD_BYTES = 512
"""A message's fixed cost beyond its audio and text (the object, ids, small fields)."""


def message_bytes(message: Message) -> int:
    """The memory `message` holds, for the byte budgets."""
    audio = message.audio_data()
    size = OVERHEAD_BYTES + (len(audio) if audio is not None else 0)
    if isinstance(message, TranslationResult):
        size += len(message.text_asr or "") + len(message.text_translated or "")
    elif isinstance(message, Error):
        size += len(message.message)
    return size


def without_audio(message: Message, reason: str) -> Message:
    """`message` with its speech left out and `tts_audio_omitted` saying why: what a budget
    keeps of a result too large for it. The text is never left out."""
    if not isinstance(message, TranslationResult) or message.tts_audio is None:
        return message
    data = message.to_dict(exclude="tts_audio")
    data["tts_audio_omitted"] = reason
    return TranslationResult.model_validate(data)
