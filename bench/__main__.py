"""Run every benchmark in bench/ in turn: ``.venv/bin/python -m bench`` (or ``make bench``).

``python -m bench NAME ... [--option value ...]`` runs only the named ones (with those options),
including those that take minutes and are not in the default set: ``celery_ingest``
(bench/celery_ingest.py: 1 vs 2 Celery workers).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Benchmarks run only when named (minutes each).
OPT_IN = ("celery_ingest",)

if __name__ == "__main__":
    failed = []
    # ``python -m bench NAME... [--option value ...]``: options go to the named scripts
    args = sys.argv[1:]
    first_option = next((i for i, a in enumerate(args) if a.startswith("-")), len(args))
    names, options = args[:first_option], args[first_option:]
    if options and not names:
        sys.exit("options need a benchmark name: python -m bench NAME [--option value ...]")
    unknown = [n for n in names if not (HERE / f"{n}.py").exists()]
    if unknown:
        sys.exit(f"no benchmark {unknown}; known: {[p.stem for p in sorted(HERE.glob('bench_*.py'))] + list(OPT_IN)}")
    scripts = [HERE / f"{n}.py" for n in names] if names else sorted(HERE.glob("bench_*.py"))
    for script in scripts:
        print(f"\n=== {script.name} ===", flush=True)
        if subprocess.run([sys.executable, str(script), *options], cwd=HERE.parent).returncode:
            failed.append(script.name)
    if failed:
        sys.exit(f"benchmarks failed: {', '.join(failed)}")
