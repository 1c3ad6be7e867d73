"""The whole reference province on one machine: all five sector systems, from one seed.

`running(folder, rows=...)` builds the SQL databases and the export folder under `folder`,
starts the two HTTP services on 127.0.0.1, and yields each source's configuration (as the
sources file would give it) with the truth its simulator reports. The portal forwards to
Social Insurance, Finance and Land the same dossiers those systems receive (one shared
scenario), so linkage has real cross-system cases to find.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulators import finance, land, one_stop, social_insurance, tax

SEED = 2026
MALFORMED = 0.02


@dataclass(frozen=True)
class System:
    name: str
    connector: str
    description: str
    settings: dict[str, Any]
    rows: int  # how many records the system holds, by its own truth


@contextmanager
def running(folder: Path, *, rows: int = 5000) -> Iterator[list[System]]:
    folder.mkdir(parents=True, exist_ok=True)
    forwarded = max(10, rows // 25)
    tax_url = f"sqlite:///{folder / 'tax.db'}"
    land_url = f"sqlite:///{folder / 'land.db'}"
    drop = folder / "finance-drop"
    days = 30
    systems = [
        System(
            "tax",
            "tax",
            "Tax office (SQL)",
            {"url": tax_url},
            tax.generate(tax_url, rows=rows, seed=SEED, malformed_share=MALFORMED).rows,
        ),
        System(
            "land",
            "land",
            "Land registration (SQL)",
            {"url": land_url},
            land.generate(
                land_url, rows=rows // 2, seed=SEED, malformed_share=MALFORMED, forwarded=forwarded
            ).rows,
        ),
        System(
            "finance",
            "finance",
            "Finance department (export files)",
            {"folder": str(drop)},
            finance.generate(
                drop,
                days=days,
                rows_per_day=max(1, rows // (2 * days)),
                seed=SEED,
                malformed_share=MALFORMED,
                forwarded=forwarded,
            ).rows,
        ),
    ]
    with ExitStack() as stack:
        insurance = stack.enter_context(
            social_insurance.SocialInsuranceApi(
                rows=rows, seed=SEED, malformed_share=MALFORMED, forwarded=forwarded
            )
        )
        portal = stack.enter_context(
            one_stop.OneStopApi(
                rows=rows,
                seed=SEED,
                malformed_share=MALFORMED,
                forwarded={"social_insurance": forwarded, "finance": forwarded, "land": forwarded},
            )
        )
        systems += [
            System(
                "social_insurance",
                "social_insurance",
                "Social Insurance (REST, OAuth2)",
                {
                    "base_url": insurance.url,
                    "client_id": social_insurance.DEMO_CLIENT_ID,
                    "client_secret": social_insurance.DEMO_CLIENT_SECRET,
                },
                insurance.truth.rows,
            ),
            System(
                "one_stop",
                "one_stop",
                "Provincial one-stop portal (REST, API key)",
                {"base_url": portal.url, "api_key": one_stop.DEMO_API_KEY},
                portal.truth.rows,
            ),
        ]
        yield systems
