"""The shared scenario: forwarded dossiers are the same for every simulator and never collide."""

from __future__ import annotations

import pytest

from simulators.scenario import SECTORS, forwarded


@pytest.mark.parametrize("seed", range(20))
def test_national_codes_are_unique_across_sectors(seed: int) -> None:
    codes = [
        f.national_code for sector in SECTORS for f in forwarded(seed, sector=sector, count=600)
    ]
    assert len(codes) == len(set(codes)) == 600 * len(SECTORS)


def test_the_same_seed_and_count_give_the_same_dossiers() -> None:
    assert forwarded(3, sector="land", count=50) == forwarded(3, sector="land", count=50)
    assert forwarded(3, sector="land", count=50) != forwarded(4, sector="land", count=50)
