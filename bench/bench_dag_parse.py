"""DAG parse time: DagBag load per file and in total (each in a fresh interpreter, cold imports).

Run: ``.venv/bin/python bench/bench_dag_parse.py [--repeat N]``. Prints a table of the median
wall time per file and for the whole folder, next to the baseline of a trivial DAG file parsed the
same way in the same run (the cost of importing Airflow itself), so the figures read as
"what our DAG files add".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_PROBE = """
import json, sys, time
t0 = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag
t1 = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "parse_s": t2 - t1, "dags": len(bag.dags),
                  "errors": {k: str(v)[:200] for k, v in bag.import_errors.items()}}))
"""

_TRIVIAL_DAG = '''"""Baseline: the smallest Airflow 3 DAG."""
from airflow.sdk import dag, task

@dag(dag_id="baseline", schedule=None, tags=["bench"])
def baseline():
    @task
    def noop():
        return 1
    noop()

baseline()
'''


def _measure(target: Path, env: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(target)], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="ogiri-bench-airflow-")
    env = dict(
        os.environ,
        AIRFLOW_HOME=home,
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        PYTHONPATH=os.pathsep.join([str(REPO / "plugins"), str(REPO)]),
    )
    baseline_dir = Path(tempfile.mkdtemp(prefix="ogiri-bench-dags-"))
    (baseline_dir / "baseline.py").write_text(_TRIVIAL_DAG)
    targets = [("baseline (trivial DAG)", baseline_dir / "baseline.py")]
    targets += [(p.name, p) for p in sorted((REPO / "dags").glob("*.py"))]
    targets.append(("dags/ (all files)", REPO / "dags"))

    rows = []
    for label, target in targets:
        runs = [_measure(target, env) for _ in range(args.repeat)]
        if runs[-1]["errors"]:
            raise SystemExit(f"{label}: import errors {runs[-1]['errors']}")
        rows.append((label, statistics.median(r["parse_s"] for r in runs), runs[-1]["dags"]))
    base = rows[0][1]
    print(f"DAG parse time (median of {args.repeat} cold runs; Airflow import excluded)")
    print(f"{'target':32} {'dags':>4} {'parse ms':>9} {'x baseline':>10}")
    for label, secs, dags in rows:
        print(f"{label:32} {dags:>4} {secs * 1000:>9.1f} {secs / base:>10.1f}")


if __name__ == "__main__":
    main()
