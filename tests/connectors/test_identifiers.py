"""The identifier hasher: one keyed hash per identifier, the same one by value or by column."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from connectors.identifiers import IdentifierHasher

HASHER = IdentifierHasher(SecretStr("identifiers-test-key-" + "i" * 32))
IDENTIFIERS = st.one_of(
    st.none(),
    st.text(max_size=20),
    st.from_regex(r"\d{10}(-?\d{3})?|\d{12}|\d{9}", fullmatch=True),
    st.integers(),
    st.booleans(),
)


@given(st.lists(IDENTIFIERS, max_size=30))
def test_hash_many_equals_hash_of_each_value(values: list[object]) -> None:
    assert HASHER.hash_many(values) == [HASHER.hash(value) for value in values]


def test_hash_is_the_hmac_sha256_of_the_normalised_identifier() -> None:
    expected = hmac.new(
        ("identifiers-test-key-" + "i" * 32).encode(), b"0101234567001", hashlib.sha256
    ).hexdigest()
    assert HASHER.hash(" 0101234567-001 ") == expected
    assert HASHER.hash_many(["0101234567-001", "0101234567001"]) == [expected, expected]


@given(key=st.binary(min_size=1, max_size=200), value=st.text(min_size=1, max_size=40))
def test_the_hash_is_the_standard_hmac_sha256_for_any_key_and_identifier(
    key: bytes, value: str
) -> None:
    """The hasher precomputes the key's padded blocks; keys longer than SHA-256's block are
    hashed first, as RFC 2104 says. Any slip there changes every key in the registry."""
    hasher = IdentifierHasher(SecretStr(key.decode("latin-1")))
    expected = hmac.new(key.decode("latin-1").encode(), value.encode(), hashlib.sha256)
    assert hasher._digest(value.encode()) == expected.hexdigest()


def test_hash_many_tells_equal_values_of_other_types_apart() -> None:
    assert HASHER.hash_many([1, True, "1"]) == [HASHER.hash(1), HASHER.hash(True), HASHER.hash("1")]
    assert HASHER.hash(1) != HASHER.hash(True)
    assert HASHER.hash_many(["", " - ", None]) == [None, None, None]
