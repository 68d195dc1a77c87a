"""Lingua's reference client: microphone or WAV files in, captions and translated speech out."""

__version__ = "0.1.0"
