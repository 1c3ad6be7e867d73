"""Is a source's data in the registry good enough to publish statistics from?

The rule, for the CLI (`dossierhub verify SOURCE`) and the DAGs' verify task alike:

* **quarantine share** — the source's whole unresolved quarantine against its size in the
  registry (dossiers held + quarantined), compared with `max_quarantine_share`. It is measured
  over the source as it stands, not over the rows one run re-read: a run that re-reads
  already-quarantined rows in its look-back window changes nothing, so a rerun with nothing
  changed gets the same, green, answer;
* **reconciliation gap** — the source's own count against the registry's and quarantine's,
  compared with `max_reconciliation_gap` (a snapshot is recorded either way).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from connectors.base import Connector
from dossierhub import stats
from dossierhub.errors import DossierHubError
from dossierhub.settings import SourceConfig


class VerificationFailed(DossierHubError):
    """The source synced, but its data fails the thresholds of the sources file; rerunning
    changes nothing until the source or the thresholds are fixed."""

    def __init__(self, verification: Verification) -> None:
        super().__init__(
            f"source {verification.source!r} failed verification: "
            + "; ".join(verification.problems)
        )
        self.verification = verification


@dataclass(frozen=True)
class Verification:
    source: str
    registry_count: int
    quarantined: int
    quarantine_share: float
    source_count: int | None
    gap: int | None
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "ok": self.ok,
            "registry_count": self.registry_count,
            "quarantined": self.quarantined,
            "quarantine_share": round(self.quarantine_share, 6),
            "source_count": self.source_count,
            "gap": self.gap,
            "problems": list(self.problems),
        }

    def raise_for_problems(self) -> Verification:
        if self.problems:
            raise VerificationFailed(self)
        return self


def verify_source(engine: Engine, connector: Connector, *, config: SourceConfig) -> Verification:
    """Measure the source against its thresholds and record a reconciliation snapshot.

    Asks the source for its count through `connector` (the caller closes it). Returns the
    measurement; `raise_for_problems()` turns a failed one into `VerificationFailed`.
    """
    source = connector.source
    [snapshot] = stats.reconcile(engine, counters={source: connector.count})
    held, quarantined = int(snapshot["registry_count"]), int(snapshot["quarantined"])
    size = held + quarantined
    share = quarantined / size if size else 0.0
    problems = []
    if share > config.max_quarantine_share:
        problems.append(
            f"{quarantined} of its {size} records are in quarantine ({share:.1%}), above "
            f"max_quarantine_share {config.max_quarantine_share:.1%}; see "
            f"`dossierhub quarantine list --source {source}`"
        )
    gap = snapshot["gap"]
    if gap is None:
        problems.append(f"the source did not report its count: {snapshot['error']}")
    elif abs(gap) > config.max_reconciliation_gap:
        problems.append(
            f"reconciliation gap {gap}: the source reports {snapshot['source_count']}, the "
            f"registry holds {held} and quarantine {quarantined} "
            f"(max_reconciliation_gap {config.max_reconciliation_gap})"
        )
    return Verification(
        source=source,
        registry_count=held,
        quarantined=quarantined,
        quarantine_share=share,
        source_count=snapshot["source_count"],
        gap=gap,
        problems=tuple(problems),
    )
