"""Lingua compute node: runs VAD, ASR, translation and TTS jobs for a scheduler."""

__version__ = "0.1.0"
