"""Personal identifiers are replaced by a keyed hash at the edge (Decree 13/2023).

The registry never sees a citizen ID, ID card number or tax code in clear: connectors call
`IdentifierHasher.hash` while mapping, and only the HMAC-SHA256 digest is stored. The same
identifier always gives the same key (so dossiers of one applicant can be counted together),
but without the secret key the digest cannot be reversed by trying every possible ID.
"""

from __future__ import annotations

import hashlib
import hmac

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
        normalised = "".join(ch for ch in str(identifier) if ch.isalnum()).upper()
        if not normalised:
            return None
        return hmac.new(self._key, normalised.encode(), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "IdentifierHasher(key=**********)"
