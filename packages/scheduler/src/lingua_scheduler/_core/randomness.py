"""Every random draw the scheduler core makes comes from one `Randomness` value.

Session ids, resume tokens, job-id prefixes, node ids given to nodes that bring none, pairing
and room codes, and the choice among equally good nodes: with `Randomness.seeded(n)` all of
them follow from `n`, so a run replays from its events (two cores with the same seed and the
same events produce the same actions). The default draws ids, tokens and codes from `secrets`
(they are credentials or guessable handles) and only the node choice from a `random.Random`
seeded by the `seed` setting.
"""

from __future__ import annotations

import base64
import random
import secrets


class Randomness:
    """Where the core's randomness comes from. `choice_rng` picks among tied nodes; `token`,
    `token_hex` and `below` make ids, tokens and codes."""

    __slots__ = ("_secure", "choice_rng")

    def __init__(self, choice_rng: random.Random, *, secure: bool) -> None:
        self.choice_rng = choice_rng
        self._secure = secure

    @classmethod
    def secure(cls, seed: int | None = None) -> Randomness:
        """Ids, tokens and codes from `secrets`; node choice from `random.Random(seed)`."""
        return cls(random.Random(seed), secure=True)

    @classmethod
    def seeded(cls, seed: int) -> Randomness:
        """Everything from `random.Random(seed)`: for tests and replays only (tokens become
        predictable)."""
        return cls(random.Random(seed), secure=False)

    def token(self, nbytes: int) -> str:
        """A URL-safe text token of `nbytes` random bytes (session ids, resume tokens)."""
        if self._secure:
            return secrets.token_urlsafe(nbytes)
        raw = self.choice_rng.randbytes(nbytes)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def token_hex(self, nbytes: int) -> str:
        """`nbytes` random bytes as hex (job-id prefixes, node ids)."""
        if self._secure:
            return secrets.token_hex(nbytes)
        return self.choice_rng.randbytes(nbytes).hex()

    def below(self, n: int) -> int:
        """A random integer in [0, n) (room and pairing codes)."""
        if self._secure:
            return secrets.randbelow(n)
        return self.choice_rng.randrange(n)
