"""The connector conformance kit: the promises of `connectors.base`, checked on a real source.

Plain Python, no pytest: `dossierhub connectors test <source>` runs it wherever DossierHub
runs, and an agency can run it from a script:

    from connectors.conformance import Conformance, context_for

    class PermitConformance(Conformance):
        def setup_source(self, tmp_path):      # optional: a fresh source for each check
            self.path = write_sample_export(tmp_path)

        def make_connector(self):
            return PermitConnector(context_for("permits", {"path": str(self.path)}))

        def make_changes(self):                # optional: change the source, return the ids
            return touch_two_permits(self.path)

    for result in PermitConformance().run():
        print(result.outcome, result.promise, result.detail)

In a pytest suite, subclass `connectors.testing.ConnectorConformance` instead (the same hooks):
each check becomes a test. Every check is also a plain function (`check_health`,
`check_mapping`, `check_unique_ids`, `check_pagination`, `check_resume`, `check_changes`,
`check_count`) that raises `ConformanceError` (an `AssertionError`) naming the connector, the
promise broken, the records that break it and what to fix. What is checked:

* `check()` reports the source healthy;
* every record `read()` yields maps to a valid `DossierRecord` of this source and id, or is
  rejected with `RecordRejected` and at least one reason — never another exception — and no
  personal identifier survives in clear, in the record or in the payload kept in quarantine;
* source ids are unique across a full read;
* a read ends within a bound of batches and time, every batch fits the batch size and carries
  a JSON-storable cursor that moves on, and the batch size does not change what is read;
* a read resumed from a saved cursor skips nothing and re-reads only what the look-back
  window allows; from the last cursor of an unchanged source it returns nothing new;
* after `make_changes()` an incremental read returns the changed records and nothing older;
* `count(None)` equals the records read, and `count(period)` the records received in it.

The kit needs to know when a raw record was received and last updated. By default it maps the
record, and for a rejected one falls back to the SQL transport's declared columns; a connector
whose rejected records carry these elsewhere overrides `received_date` / `updated_at`.
"""

from connectors.conformance.checks import (
    Outcome,
    check_changes,
    check_count,
    check_health,
    check_mapping,
    check_pagination,
    check_resume,
    check_unique_ids,
)
from connectors.conformance.failures import ConformanceError, Promise, name_of
from connectors.conformance.reading import (
    Limits,
    Reading,
    ReceivedDate,
    UpdatedAt,
    context_for,
    default_received_date,
    default_updated_at,
    read_bounded,
    resized,
    stored,
)
from connectors.conformance.samples import scratch_database
from connectors.conformance.suite import (
    CheckResult,
    CheckSkipped,
    Conformance,
    SourceConformance,
)

__all__ = [
    "CheckResult",
    "CheckSkipped",
    "Conformance",
    "ConformanceError",
    "Limits",
    "Outcome",
    "Promise",
    "Reading",
    "ReceivedDate",
    "SourceConformance",
    "UpdatedAt",
    "check_changes",
    "check_count",
    "check_health",
    "check_mapping",
    "check_pagination",
    "check_resume",
    "check_unique_ids",
    "context_for",
    "default_received_date",
    "default_updated_at",
    "name_of",
    "read_bounded",
    "resized",
    "scratch_database",
    "stored",
]
