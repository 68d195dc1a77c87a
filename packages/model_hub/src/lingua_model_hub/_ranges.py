"""HTTP Range header parsing (RFC 9110 section 14), one range per request.

Multi-range requests are answered with the whole file (a 200), which RFC 9110 allows; no
downloader of model files asks for several ranges at once.
"""

from __future__ import annotations


class Unsatisfiable(Exception):
    """The range lies outside the file: answer 416 with `Content-Range: bytes */size`."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) inclusive byte positions, or None to send the whole file."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_s, dash, last_s = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if not first_s:  # suffix range: the last N bytes
            n = int(last_s)
            if n <= 0 or size == 0:
                raise Unsatisfiable
            return max(0, size - n), size - 1
        first = int(first_s)
        last = int(last_s) if last_s else size - 1
    except ValueError:
        return None
    if first >= size:
        raise Unsatisfiable
    if first < 0 or last < first:
        return None
    return first, min(last, size - 1)
