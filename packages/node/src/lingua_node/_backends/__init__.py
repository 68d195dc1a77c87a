"""Inference backends. Each is a plain object that loads its model once and is called from a
worker thread; none of them knows about sockets or the protocol's messages."""
