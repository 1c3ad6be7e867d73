"""Personal identifiers are replaced by a keyed hash at the edge (Decree 13/2023).

The registry never sees a citizen ID, ID card number or tax code in clear: connectors call
`IdentifierHasher.hash` while mapping, and only the HMAC-SHA256 digest is stored. The same
identifier always gives the same key (so dossiers of one applicant can be counted together),
but without the secret key the digest cannot be reversed by trying every possible ID.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

from pydantic import SecretStr

# The prefix of an identifier already hashed (a payload kept in quarantine holds it so).
HASHED = "hmac-sha256:"
# Only for demos and tests; settings refuse it outside demo mode.
DEMO_HASH_KEY = "dossierhub-demo-key-not-for-production"


class IdentifierHasher:
    def __init__(self, key: SecretStr) -> None:
        self._digest = _hmac_sha256(key.get_secret_value().encode())

    def hash(self, identifier: object) -> str | None:
        """The keyed hash of an identifier, normalised (digits and letters only, upper case)."""
        if identifier is None:
            return None
        normalised = _normalised(identifier)
        if not normalised:
            return None
        return self._digest(normalised.encode())

    def hash_many(self, identifiers: Iterable[object]) -> list[str | None]:
        """`hash()` of each identifier, in order, computing each distinct value once.

        The columnar sync hashes a whole column at a time: an applicant with many dossiers
        costs one HMAC.
        """
        # Keyed by type too: 1 and True are equal, but str() tells them apart.
        values = [(value.__class__, value) for value in identifiers]
        done: dict[tuple[type, object], str | None] = {}
        digest = self._digest
        for typed in values:
            if typed not in done:
                value = typed[1]
                normalised = None if value is None else _normalised(value)
                done[typed] = digest(normalised.encode()) if normalised else None
        return [done[typed] for typed in values]

    def __repr__(self) -> str:
        return "IdentifierHasher(key=**********)"


def _hmac_sha256(key: bytes) -> Callable[[bytes], str]:
    """HMAC-SHA256 under `key` (RFC 2104), as a hex digest, with the key's two padded blocks
    hashed once: each identifier then costs two copies of a SHA-256 state, about a quarter of
    what `hmac.digest` costs per call (it sets the key up again every time)."""
    block = hashlib.sha256().block_size
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in key)).copy
    outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in key)).copy

    def digest(message: bytes) -> str:
        state = inner()
        state.update(message)
        done = outer()
        done.update(state.digest())
        return done.hexdigest()

    return digest


def _normalised(identifier: object) -> str:
    """Digits and letters only, upper case: `0101234567-001` and `0101234567001` are one."""
    text = str(identifier)
    undashed = text.replace("-", "")
    if undashed.isascii() and undashed.isalnum():  # the usual shape, without a char loop
        return undashed.upper()
    return "".join(ch for ch in text if ch.isalnum()).upper()
