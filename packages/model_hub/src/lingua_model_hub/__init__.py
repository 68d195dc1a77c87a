"""Lingua model hub: versioned model files with SHA256 checks and resumable downloads."""

__version__ = "0.1.0"
