"""One example of every message, used to generate docs/protocol.md (kept in sync by a test)."""

from __future__ import annotations

from typing import Any

A = "AAAAAAAA"  # 6 bytes of silence, base64

CLIENT: list[dict[str, Any]] = [
    {
        "type": "session_init",
        "client_version": "0.1.0",
        "platform": "linux",
        "src_lang": "en",
        "tgt_lang": "zh",
        "features": {"speech_rate_detection": True},
        "pairing_code": None,
        "protocol_version": "0.2",
        "binary_audio": True,
    },
    {
        "type": "utterance",
        "session_id": "sess-9f2c",
        "utterance_index": 0,
        "manual_cut": False,
        "src_lang": "en",
        "tgt_lang": "zh",
        "audio": A,
        "audio_format": "pcm16",
        "sample_rate": 16000,
    },
    {
        "type": "audio_chunk",
        "session_id": "sess-9f2c",
        "utterance_index": 1,
        "seq": 0,
        "is_final": False,
        "payload": A,
    },
    {"type": "client_heartbeat", "session_id": "sess-9f2c", "timestamp": 1733800000000},
    {"type": "session_close", "session_id": "sess-9f2c", "reason": "user_finished"},
    {"type": "room_create", "display_name": "Ana", "preferred_lang": "en"},
    {"type": "room_join", "room_code": "482913", "display_name": "Li", "preferred_lang": "zh"},
    {"type": "room_leave", "room_code": "482913"},
]
SERVER: list[dict[str, Any]] = [
    {
        "type": "session_init_ack",
        "session_id": "sess-9f2c",
        "assigned_node_id": None,
        "message": "session created",
        "protocol_version": "0.2",
        "resume_token": "r-3b1d...",
        "binary_audio": True,
    },
    {
        "type": "translation_result",
        "session_id": "sess-9f2c",
        "utterance_index": 0,
        "job_id": "job-77",
        "text_asr": "Good morning.",
        "text_translated": "Good morning.",
        "tts_audio": A,
        "tts_format": "pcm16",
        "tts_sample_rate": 22050,
        "extra": {"speech_rate": 2.4},
        "processing_time_ms": 812.0,
        "service_timings": {"asr_ms": 540.0, "nmt_ms": 0.0, "tts_ms": 250.0, "total_ms": 812.0},
        "node_id": "node-a",
    },
    {
        "type": "asr_partial",
        "session_id": "sess-9f2c",
        "utterance_index": 0,
        "text": "Good",
        "is_final": False,
    },
    {
        "type": "missing_result",
        "session_id": "sess-9f2c",
        "utterance_index": 3,
        "reason": "JOB_TIMEOUT",
    },
    {"type": "server_heartbeat", "session_id": "sess-9f2c", "timestamp": 1733800000500},
    {"type": "session_close_ack", "session_id": "sess-9f2c"},
    {"type": "room_create_ack", "room_code": "482913", "session_id": "sess-9f2c"},
    {
        "type": "room_members",
        "room_code": "482913",
        "members": [
            {"session_id": "sess-9f2c", "display_name": "Ana", "preferred_lang": "en"},
            {"session_id": "sess-1a0e", "display_name": "Li", "preferred_lang": "zh"},
        ],
    },
    {"type": "room_expired", "room_code": "482913", "reason": "idle"},
    {
        "type": "error",
        "code": "NO_AVAILABLE_NODE",
        "message": "no available node for en->zh (utterance 4)",
        "utterance_index": 4,
        "details": {"src_lang": "en", "tgt_lang": "zh"},
    },
]
NODE: list[dict[str, Any]] = [
    {
        "type": "node_register",
        "node_id": "node-a",
        "version": "0.1.0",
        "platform": "linux",
        "hardware": {"cpu_cores": 2, "memory_gb": 24.0, "gpus": []},
        "capability_schema_version": "2.0",
        "installed_services": [
            {"service_id": "faster-whisper", "type": "ASR", "device": "CPU", "status": "Running"}
        ],
        "capability_by_type": [{"type": "ASR", "ready": True}, {"type": "TTS", "ready": True}],
        "language_capabilities": {
            "supported_language_pairs": [{"src": "zh", "tgt": "en"}],
            "asr_languages": ["en", "zh"],
            "tts_languages": ["en"],
        },
        "accept_public_jobs": True,
        "max_concurrent_jobs": 2,
        "protocol_version": "0.2",
    },
    {
        "type": "node_heartbeat",
        "node_id": "node-a",
        "timestamp": 1733800000000,
        "resource_usage": {"cpu_percent": 37.5, "mem_percent": 40.8, "running_jobs": 1},
    },
    {"type": "job_ack", "job_id": "job-77", "node_id": "node-a", "attempt_id": "job-77.1"},
    {
        "type": "job_result",
        "job_id": "job-77",
        "node_id": "node-a",
        "session_id": "sess-9f2c",
        "utterance_index": 0,
        "success": False,
        "attempt_id": "job-77.1",
        "error": {"code": "AUDIO_DECODE_FAILED", "message": "not a WAV file"},
    },
    {
        "type": "node_error",
        "node_id": "node-a",
        "code": "MODEL_LOAD_FAILED",
        "message": "piper voice failed to load",
    },
    {"type": "pairing_code_request", "node_id": "node-a"},
]
SCHEDULER: list[dict[str, Any]] = [
    {
        "type": "node_register_ack",
        "node_id": "node-a",
        "message": "registered",
        "status": "ready",
        "status_reason": "pipelines: asr+speech-translation(en)+tts",
        "heartbeat_interval_s": 15.0,
    },
    {
        "type": "job_assign",
        "job_id": "job-77",
        "session_id": "sess-9f2c",
        "utterance_index": 0,
        "src_lang": "zh",
        "tgt_lang": "en",
        "pipeline": {"use_asr": True, "use_nmt": True, "use_tts": True},
        "audio": A,
        "audio_format": "pcm16",
        "sample_rate": 16000,
        "attempt_id": "job-77.1",
        "timeout_ms": 33000,
    },
    {"type": "job_cancel", "job_id": "job-77", "attempt_id": "job-77.1", "reason": "timeout"},
    {"type": "node_control", "command": "drain", "reason": "maintenance"},
    {"type": "pairing_code", "node_id": "node-a", "code": "730215", "expires_in_s": 300.0},
]
