"""Peak memory of one bomb-heavy ingestion chunk: decode budget on vs off, same run, same images.

Run: ``.venv/bin/python bench/bench_ingest_memory.py [--threads 16] [--budget-mb 512]``.

One chunk of rows whose images sit just under the 40 MP pixel cap (1-bit PNG "bombs" of a few KB
that decode to 36 MP, 36 MP RGBA PNGs, 36 MP palette GIFs) plus ordinary JPEGs, served from
127.0.0.1, goes through the real chunk path (:func:`ogiri.ingest.pipeline.process_chunk`: SSRF-safe
fetch, Pillow normalisation, conditional S3 put, labels, DynamoDB writes) on ``--threads`` threads,
against moto in the same process (no network). Each contender runs in a fresh subprocess and
reports its peak RSS (``ru_maxrss``) and the rise over its RSS just before the chunk:

* **unbounded**: ``decode_memory_bytes`` = 1 TiB, i.e. only the thread count limits concurrent
  decodes. Everything else is today's code (the in-mode reduce and the ``mallopt`` call included),
  so the pair isolates the budget; it is not a measurement of the code before this change;
* **budget**: ``decode_memory_bytes`` = ``--budget-mb`` (``OGIRI_DECODE_MEMORY_MB``, default 512).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for p in (REPO / "plugins", REPO):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
             "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}.items():
    os.environ[k] = v
SIDE = 6000  # 36 MP, under the default 40 MP cap: these are decoded, not refused


def make_images(root: Path, bombs: int, rgba: int, gifs: int, jpegs: int) -> list[str]:
    """Write the chunk's images (each distinct, so none is deduplicated); their file names."""
    from PIL import Image

    names = []

    def save(img, name: str, fmt: str) -> None:
        img.save(root / name, fmt)
        names.append(name)

    for i in range(bombs):
        save(Image.new("1", (SIDE - i, SIDE), 1), f"bomb-{i}.png", "PNG")
    for i in range(rgba):
        save(Image.new("RGBA", (SIDE - i, SIDE), (10, 20, 30, 128)), f"rgba-{i}.png", "PNG")
    for i in range(gifs):
        save(Image.new("P", (SIDE - i, SIDE), 3), f"palette-{i}.gif", "GIF")
    for i in range(jpegs):
        save(Image.new("RGB", (640, 480 + i), (200, 30, 30)), f"photo-{i}.jpg", "JPEG")
    return names


def run_chunk(root: Path, names: list[str], threads: int, budget_bytes: int) -> dict:
    """One chunk through ``process_chunk`` against moto; peak RSS figures in MiB."""
    import boto3
    from moto import mock_aws

    from ogiri.ingest.fetch import FetchPolicy, SafeFetcher
    from ogiri.ingest.labels import Labeler
    from ogiri.ingest.pipeline import ChunkJob, IngestClients, process_chunk
    from ogiri.ingest.rows import Row
    from ogiri.provision import ensure_resources
    from ogiri_local.image_server import ImageServer

    with mock_aws(), ImageServer(root) as server:
        clients = IngestClients(*(boto3.client(s) for s in ("s3", "dynamodb", "rekognition")))
        ensure_resources(clients.s3, clients.dynamodb, "bench-bucket", "bench-table")
        rows = [Row("landing/bench.csv", i + 1, f"{server.base_url}/{n}", f"caption {i}") for i, n in enumerate(names)]
        fetcher = SafeFetcher(FetchPolicy(private_host_allowlist=(server.allowlist_entry,)), s3_client=clients.s3)
        job = ChunkJob("bench-bucket", "bench-table", "2026-01-01", "bench", 40_000_000, 512,
                       concurrency=threads, decode_memory_bytes=budget_bytes)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        result = process_chunk(rows, chunk=0, job=job, clients=clients, fetcher=fetcher, labeler=Labeler(clients.rekognition, tps=0, min_confidence=70.0))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"accepted": result.accepted, "rejected": len(result.rejects), "before_mib": round(before),
            "peak_mib": round(peak), "rise_mib": round(peak - before)}


def contender(root: Path, names: list[str], threads: int, budget_bytes: int) -> dict:
    """Run one contender in a fresh interpreter (so ``ru_maxrss`` is its own)."""
    code = (f"import json, sys; sys.path.insert(0, {str(REPO / 'bench')!r}); import bench_ingest_memory as b; "
            f"from pathlib import Path; print(json.dumps(b.run_chunk(Path({str(root)!r}), {names!r}, {threads}, {budget_bytes})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    if out.returncode:
        sys.exit(f"contender failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Build the chunk once, run both contenders, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--budget-mb", type=int, default=512)
    ap.add_argument("--bombs", type=int, default=12)
    ap.add_argument("--rgba", type=int, default=6)
    ap.add_argument("--gifs", type=int, default=4)
    ap.add_argument("--jpegs", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ingest-memory-") as tmp:
        names = make_images(Path(tmp), args.bombs, args.rgba, args.gifs, args.jpegs)
        wire = sum((Path(tmp) / n).stat().st_size for n in names)
        print(f"chunk: {len(names)} rows, {wire / 2**20:.1f} MiB on the wire, {args.threads} threads")
        results = {
            "unbounded": contender(Path(tmp), names, args.threads, 2**40),
            f"budget {args.budget_mb} MiB": contender(Path(tmp), names, args.threads, args.budget_mb * 2**20),
        }
    print("| contender | accepted | peak RSS (MiB) | rise over pre-chunk RSS (MiB) |")
    print("|---|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['accepted']} | {r['peak_mib']} | {r['rise_mib']} |")
    base, ours = results["unbounded"]["rise_mib"], results[f"budget {args.budget_mb} MiB"]["rise_mib"]
    print(f"decode budget cuts the chunk's memory rise {base / max(ours, 1):.1f}x")


if __name__ == "__main__":
    main()
