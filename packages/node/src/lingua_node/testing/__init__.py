"""Test doubles and helpers for the node's tests and for end-to-end tests and benchmarks: a
scripted scheduler (a real WebSocket server that records what a node sends), engine doubles
that fail like a missing cuBLAS, a tiny random M2M100 built on the fly, and word error rate.
Named as test doubles; nothing in the node itself imports this package."""
