"""Several scheduler instances as one cluster, sharing state through Redis (`redis_url`).

Loaded only when `redis_url` is set: a single scheduler never imports this package (nor
redis-py, the optional `redis` extra). Each instance keeps its own connections and its own
in-memory core; this package gives the core cluster-wide versions of the tables that must
agree between instances (node credentials, pairing codes, rate limits) behind the interfaces
the core already uses, and the shell hooks that move what they need to and from Redis around
the core's synchronous calls (`docs/architecture.md`, "How it scales").
"""

from .instance import Cluster

__all__ = ["Cluster"]
