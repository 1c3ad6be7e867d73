"""Personal identifiers are replaced by a keyed hash at the edge (Decree 13/2023).

The registry never sees a citizen ID, ID card number or tax code in clear: connectors call
`IdentifierHasher.hash` while mapping, and only the HMAC-SHA256 digest is stored. The same
identifier always gives the same key (so dossiers of one applicant can be counted together),
but without the secret key the digest cannot be reversed by trying every possible ID.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from pydantic import SecretStr

# The prefix of an identifier already hashed (a payload kept in quarantine holds it so).
HASHED = "hmac-sha256:"
# Only for demos and tests; settings refuse it outside demo mode.
DEMO_HASH_KEY = "dossierhub-demo-key-not-for-production"


class IdentifierHasher:
    def __init__(self, key: SecretStr) -> None:
        self._key = key.get_secret_value().encode()

    def hash(self, identifier: object) -> str | None:
        """The keyed hash of an identifier, normalised (digits and letters only, upper case)."""
        if identifier is None:
            return None
        normalised = _normalised(identifier)
        if not normalised:
            return None
        return hmac.digest(self._key, normalised.encode(), "sha256").hex()

    def hash_many(self, identifiers: Iterable[object]) -> list[str | None]:
        """`hash()` of each identifier, in order, computing each distinct value once.

        The columnar sync hashes a whole column at a time: an applicant with many dossiers
        costs one HMAC, and the one-shot `hmac.digest` skips building an HMAC object.
        """
        # Keyed by type too: 1 and True are equal, but str() tells them apart.
        values = [(value.__class__, value) for value in identifiers]
        done: dict[tuple[type, object], str | None] = {}
        key = self._key
        for typed in values:
            if typed not in done:
                value = typed[1]
                normalised = None if value is None else _normalised(value)
                done[typed] = (
                    hmac.digest(key, normalised.encode(), "sha256").hex() if normalised else None
                )
        return [done[typed] for typed in values]

    def __repr__(self) -> str:
        return "IdentifierHasher(key=**********)"


def _normalised(identifier: object) -> str:
    """Digits and letters only, upper case: `0101234567-001` and `0101234567001` are one."""
    text = str(identifier)
    undashed = text.replace("-", "")
    if undashed.isascii() and undashed.isalnum():  # the usual shape, without a char loop
        return undashed.upper()
    return "".join(ch for ch in text if ch.isalnum()).upper()
