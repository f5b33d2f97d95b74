"""SageMaker Processing entry point: drift of one endpoint's captured window against its model's baseline.

``python monitor.py --capture /opt/ml/processing/capture --model /opt/ml/processing/model
--output /opt/ml/processing/report --endpoint NAME --window-start ISO --window-end ISO
[--model-name NAME] [--max-images 200] [--psi-threshold 0.25] [--js-threshold 0.1]
[--distance-threshold 0.25]``

``--capture`` holds the window's SageMaker data-capture ``*.jsonl`` files (any depth); ``--model`` holds
the serving model's ``model.tar.gz`` (only its ``baseline.json`` and ``model.pt`` members are read).
Writes ``report.json`` and ``constraint_violations.json`` (docs/interfaces.md). Status ``empty`` (no
valid record), ``no_baseline`` (the model has no baseline.json), ``violation`` or ``ok`` all exit 0;
only a crash exits non-zero. Bad capture lines are counted (``invalid_json``, ``undecodable``,
``unsupported_content_type``), never logged: captured content is user data, so only counts and
scores are logged. Rekognition DetectLabels labels at most ``--max-images`` images (region and
endpoint from the environment); when it is denied or unreachable, ``rekognition_labels`` is
reported unavailable instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ogiri_captioner import monitoring  # noqa: E402
from ogiri_captioner.capture import read_capture  # noqa: E402
from ogiri_captioner.statistics import ImageAccumulator, pooled_features, window_features  # noqa: E402

log = logging.getLogger("monitor")
MAX_REKOGNITION_BYTES = 5 * 1024 * 1024  # DetectLabels' limit for Image.Bytes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Drift of a captured endpoint window against the model's baseline.")
    p.add_argument("--capture", default="/opt/ml/processing/capture")
    p.add_argument("--model", default="/opt/ml/processing/model")
    p.add_argument("--output", default="/opt/ml/processing/report")
    p.add_argument("--endpoint", required=True)
    p.add_argument("--window-start", "--window_start", dest="window_start", required=True)
    p.add_argument("--window-end", "--window_end", dest="window_end", required=True)
    p.add_argument("--model-name", "--model_name", dest="model_name", default=None)
    p.add_argument("--max-images", "--max_images", dest="max_images", type=int, default=200,
                   help="at most this many images go to Rekognition DetectLabels (0: none)")
    p.add_argument("--max-embed-images", dest="max_embed_images", type=int, default=1000,
                   help="at most this many images go through the encoder for the embedding statistics")
    p.add_argument("--min-confidence", dest="min_confidence", type=float, default=70.0,
                   help="DetectLabels MinConfidence (as ingest labels the training images)")
    p.add_argument("--max-labels", dest="max_labels", type=int, default=10, help="DetectLabels MaxLabels")
    p.add_argument("--psi-threshold", "--psi_threshold", dest="psi_threshold", type=float, default=None)
    p.add_argument("--js-threshold", "--js_threshold", dest="js_threshold", type=float, default=None)
    p.add_argument("--distance-threshold", "--distance_threshold", dest="distance_threshold", type=float,
                   default=None)
    return p.parse_args(argv)


def find_tarball(model_dir: Path) -> Path | None:
    """The ``model.tar.gz`` under ``model_dir`` (any depth, first in path order), if any."""
    if model_dir.is_file():
        return model_dir
    found = sorted(model_dir.rglob("model.tar.gz")) if model_dir.is_dir() else []
    return found[0] if found else None


def read_member(tarball: Path, name: str, dest: Path | None = None) -> bytes | Path | None:
    """Stream ``tarball`` and return member ``name`` (top level) as bytes, or written to ``dest``; None if absent."""
    with tarfile.open(tarball, "r|gz") as tar:
        for member in tar:
            if member.isfile() and member.name.lstrip("./") == name:
                fileobj = tar.extractfile(member)
                data = fileobj.read() if fileobj else b""
                if dest is None:
                    return data
                dest.write_bytes(data)
                return dest
    return None


def load_baseline(tarball: Path | None) -> dict | None:
    """baseline.json of the model, or None when the model (or its baseline) is missing."""
    if tarball is None:
        return None
    raw = read_member(tarball, "baseline.json")
    if raw is None:
        return None
    baseline = json.loads(raw)
    if not isinstance(baseline, dict) or not isinstance(baseline.get("features"), dict):
        raise ValueError("baseline.json has no 'features' object")
    return baseline


def embedding_of(tarball: Path, records: list) -> object:
    """Pooled encoder features of the records' images with the model's own encoder; None when it cannot be loaded."""
    if not records:
        return None
    from ogiri_captioner.artifacts import load_model_dir

    with tempfile.TemporaryDirectory(prefix="ogiri-monitor-") as tmp:
        try:
            if read_member(tarball, "model.pt", Path(tmp) / "model.pt") is None:
                log.warning("model.tar.gz has no model.pt: embedding unavailable")
                return None
            captioner = load_model_dir(tmp)
        except (ValueError, OSError, RuntimeError, KeyError) as exc:
            log.warning("model could not be loaded (%s): embedding unavailable", type(exc).__name__)
            return None
    return pooled_features(captioner, (r.image() for r in records))


def _rekognition_client():
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client("rekognition", config=Config(connect_timeout=5, read_timeout=30,
                                                     retries={"mode": "standard", "max_attempts": 5}))


def detect_labels(images: list[bytes], min_confidence: float, max_labels: int) -> tuple[list | None, str | None]:
    """Label names per image from DetectLabels; ``(None, reason)`` when Rekognition is denied or unreachable."""
    if not images:
        return None, "no images sent to Rekognition (--max-images 0 or no valid record)"
    try:
        from botocore.exceptions import BotoCoreError, ClientError

        client = _rekognition_client()
    except Exception as exc:  # noqa: BLE001 - no boto3, no region: the feature is unavailable, not a crash
        return None, f"Rekognition client unavailable ({type(exc).__name__})"
    out, skipped = [], 0
    for raw in images:
        if len(raw) > MAX_REKOGNITION_BYTES:
            skipped += 1
            continue
        try:
            resp = client.detect_labels(Image={"Bytes": raw}, MaxLabels=max_labels, MinConfidence=min_confidence)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            if code in ("InvalidImageFormatException", "ImageTooLargeException", "InvalidParameterException"):
                skipped += 1
                continue
            return None, f"Rekognition refused DetectLabels ({code})"
        except BotoCoreError as exc:
            return None, f"Rekognition unreachable ({type(exc).__name__})"
        out.append([str(lb["Name"]) for lb in resp.get("Labels", []) if float(lb.get("Confidence", 0)) >= min_confidence])
    log.info("DetectLabels: %d images labelled, %d skipped", len(out), skipped)
    return (out, None) if out else (None, f"no image could be labelled ({skipped} skipped)")


def compute_features(baseline: dict, tarball: Path, window, args) -> dict:
    """The window's report features: statistics in the baseline's bins, scored against it."""
    acc = ImageAccumulator(baseline)
    for rec in window.records:
        acc.add(rec.thumbnail, rec.size)
    pooled = embedding_of(tarball, window.records[: max(args.max_embed_images, 0)])
    raw = [r.raw for r in window.records[: max(args.max_images, 0)]]
    labels, reason = detect_labels(raw, args.min_confidence, args.max_labels)
    outputs = [(r.caption, r.score) for r in window.records]
    stats = window_features(baseline, acc, pooled, outputs, labels)
    limits = monitoring.thresholds(args.psi_threshold, args.js_threshold, args.distance_threshold)
    features = monitoring.score_window(baseline, stats, limits)
    if labels is None and "rekognition_labels" in features:
        features["rekognition_labels"]["reason"] = reason
    return features


def run(args: argparse.Namespace) -> dict:
    """The report for the window described by ``args`` (also written to ``args.output``)."""
    limits = monitoring.thresholds(args.psi_threshold, args.js_threshold, args.distance_threshold)
    window = read_capture(Path(args.capture))
    log.info("capture: %d records, bad: %s", len(window.records), json.dumps(window.bad))
    tarball = find_tarball(Path(args.model))
    baseline = load_baseline(tarball) if window.records else None
    model_name = args.model_name or ((baseline or {}).get("model") or {}).get("name")
    report = {"endpoint": args.endpoint, "model_name": model_name,
              "window": {"start": args.window_start, "end": args.window_end}, "status": "empty",
              "records": len(window.records), "bad_records": window.bad, "features": {}, "thresholds": limits}
    if not window.records:
        log.info("window is empty")
    elif baseline is None:
        report["status"] = "no_baseline"
        log.info("model %s has no baseline.json (%s)", model_name, "no model.tar.gz" if tarball is None else
                 "not in model.tar.gz")
    else:
        report["features"] = compute_features(baseline, tarball, window, args)
        report["status"] = monitoring.status_of(report["features"])
        for name, f in report["features"].items():
            log.info("feature %s %s=%s threshold=%s violation=%s", name, f["metric"],
                     "n/a" if f["value"] is None else f"{f['value']:.4f}", f["threshold"], f["violation"])
    write_outputs(Path(args.output), report)
    log.info("status=%s records=%d", report["status"], report["records"])
    return report


def write_outputs(out: Path, report: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    violations = monitoring.constraint_violations(report["features"])
    (out / "constraint_violations.json").write_text(json.dumps(violations, ensure_ascii=False, indent=1),
                                                    encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
