"""Statistics for the office: daily rollups, indicators, coverage, reconciliation, freshness.

Three modules, one per role: `rollups` builds and refreshes the case table's rollups as data
lands, `indicators` reads them (indicators, open and overdue cases, coverage), `sources`
compares each source with the registry (reconciliation, quarantine, freshness). Callers use
`from dossierhub import stats` and `stats.<name>`, whichever module holds it.

`refresh` brings the case table and the daily rollup up to date with the registry, touching
only the cases and days changed since the last refresh. Indicator queries then read the
rollup: their cost grows with the number of groups and days asked for, not with dossiers.

Definitions (local Asia/Ho_Chi_Minh dates throughout; docs/statistics.md has each in full):

* received: cases whose first receipt falls in the period, except those refused at intake
  (status 3), which are counted apart as `refused_intake`; online rate = online ÷ all
  received (in person, online and postal alike: the national portal's convention);
  "online-capable" restricts to full/partial online procedures;
* resolved: cases in status 9 or 10 whose finishing time falls in the period; early =
  finished on a day before the due day, on time = otherwise not after the due time, late =
  after it; on-time rate = (early + on time) ÷ resolved cases that have a due time. Withdrawn
  (7) and stopped (8) cases are their own figures, on the day they ended, never resolved;
* online payment rate = paid online ÷ cases with a fee (fee-exempt cases excluded);
* full online and digitisation rates are over the received cases whose source reports the
  field (service level, digitised documents); with none they are None ("not reported"), and
  the coverage figures say what share of received cases carry the field;
* open at a moment = received before it and, by the authoritative copy's status history as
  it stood then, neither resolved, withdrawn nor stopped; overdue = open and past its due
  time at that moment. A moment after now is judged at now.
"""

from dossierhub.stats.indicators import (
    DIMENSIONS,
    MEASURES,
    TIME_GRAINS,
    coverage,
    derive,
    indicators,
    local_midnight,
    open_at_end,
    open_moment,
    parse_grouping,
)
from dossierhub.stats.rollups import RefreshResult, rebuild, rebuild_days, rebuild_months, refresh
from dossierhub.stats.sources import (
    ALL_TIME,
    ALL_TIME_PERIOD,
    freshness,
    latest_reconciliation,
    place_quarantine,
    quarantine_counts,
    reconcile,
    record_reconciliation,
    registry_counts,
)

__all__ = [
    "ALL_TIME",
    "ALL_TIME_PERIOD",
    "DIMENSIONS",
    "MEASURES",
    "TIME_GRAINS",
    "RefreshResult",
    "coverage",
    "derive",
    "freshness",
    "indicators",
    "latest_reconciliation",
    "local_midnight",
    "open_at_end",
    "open_moment",
    "parse_grouping",
    "place_quarantine",
    "quarantine_counts",
    "rebuild",
    "rebuild_days",
    "rebuild_months",
    "reconcile",
    "record_reconciliation",
    "refresh",
    "registry_counts",
]
