"""Time to parse a job_assign carrying 3 s of 16 kHz PCM16 audio: base64 JSON vs binary frame.

Prints medians over many runs and how many copies of the audio each path makes.
Targets on the reference 2-core machine: <= 0.3 ms (JSON) and <= 0.05 ms (binary frame).
"""

from __future__ import annotations

import statistics
import time

import numpy as np
from lingua_protocol import AudioData, JobAssign, parse_scheduler_message


def _median_ms(fn, runs: int = 2000) -> float:
    for _ in range(50):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - t0)
    return statistics.median(times) / 1e6


def main() -> dict[str, float]:
    rng = np.random.default_rng(0)
    audio = rng.integers(-3000, 3000, 48_000, dtype=np.int16).tobytes()  # 3 s at 16 kHz
    message = JobAssign(
        job_id="job-1",
        session_id="sess-1",
        utterance_index=7,
        src_lang="en",
        tgt_lang="zh",
        audio=AudioData.from_bytes(audio),
        attempt_id="a-1",
    )
    as_json = message.to_json_bytes()  # what the scheduler's reader gets from websockets
    as_text = as_json.decode()  # what a default websockets client gets for a text frame
    as_frame = message.to_frame()
    json_ms = _median_ms(lambda: parse_scheduler_message(as_json))
    text_ms = _median_ms(lambda: parse_scheduler_message(as_text))
    frame_ms = _median_ms(lambda: parse_scheduler_message(as_frame))
    decode_ms = _median_ms(lambda: parse_scheduler_message(as_json).audio.to_bytes())
    relay_ms = _median_ms(lambda: parse_scheduler_message(as_json).to_json_bytes())
    print(f"job_assign with {len(audio):,} bytes of PCM16 (3.0 s @ 16 kHz)")
    print(f"  base64 JSON  ({len(as_json):,} B): parse median {json_ms:.4f} ms  (target <= 0.3)")
    print(f"    the same as a str: {text_ms:.4f} ms")
    print(f"    + decode to bytes: {decode_ms:.4f} ms")
    print(f"    parse + emit again as JSON (what a relay does): {relay_ms:.4f} ms")
    print(f"  binary frame ({len(as_frame):,} B): parse median {frame_ms:.4f} ms  (target <= 0.05)")
    print(f"  ratio JSON / frame: {json_ms / frame_ms:.1f}x")
    print("  copies of the audio while parsing:")
    print("    JSON bytes: none kept (a view of the received frame); one strict-base64 pass")
    print("    JSON str  : 1 (its UTF-8 bytes), then as for bytes")
    print("    frame     : 1 (bytes sliced out of the frame)")
    return {"json_parse_ms": json_ms, "frame_parse_ms": frame_ms, "json_decode_ms": decode_ms}


if __name__ == "__main__":
    main()
