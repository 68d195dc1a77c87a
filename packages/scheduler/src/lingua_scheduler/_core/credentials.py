"""Node credentials: each node id is bound to one secret the first time the scheduler sees the
id (trust on first use); every later registration of that id on a new connection must present
the secret. Only the SHA-256 of a secret is kept, and it is compared in constant time.

`CredentialStore` is where bindings live. The core reads and writes it synchronously, so an
implementation keeps its bindings in memory and persists writes off the event loop (see
`lingua_scheduler._sqlite_store`); a cluster-wide (e.g. Redis) store implements the same three
methods.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol


class CredentialStore(Protocol):
    def lookup(self, node_id: str) -> str | None:
        """The hex SHA-256 of the secret bound to `node_id`, or None if the id is new."""
        ...

    def bind(self, node_id: str, digest: str) -> None:
        """Bind `node_id` to the secret whose hex SHA-256 is `digest` (ids never rebind)."""
        ...

    def count(self) -> int:
        """How many node ids are bound."""
        ...


class MemoryCredentialStore:
    """Bindings that last as long as the process (tests, and a scheduler without `state_path`)."""

    def __init__(self) -> None:
        self._digests: dict[str, str] = {}

    def lookup(self, node_id: str) -> str | None:
        return self._digests.get(node_id)

    def bind(self, node_id: str, digest: str) -> None:
        self._digests.setdefault(node_id, digest)

    def count(self) -> int:
        return len(self._digests)


def digest_of(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_secret() -> str:
    """32 random bytes as URL-safe text (43 characters)."""
    return secrets.token_urlsafe(32)


class Verdict(Enum):
    KNOWN = "known"  # the id is bound and the secret matches
    FIRST_USE = "first_use"  # the id is new: bind it to the presented (or an issued) secret
    MISSING = "missing"  # the id is bound and no secret was presented
    WRONG = "wrong"  # the id is bound to another secret
    FULL = "full"  # the id is new and the store holds its maximum of ids


@dataclass(frozen=True, slots=True)
class CredentialCheck:
    """The outcome of `NodeCredentials.check`; nothing is bound until `NodeCredentials.accept`."""

    node_id: str
    verdict: Verdict
    digest: str | None = None
    issued: str | None = None

    @property
    def ok(self) -> bool:
        return self.verdict in (Verdict.KNOWN, Verdict.FIRST_USE)


class NodeCredentials:
    """Checks a registering node's secret against its id's binding (validate first, bind after)."""

    def __init__(
        self, store: CredentialStore, max_nodes: int, secret: Callable[[], str] = new_secret
    ) -> None:
        """`secret` makes the secret issued to a node that brings none (the core passes one
        drawn from its `Randomness`)."""
        self.store = store
        self.max_nodes = max_nodes
        self._secret = secret

    def check(self, node_id: str, presented: str | None) -> CredentialCheck:
        bound = self.store.lookup(node_id)
        if bound is None:
            if self.store.count() >= self.max_nodes:
                return CredentialCheck(node_id, Verdict.FULL)
            issued = None if presented is not None else self._secret()
            secret = presented if presented is not None else issued
            assert secret is not None
            return CredentialCheck(node_id, Verdict.FIRST_USE, digest_of(secret), issued)
        if presented is None:
            return CredentialCheck(node_id, Verdict.MISSING)
        if not hmac.compare_digest(digest_of(presented), bound):
            return CredentialCheck(node_id, Verdict.WRONG)
        return CredentialCheck(node_id, Verdict.KNOWN, bound)

    def accept(self, check: CredentialCheck) -> str | None:
        """Bind a first use; returns the secret to hand the node (None unless one was issued)."""
        if check.verdict is Verdict.FIRST_USE and check.digest is not None:
            self.store.bind(check.node_id, check.digest)
        return check.issued

    def digest(self, node_id: str) -> str | None:
        return self.store.lookup(node_id)
