"""The prose of docs/protocol.md's streaming section: one streamed utterance, message by
message (rendered by `docs_render`; the message sections themselves come from the models)."""

STREAMING = """## A streamed utterance, message by message

Streaming is negotiated per session; a session that does not ask sees nothing of it. The
client asks in `session_init`:

```json
{"type": "session_init", "src_lang": "en", "tgt_lang": "zh", "enable_streaming_asr": true,
 "partial_update_interval_ms": 300}
```

and the ack grants it, with the interval the nodes will be asked for (the scheduler clamps the
request to its bounds) and the longest utterance it accepts as a stream:

```json
{"type": "session_init_ack", "session_id": "sess-9f2c", "streaming": true,
 "partial_update_interval_ms": 300, "max_stream_ms": 30000, "...": "..."}
```

1. Client -> scheduler, while the speaker talks: `audio_chunk`s of one `utterance_index`, `seq`
   0, 1, 2, ... without gaps, raw `pcm16` at the first chunk's `sample_rate`. The first chunk
   opens the utterance (flow control counts it from then on, its bytes growing with each
   chunk).
   `{"type": "audio_chunk", "session_id": "sess-9f2c", "utterance_index": 4, "seq": 0,
   "payload": "..."}`
2. Scheduler -> node, at the first chunk: a `job_assign` with `stream: true`, the audio so far
   in `audio`, `next_seq` (the `seq` of the next `job_audio`) and the session's
   `partial_update_interval_ms`; the node answers `job_ack` as for any job.
   `{"type": "job_assign", "job_id": "job-1a2b-7", "attempt_id": "job-1a2b-7.1",
   "utterance_index": 4, "stream": true, "next_seq": 1, "partial_update_interval_ms": 300,
   "audio": "...", "...": "..."}`
3. Scheduler -> node, for every further chunk: `job_audio` with the chunk's `seq` and payload.
   `{"type": "job_audio", "job_id": "job-1a2b-7", "attempt_id": "job-1a2b-7.1", "seq": 1,
   "payload": "..."}`
4. Node -> scheduler, as it recognises: `asr_partial` with its whole hypothesis (`text`), the
   prefix that will not change (`stable_text`), how much audio it covers (`audio_ms`) and,
   when it translates as it goes, `text_translated`.
   `{"type": "asr_partial", "job_id": "job-1a2b-7", "attempt_id": "job-1a2b-7.1",
   "session_id": "sess-9f2c", "utterance_index": 4, "text": "the quick brown fax",
   "stable_text": "the quick", "audio_ms": 1800}`
5. Scheduler -> client, at once (never held behind an earlier index): the same partial with
   the scheduler's `revision` (1, 2, ... per utterance, also across a change of node). A
   client shows `stable_text` as committed and the rest of `text` as a guess, ignores a
   partial whose `revision` is not above the last one it showed, and every partial of an
   index whose final result has arrived. A slow reader gets only the newest partial of each
   utterance. Room listeners get it too, with `room_code`, `speaker_session_id` and
   `speaker_display_name`.
   `{"type": "asr_partial", "session_id": "sess-9f2c", "utterance_index": 4, "revision": 3,
   "text": "the quick brown fax", "stable_text": "the quick", "audio_ms": 1800}`
6. Client -> scheduler: the last chunk has `is_final: true` (its payload may be empty); the
   scheduler passes it on as a `job_audio` with `is_final: true`.
7. Node -> scheduler: one `job_result` for the job. Scheduler -> client: one
   `translation_result` for index 4, in index order like every final message; no partial of
   index 4 follows it.

If the node goes away before its result, another node gets a `job_assign` (a new `attempt_id`)
with all the audio so far, `next_seq` where the `job_audio`s resume, and `stream_closed: true`
when the final chunk had already come (then no `job_audio` follows). When no node with a free
stream slot exists, the scheduler keeps the chunks and sends the utterance whole at its final
chunk (a plain `job_assign`, no partials). A chunk that breaks a rule (a `seq` gap, another
format or sample rate, past `max_stream_ms` or the flow-control bytes) ends its utterance with
one `error` for its index; the same `utterance_index` never gets two final messages.
"""
