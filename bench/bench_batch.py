"""Batch captioning throughput: captions/s through the transform path on CPU, batch sizes 1 and 32.

Run: ``.venv/bin/python bench/bench_batch.py [--images 64] [--batch-sizes 1 32] [--beam-width 3]``.

What is measured is the product's path end to end, minus Airflow: request files planned by
``ogiri.batch.planning`` → ``CreateTransformJob`` in the local emulator (which runs the real
``code/inference.py`` of a model trained here by ``include/training/train.py``, on the CPU) →
``.out`` files parsed by ``ogiri.batch.results``. For each batch size (images per request,
``SplitType=None``, ``MaxConcurrentTransforms=1``) two jobs run: one with a single request and one
with all images, so the model server's fixed start-up cost is separated from the per-caption cost:

* ``job_s``: wall time of the full job (start-up included), ``captions/s`` = images / ``job_s``;
* ``steady captions/s`` = (images - first request's images) / (``job_s`` - small job's seconds).

The ratio of batch size 32 to batch size 1, both measured in this run, is printed last. The model
is the tiny test model (32 px, ResNet-18 frozen encoder, LSTM), so absolute figures are lower
bounds for the data path rather than a statement about production model speed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for extra in (REPO, REPO / "plugins", REPO / "include" / "training", REPO / "tests" / "batch"):
    sys.path.insert(0, str(extra))

BUCKET = "ogiri-bench"
MODEL = "ogiri-bench-model"


def run_job(s3, sm, run_key: str, refs, batch_size: int, beam_width: int) -> tuple[float, int, int]:
    """Plan, transform and collect one set; returns (job seconds, captioned, failed)."""
    from ogiri.batch.planning import TransformOptions, transform_config, write_input_sets
    from ogiri.batch.results import collect_set

    options = TransformOptions(
        model_name=MODEL, instance_type="ml.m5.xlarge", beam_width=beam_width, batch_size=batch_size
    )
    (input_set,) = write_input_sets(s3, bucket=BUCKET, run_key=run_key, sets=[refs], options=options)
    config = transform_config(input_set, options, run_key=run_key)
    start = time.perf_counter()
    sm.create_transform_job(**config)
    while True:
        desc = sm.describe_transform_job(TransformJobName=config["TransformJobName"])
        if desc["TransformJobStatus"] not in ("InProgress", "Stopping"):
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    if desc["TransformJobStatus"] != "Completed":
        raise RuntimeError(
            f"{config['TransformJobName']} {desc['TransformJobStatus']}: {desc.get('FailureReason')}"
        )
    results = collect_set(s3, input_set, model_name=MODEL, job_status="Completed")
    failed = sum(1 for r in results if not r.ok)
    return elapsed, len(results) - failed, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64, help="images per measured job (default 64)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--beam-width", type=int, default=3)
    args = parser.parse_args()

    from captioner_model import register_model, synthetic_images, train_tiny_model

    from ogiri.batch.planning import ImageRef
    from ogiri_local.emulator import Emulator

    # Everything talks to the local emulator only; never a real account, whatever the shell has.
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(var, None)
    work = Path(tempfile.mkdtemp(prefix="ogiri-bench-batch-"))
    print(f"training the tiny captioner with train.py ({args.images} images needed)...", flush=True)
    model = train_tiny_model(work / "model", n_images=max(30, args.images))
    images = synthetic_images(model, args.images)
    rows = []
    with Emulator(work / "localaws") as emu:
        s3, sm = emu.client("s3"), emu.client("sagemaker")
        s3.create_bucket(Bucket=BUCKET)
        for key, body in images:
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        register_model(s3, sm, BUCKET, model["tarball"], MODEL)
        refs = [ImageRef(BUCKET, key) for key, _ in images]
        for bs in args.batch_sizes:
            small = refs[: min(bs, len(refs))]
            t_small, _, _ = run_job(s3, sm, f"bench:small-{bs}", small, bs, args.beam_width)
            t_full, ok, failed = run_job(s3, sm, f"bench:full-{bs}", refs, bs, args.beam_width)
            steady = (len(refs) - len(small)) / (t_full - t_small) if t_full > t_small else float("nan")
            rows.append((bs, t_small, t_full, ok, failed, len(refs) / t_full, steady))
            print(f"  batch size {bs}: done", flush=True)

    print(f"\nimages per job: {args.images}, beam width {args.beam_width}, MaxConcurrentTransforms 1, CPU")
    print(
        f"{'batch':>5} {'small_job_s':>11} {'job_s':>8} {'ok':>4} {'failed':>6} {'captions/s':>10} {'steady/s':>9}"
    )
    for bs, t_small, t_full, ok, failed, rate, steady in rows:
        print(f"{bs:>5} {t_small:>11.2f} {t_full:>8.2f} {ok:>4} {failed:>6} {rate:>10.2f} {steady:>9.2f}")
    by_size = {r[0]: r for r in rows}
    if 1 in by_size and len(by_size) > 1:
        base = by_size[1]
        for bs, row in by_size.items():
            if bs != 1:
                print(
                    f"batch {bs} vs batch 1: captions/s x{row[5] / base[5]:.2f}, steady captions/s x{row[6] / base[6]:.2f}"
                )


if __name__ == "__main__":
    main()
