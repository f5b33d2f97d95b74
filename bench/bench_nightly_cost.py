"""The list-price cost of one nightly cycle on paper (issue 17): no AWS calls, no clocks.

Run: ``.venv/bin/python bench/bench_nightly_cost.py [--new-images 10000] [--dataset-images 100000]
[--candidates 1 3] [--epochs 10]`` (``make bench`` runs it with the defaults).

A night at ``--new-images`` new captioned images: ingest (Rekognition ``DetectLabels`` per image, S3
requests and storage, DynamoDB writes and reads), training on ``ml.g5.xlarge`` (Managed Spot and
on-demand) for K candidates, the one evaluation job, the canary (blue/green) endpoint update,
monitoring windows and the nightly batch transform. It prints the table next to the seed MLOps
design's "$5/day" estimate and an always-on ``ml.m5.large`` endpoint.

Inputs, and where they come from:

* **Per-image times** are ours, measured on the shared 2-core CPU dev box (bench/README.md):
  ResNet-50 feature extraction 11.3 images/s and cached-feature decoder steps 537.2 images/s
  (``bench_training.py``, 2026-11-22); serving 82.2 ms/image at batch 32 with beam 3 (same run);
  AWS calls per ingested row (``bench_ingest.py``, 2026-12-03). No GPU was available to measure
  ``ml.g5.xlarge`` (A10G) throughput, so the GPU jobs are priced at the CPU rates: an upper bound on
  their time. ``--gpu-speedup`` divides those times if you have a measured figure.
* **Instance prices** are ``ogiri.config.DEFAULT_INSTANCE_PRICES`` (the table every run's ledger
  cost uses): SageMaker AI on-demand list prices, us-east-1, per instance-hour, from
  https://aws.amazon.com/sagemaker/ai/pricing/ (training, processing, real-time inference and
  batch transform tabs; read for the price table in config.py and re-checked against the figures
  below on 2026-12-03, from what this machine could reach of the page).
* **Managed Spot** savings are not a list price: SageMaker bills the Spot seconds at a variable
  discount ("up to 90%", https://docs.aws.amazon.com/sagemaker/latest/dg/model-managed-spot-training.html).
  ``--spot-discount`` (default 0.70) is an assumption; the ledger records the real
  ``BillableTimeInSeconds`` of each job.
* **Other list prices** (us-east-1, as published on 2026-12-03 on the pages cited; check them for
  your Region and date):

  - Rekognition Image, Group 2 APIs (``DetectLabels``), first 1M images/month: $0.001 per image,
    https://aws.amazon.com/rekognition/pricing/
  - S3 Standard: PUT/COPY/POST/LIST $0.005 per 1,000, GET/HEAD $0.0004 per 1,000, storage
    $0.023 per GB-month (first 50 TB), https://aws.amazon.com/s3/pricing/
  - DynamoDB on-demand (Standard table class): $0.625 per million write request units, $0.125 per
    million read request units, https://aws.amazon.com/dynamodb/pricing/on-demand/
  - Airflow workers (MWAA or self-hosted) are not priced here: they are the same whatever the night
    does, and the seed estimate leaves them out too.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "plugins"))

PRICES_READ_ON = "2026-12-03"
REKOGNITION_PER_IMAGE = 0.001
S3_PUT_PER_1000 = 0.005
S3_GET_PER_1000 = 0.0004
S3_GB_MONTH = 0.023
DDB_PER_MILLION_WRU = 0.625
DDB_PER_MILLION_RRU = 0.125

# Measured (bench/README.md): images/s on the CPU, and AWS calls per distinct ingested image.
EXTRACT_IMAGES_PER_S = 11.3
DECODER_IMAGES_PER_S = 537.2
SERVE_S_PER_IMAGE = 0.0822
INGEST_S3_PUTS_PER_IMAGE = 1.013 + 0.003  # conditional image put + staging, ListObjectsV2
INGEST_S3_GETS_PER_IMAGE = 0.013 + 0.010  # HeadObject + GetObject (plan and chunk staging)
INGEST_DDB_WRU_PER_IMAGE = 1.0  # one item (< 1 KB) per caption row; BatchWriteItem bills per item
INGEST_DDB_RRU_PER_IMAGE = 2 * 0.5  # existence check + read-back, eventually consistent, < 4 KB
IMAGE_MB = 0.25  # a normalised JPEG (the ingest normalises to at most 1024 px)

SEED_ESTIMATE_PER_DAY = 5.0


@dataclass(frozen=True)
class Night:
    """What one nightly cycle does (the arguments of this script)."""

    new_images: int
    dataset_images: int
    test_images: int
    epochs: int
    candidates: int
    gpu_speedup: float
    spot_discount: float
    job_overhead_s: float
    canary_minutes: float
    monitor_windows: int
    monitor_minutes: float


def _hours(seconds: float) -> float:
    return seconds / 3600.0


def training_seconds(night: Night) -> float:
    """One candidate's billable seconds: extract the new images' features once (the cache keeps the
    rest), then ``epochs`` decoder passes over the whole dataset, plus container start-up."""
    extract = night.new_images / EXTRACT_IMAGES_PER_S
    epochs = night.epochs * night.dataset_images / DECODER_IMAGES_PER_S
    return (extract + epochs) / night.gpu_speedup + night.job_overhead_s


def ingest_rows(night: Night) -> list[tuple[str, str, float]]:
    """(line, basis, USD) of the ingest of the night's new images."""
    n = night.new_images
    s3_requests = n * (INGEST_S3_PUTS_PER_IMAGE * S3_PUT_PER_1000 + INGEST_S3_GETS_PER_IMAGE * S3_GET_PER_1000) / 1000
    storage = n * IMAGE_MB / 1024 * S3_GB_MONTH / 30  # one day of the night's new bytes
    ddb = n * (INGEST_DDB_WRU_PER_IMAGE * DDB_PER_MILLION_WRU + INGEST_DDB_RRU_PER_IMAGE * DDB_PER_MILLION_RRU) / 1e6
    return [
        ("ingest: Rekognition DetectLabels", f"{n:,} images x ${REKOGNITION_PER_IMAGE}", n * REKOGNITION_PER_IMAGE),
        ("ingest: S3 requests", f"{INGEST_S3_PUTS_PER_IMAGE:.3f} PUT + {INGEST_S3_GETS_PER_IMAGE:.3f} GET / image",
         s3_requests),
        ("ingest: S3 storage (new bytes, 1 day)", f"{n * IMAGE_MB / 1024:.2f} GB", storage),
        ("ingest: DynamoDB on-demand", f"{INGEST_DDB_WRU_PER_IMAGE:g} WRU + {INGEST_DDB_RRU_PER_IMAGE:g} RRU / image",
         ddb),
    ]


def sagemaker_rows(night: Night, prices: dict[str, float]) -> list[tuple[str, str, float]]:
    """(line, basis, USD) of the SageMaker jobs of the night, training on-demand (Spot is derived)."""
    g5, m5x = prices["ml.g5.xlarge"], prices["ml.m5.xlarge"]
    train_s = training_seconds(night)
    models = night.candidates + 1  # every candidate and the champion, in one job
    eval_s = models * night.test_images * SERVE_S_PER_IMAGE + night.job_overhead_s
    transform_s = night.new_images * SERVE_S_PER_IMAGE + night.job_overhead_s
    monitor_s = night.monitor_windows * night.monitor_minutes * 60
    return [
        (f"training: {night.candidates} x ml.g5.xlarge on-demand",
         f"{night.candidates} x {train_s / 60:.1f} min at ${g5}/h", night.candidates * _hours(train_s) * g5),
        ("evaluation: ml.m5.xlarge processing", f"{models} models x {night.test_images:,} test images, "
         f"{eval_s / 60:.1f} min at ${m5x}/h", _hours(eval_s) * m5x),
        ("canary update: 2nd ml.g5.xlarge while blue/green", f"{night.canary_minutes:g} min at ${g5}/h",
         night.canary_minutes / 60 * g5),
        ("monitoring windows: ml.m5.xlarge processing", f"{night.monitor_windows} x {night.monitor_minutes:g} min",
         _hours(monitor_s) * m5x),
        ("batch transform: ml.m5.xlarge", f"{night.new_images:,} images, {transform_s / 60:.1f} min",
         _hours(transform_s) * m5x),
    ]


def table(night: Night, prices: dict[str, float]) -> list[tuple[str, str, float]]:
    """Every line of the night, then the totals with training on Spot and on-demand."""
    rows = ingest_rows(night) + sagemaker_rows(night, prices)
    on_demand = sum(usd for _, _, usd in rows)
    training = next(usd for line, _, usd in rows if line.startswith("training:"))
    spot = on_demand - training * night.spot_discount
    return rows + [
        ("TOTAL, training on Managed Spot", f"training at {1 - night.spot_discount:.0%} of on-demand", spot),
        ("TOTAL, training on-demand", "", on_demand),
    ]


def print_night(night: Night, prices: dict[str, float]) -> tuple[float, float]:
    """Print the table of one night; returns its (Spot, on-demand) totals."""
    rows = table(night, prices)
    print(f"\n{night.new_images:,} new images, {night.dataset_images:,} in the dataset, {night.epochs} epochs, "
          f"K={night.candidates} candidate(s) (list prices us-east-1, read {PRICES_READ_ON})")
    print(f"| {'line':<50} | {'basis':<58} | {'USD':>8} |")
    print(f"|{'-' * 52}|{'-' * 60}|{'-' * 9}:|")
    for line, basis, usd in rows:
        print(f"| {line:<50} | {basis:<58} | {usd:>8.2f} |")
    return rows[-2][2], rows[-1][2]


def main(argv: list[str] | None = None) -> int:
    from ogiri.config import DEFAULT_INSTANCE_PRICES

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--new-images", type=int, default=10_000)
    p.add_argument("--dataset-images", type=int, default=100_000, help="images the night trains on")
    p.add_argument("--test-images", type=int, default=1_000, help="frozen test set size")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--candidates", type=int, nargs="+", default=[1, 3])
    p.add_argument("--gpu-speedup", type=float, default=1.0, help="GPU over measured CPU rate (1: CPU rates)")
    p.add_argument("--spot-discount", type=float, default=0.70, help="assumed Managed Spot saving")
    p.add_argument("--job-overhead-s", type=float, default=300, help="billable start-up per SageMaker job")
    p.add_argument("--canary-minutes", type=float, default=15)
    p.add_argument("--monitor-windows", type=int, default=4)
    p.add_argument("--monitor-minutes", type=float, default=10)
    a = p.parse_args(argv)
    prices = dict(DEFAULT_INSTANCE_PRICES)
    totals = {}
    for k in a.candidates:
        night = Night(a.new_images, a.dataset_images, a.test_images, a.epochs, k, a.gpu_speedup, a.spot_discount,
                      a.job_overhead_s, a.canary_minutes, a.monitor_windows, a.monitor_minutes)
        totals[k] = print_night(night, prices)
    m5_day = 24 * prices["ml.m5.large"]
    g5_day = 24 * prices["ml.g5.xlarge"]
    print("\nPer day, compared:")
    for k, (spot, on_demand) in totals.items():
        print(f"  nightly cycle, K={k}: ${spot:.2f} (Spot) / ${on_demand:.2f} (on-demand) = "
              f"{spot / SEED_ESTIMATE_PER_DAY:.1f}x / {on_demand / SEED_ESTIMATE_PER_DAY:.1f}x the seed's "
              f"${SEED_ESTIMATE_PER_DAY:.0f}/day")
    print(f"  always-on ml.m5.large endpoint: 24 h x ${prices['ml.m5.large']}/h = ${m5_day:.2f}/day "
          f"(${m5_day * 30:.0f}/month)")
    print(f"  always-on ml.g5.xlarge endpoint (our serving default): ${g5_day:.2f}/day")
    spot, _ = totals[min(totals)]
    print(f"  nightly cycle K={min(totals)} (Spot) + an always-on ml.m5.large endpoint: ${spot + m5_day:.2f}/day "
          "(the table above leaves the serving endpoint out; the seed's figure, as quoted in issue 17, "
          "does not say whether it includes one)")
    print(f"  the seed's ${SEED_ESTIMATE_PER_DAY:.0f}/day does not cover Rekognition alone at "
          f"{a.new_images:,} images (${a.new_images * REKOGNITION_PER_IMAGE:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
