"""SageMaker Processing entry point: score one or more ``model.tar.gz`` on a frozen test manifest.

``python evaluate.py --models /opt/ml/processing/models --test /opt/ml/processing/test
[--images DIR] --output /opt/ml/processing/evaluation [--beam-width N] [--samples 20]``

``--models`` holds one sub-directory per model (its name is the model's name in the report), each
with a ``model.tar.gz``. Every model decodes the same test images with the same decoding (the
model's own default beam width unless ``--beam-width`` is given). Writes ``evaluation.json``:
``{"models": {"<name>": {"metrics": {...}, "samples": [...]}}, "test": {...}}``; a model that cannot
be loaded gets ``{"error": "..."}`` instead, and the exit status is 1 when no model could be scored.

Rated test set (issue 16): when test records carry a human ``rating`` (1-5), each model's metrics
also hold ``rated_mean_rating``, ``rated_test_images`` and ``rated_exact_matches``. For every test
image with at least one rated caption, the model's caption is matched to the rated caption of that
image most similar to it (``difflib.SequenceMatcher`` ratio on NFC-normalised, whitespace-stripped
text: 1.0 for an identical caption; ties go to the first in manifest order); ``rated_mean_rating``
is the mean rating of the matched captions over those images, ``rated_test_images`` their number and
``rated_exact_matches`` how many matches were identical. A proxy: it says which kind of human-rated
caption the model writes most like. Without any rated test record the three keys are absent (not 0).
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import sys
import tarfile
import tempfile
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ogiri_captioner.artifacts import load_model_dir  # noqa: E402
from ogiri_captioner.data import open_image, read_manifests  # noqa: E402
from ogiri_captioner.metrics import caption_metrics, format_metrics  # noqa: E402

log = logging.getLogger("evaluate")


def find_models(models_dir: Path) -> dict[str, Path]:
    """``{name: path to model.tar.gz}`` for each sub-dir (or the dir itself) holding one."""
    if not models_dir.is_dir():
        raise ValueError(f"--models {models_dir} is not a directory")
    found = {p.parent.name if p.parent != models_dir else "model": p
             for p in sorted(models_dir.glob("*/model.tar.gz")) + sorted(models_dir.glob("model.tar.gz"))}
    if not found:
        raise ValueError(f"no model.tar.gz under {models_dir} (expected <name>/model.tar.gz)")
    return found


def _norm(caption: str) -> str:
    return unicodedata.normalize("NFC", caption).strip()


def rated_test_metrics(hyps: dict[str, str], rated: dict[str, list[tuple[str, float]]]) -> dict:
    """``rated_mean_rating``, ``rated_test_images``, ``rated_exact_matches`` of the model captions ``hyps``
    (``{image: caption}``) against ``rated`` (``{image: [(caption, rating), ...]}``, rated captions only;
    see the module docstring); ``{}`` when no image of ``hyps`` has a rated caption."""
    matched, exact = [], 0
    for image, caption in hyps.items():
        options = rated.get(image)
        if not options:
            continue
        hyp = _norm(caption)
        best = max(options, key=lambda opt: difflib.SequenceMatcher(None, hyp, _norm(opt[0])).ratio())
        matched.append(best[1])
        exact += _norm(best[0]) == hyp
    if not matched:
        return {}
    return {"rated_mean_rating": sum(matched) / len(matched), "rated_test_images": len(matched),
            "rated_exact_matches": exact}


def score_model(tarball: Path, refs: dict[str, list[str]], beam_width: int | None, n_samples: int,
                rated: dict[str, list[tuple[str, float]]] | None = None) -> dict:
    """Metrics and sample captions of one packed model on the grouped test references."""
    with tempfile.TemporaryDirectory(prefix="ogiri-eval-") as tmp:
        with tarfile.open(tarball) as tar:
            tar.extractall(tmp, filter="data")
        captioner = load_model_dir(tmp)
        keys = sorted(refs)
        results = []
        for i in range(0, len(keys), captioner.batch_size):
            chunk = keys[i : i + captioner.batch_size]
            results.extend(captioner.caption([open_image(k) for k in chunk], beam_width))
    hyps = {k: r["caption"] for k, r in zip(keys, results, strict=True)}
    metrics = caption_metrics(refs, hyps)
    metrics.update(rated_test_metrics(hyps, rated or {}))
    metrics["num_images"] = len(keys)
    metrics["beam_width"] = beam_width or captioner.default_beam_width
    samples = [{"image": Path(k).name, "caption": r["caption"], "score": r["score"], "references": refs[k]}
               for k, r in list(zip(keys, results, strict=True))[:n_samples]]
    return {"metrics": metrics, "samples": samples, "config": captioner.config}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(description="Score model.tar.gz files on a test manifest.")
    p.add_argument("--models", default="/opt/ml/processing/models")
    p.add_argument("--test", default="/opt/ml/processing/test")
    p.add_argument("--images", default=None, help="images root (default: relative to the manifest)")
    p.add_argument("--output", default="/opt/ml/processing/evaluation")
    p.add_argument("--beam-width", "--beam_width", type=int, default=None)
    p.add_argument("--samples", type=int, default=20)
    args = p.parse_args(argv)
    try:
        models = find_models(Path(args.models))
        records = read_manifests(args.test, args.images)
    except ValueError as exc:
        log.error("bad evaluation input: %s", exc)
        return 2
    refs: dict[str, list[str]] = {}
    rated: dict[str, list[tuple[str, float]]] = {}
    for r in records:
        refs.setdefault(str(r.image), []).append(r.caption)
        if r.rating is not None:
            rated.setdefault(str(r.image), []).append((r.caption, r.rating))
    report = {"models": {}, "test": {"manifest": str(args.test), "images": len(refs), "records": len(records),
                                     "rated_images": len(rated)}}
    for name, tarball in models.items():
        try:
            report["models"][name] = score_model(tarball, refs, args.beam_width, args.samples, rated)
            print(f"model={name} " + format_metrics(report["models"][name]["metrics"]), flush=True)
        except Exception as exc:  # noqa: BLE001 - one broken candidate must not hide the others
            log.exception("model %s could not be scored", name)
            report["models"][name] = {"error": f"{type(exc).__name__}: {exc}"}
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.json").write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0 if any("metrics" in m for m in report["models"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
