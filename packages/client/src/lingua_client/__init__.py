"""Lingua's reference client: microphone or WAV files in, captions and translated speech out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lingua_protocol import lazy_exports

__version__ = "0.1.0"

# Public names, imported on first use: importing the package stays cheap (the
# engines behind some of them load large libraries).
_LAZY: dict[str, str] = {
    "LinguaApp": "._app",
    "LocalCluster": "._local_cluster",
    "MIC_RATE": "._virtual_audio",
    "Microphone": "._audio_io",
    "Player": "._audio_io",
    "Proc": "._local_cluster",
    "SPEAKER_RATE": "._virtual_audio",
    "SessionConnection": "._connection",
    "VirtualAudio": "._virtual_audio",
    "free_port": "._local_cluster",
    "make_server": "._web_server",
    "page_url": "._web_server",
    "pulseaudio_missing": "._virtual_audio",
    "read_speech": "._virtual_audio",
    "run_files": "._files",
    "wait_http": "._local_cluster",
}

if TYPE_CHECKING:
    from ._app import LinguaApp
    from ._audio_io import Microphone, Player
    from ._connection import SessionConnection
    from ._files import run_files
    from ._local_cluster import LocalCluster, Proc, free_port, wait_http
    from ._virtual_audio import (
        MIC_RATE,
        SPEAKER_RATE,
        VirtualAudio,
        pulseaudio_missing,
        read_speech,
    )
    from ._web_server import make_server, page_url


__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "MIC_RATE",
    "SPEAKER_RATE",
    "LinguaApp",
    "LocalCluster",
    "Microphone",
    "Player",
    "Proc",
    "SessionConnection",
    "VirtualAudio",
    "free_port",
    "make_server",
    "page_url",
    "pulseaudio_missing",
    "read_speech",
    "run_files",
    "wait_http",
]
