"""The model learns the synthetic task; evaluate.py scores the packed model on held-out data."""

import json

import evaluate

from ogiri_captioner.data import read_manifests
from ogiri_captioner.metrics import most_frequent_caption_baseline


def test_heldout_bleu4_clearly_beats_most_frequent_caption(trained, synthetic, tmp_path):
    out = tmp_path / "evaluation"
    rc = evaluate.main(["--models", str(trained["tarball"].parent.parent), "--test", str(synthetic["test"]),
                        "--images", str(synthetic["images"]), "--output", str(out), "--beam-width", "1",
                        "--samples", "5"])
    assert rc == 0
    report = json.loads((out / "evaluation.json").read_text(encoding="utf-8"))
    model = report["models"]["candidate"]
    refs = {}
    for r in read_manifests(synthetic["test"], synthetic["images"]):
        refs.setdefault(str(r.image), []).append(r.caption)
    train_caps = [r.caption for r in read_manifests(synthetic["train"], synthetic["images"])]
    baseline = most_frequent_caption_baseline(train_caps, refs)
    bleu, base = model["metrics"]["bleu4"], baseline["bleu4"]
    print(f"held-out BLEU-4 {bleu:.3f} vs most-frequent-caption {base:.3f}; CIDEr-D "
          f"{model['metrics']['cider']:.2f} vs {baseline['cider']:.2f}")
    assert model["metrics"]["num_images"] == len(refs) == report["test"]["images"]
    assert bleu > base + 0.2 and bleu > 0.6
    assert model["metrics"]["cider"] > baseline["cider"] + 1.0
    assert model["metrics"]["distinct_2"] > baseline["distinct_2"]
    assert len(model["samples"]) == 5 and all(s["caption"] and s["references"] for s in model["samples"])


def test_training_logged_and_saved_the_contract_layout(trained):
    model_dir = trained["model_dir"]
    for name in ("model.pt", "tokenizer.json", "metrics.json", "code/inference.py",
                 "code/ogiri_captioner/__init__.py", "code/ogiri_captioner/serving.py"):
        assert (model_dir / name).is_file(), name
    assert not list(model_dir.rglob("__pycache__"))
    metrics = json.loads((model_dir / "metrics.json").read_text(encoding="utf-8"))
    history = trained["result"]["history"]
    assert metrics["epoch"] == 25 and len(metrics["history"]) == 25
    assert metrics["val_bleu4"] == history[-1]["val_bleu4"]
    assert history[-1]["train_loss"] < history[0]["train_loss"] / 2
    assert metrics["encoder_weights"] == "random"


def test_evaluate_reports_a_broken_model_without_hiding_the_others(trained, synthetic, tmp_path):
    models = tmp_path / "models"
    (models / "good").mkdir(parents=True)
    (models / "good" / "model.tar.gz").write_bytes(trained["tarball"].read_bytes())
    (models / "broken").mkdir()
    (models / "broken" / "model.tar.gz").write_bytes(b"not a tarball")
    rc = evaluate.main(["--models", str(models), "--test", str(synthetic["test"]), "--images",
                        str(synthetic["images"]), "--output", str(tmp_path / "out"), "--samples", "1"])
    report = json.loads((tmp_path / "out" / "evaluation.json").read_text(encoding="utf-8"))
    assert rc == 0 and "error" in report["models"]["broken"]
    assert report["models"]["good"]["metrics"]["beam_width"] == 3  # the model's default decoding
    assert evaluate.main(["--models", str(tmp_path / "none"), "--test", str(synthetic["test"]),
                          "--output", str(tmp_path / "o2")]) == 2
