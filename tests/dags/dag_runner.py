"""Runs inside a fresh process with AIRFLOW_HOME and DossierHub settings in its environment.

    python dag_runner.py parse
    python dag_runner.py test DAG_ID [DAG_ID ...]

Prints one JSON document: what the DagBag holds, or the state of each DAG run (and of each
task instance) — the test reads it. A separate process keeps Airflow's global configuration
out of the test session.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from airflow.dag_processing.bundles.manager import DagBundlesManager
from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

DAGS = Path(__file__).resolve().parents[2] / "dags"


def describe(bag: DagBag) -> dict[str, object]:
    dags = {}
    for dag_id, dag in bag.dags.items():
        tasks = {}
        for t in dag.tasks:
            tasks[t.task_id] = {
                "retries": t.retries,
                "timeout_s": t.execution_timeout.total_seconds() if t.execution_timeout else None,
                "exponential_backoff": t.retry_exponential_backoff,
                "outlets": [getattr(o, "uri", str(o)) for o in t.outlets],
                "upstream": sorted(t.upstream_task_ids),
            }
        dags[dag_id] = {
            "timetable": type(dag.timetable).__name__,
            "schedule": getattr(dag.timetable, "expression", None)
            or repr(getattr(dag.timetable, "asset_condition", None)),
            "max_active_runs": dag.max_active_runs,
            "tasks": tasks,
        }
    return {"import_errors": {str(k): str(v) for k, v in bag.import_errors.items()}, "dags": dags}


def main() -> None:
    bag = DagBag(dag_folder=str(DAGS))
    if sys.argv[1] == "parse":
        print(json.dumps(describe(bag)))
        return
    # What the dag processor does before a DAG can run: register the bundle, store the DAGs.
    DagBundlesManager().sync_bundles_to_db()
    sync_bag_to_db(bag, "dags-folder", None)
    runs = {}
    for dag_id in sys.argv[2:]:
        run = bag.dags[dag_id].test()
        runs[dag_id] = {
            "state": str(run.state),
            "tasks": {
                f"{ti.task_id}[{ti.map_index}]": str(ti.state) for ti in run.get_task_instances()
            },
        }
    print("RESULT " + json.dumps(runs))


if __name__ == "__main__":
    main()
