"""The scheduler's pure core: no sockets, no sleeping, `now` passed in by the caller."""
