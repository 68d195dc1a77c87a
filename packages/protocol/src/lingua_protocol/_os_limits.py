"""The open-files limit, raised for a server that holds many connections.

Both Lingua servers (scheduler and hub) cap their connections; the cap only protects them if
it is reached before `accept()` runs out of file descriptors, so each raises its soft limit
towards the hard one at start. Kept here because the protocol package is the one both import.
"""

from __future__ import annotations

import resource


def raise_open_files_limit(wanted: int) -> tuple[int | None, str | None]:
    """Raise the soft open-files limit towards `wanted` (never above the hard limit).

    Returns the soft limit now in force (None: unlimited) and, when raising it failed, why.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    problem: str | None = None
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            problem = str(exc)
    return (None if soft == resource.RLIM_INFINITY else soft), problem
