"""Issue 16: human ratings in the captioner: the sample-weight rule, the weighted loss, training with
``rating_weight`` and the rated-test-set metric of evaluate.py."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import evaluate
import pytest
import torch
from conftest import make_config, quiet_train

from ogiri_captioner.data import rating_weight_of, read_manifests
from ogiri_captioner.synthetic import generate
from ogiri_captioner.training import sequence_loss

TINY = {"epochs": 2, "image_size": 32, "embed_dim": 32, "hidden_dim": 32, "batch_size": 8, "val_max_images": 4}


def test_rating_weight_rule():
    assert rating_weight_of(None, 2.0) == 1.0  # unrated captions weigh 1
    assert rating_weight_of(3, 2.0) == 1.0  # the middle of the scale weighs 1
    assert rating_weight_of(5, 1.0) == 2.0 and rating_weight_of(4, 1.0) == 1.5
    assert rating_weight_of(1, 1.0) == 0.05  # clipped at the floor, never 0 or negative
    assert rating_weight_of(2, 0.5) == pytest.approx(0.75)
    assert rating_weight_of(1, 0.0) == rating_weight_of(5, 0.0) == 1.0  # weight 0: ratings ignored
    with pytest.raises(ValueError, match="rating_weight must be >= 0"):
        rating_weight_of(4, -1)


class _Echo(torch.nn.Module):
    """A stand-in decoder: fixed logits per input token (the loss weighting is what is under test)."""

    def __init__(self, vocab: int):
        super().__init__()
        self.table = torch.randn(vocab, vocab, generator=torch.Generator().manual_seed(0))

    def forward(self, feats, tokens):
        return self.table[tokens]


def test_weighted_loss_is_the_weighted_token_mean():
    pad = 0
    tokens = torch.tensor([[1, 2, 3, 4], [1, 3, 0, 0], [1, 4, 2, 0]])
    dec, feats = _Echo(5), torch.zeros(3, 1)
    plain = sequence_loss(dec, feats, tokens, pad)
    assert torch.allclose(sequence_loss(dec, feats, tokens, pad, torch.ones(3)), plain)
    # a caption with (almost) no weight contributes (almost) nothing: the others' mean remains
    only_first = sequence_loss(dec, feats, tokens[:1], pad)
    assert torch.allclose(sequence_loss(dec, feats, tokens, pad, torch.tensor([1.0, 0.0, 0.0])), only_first)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """24 synthetic images, every train caption rated (alternating 1 and 5), test captions rated on
    two images out of three."""
    data = generate(tmp_path_factory.mktemp("tiny"), n=24, seed=3, size=32)
    for split, rate in (("train", lambda i: 1 + 4 * (i % 2)), ("test", lambda i: None if i % 3 == 0 else 2 + i % 4)):
        path = data[split] / f"{split}.jsonl"
        rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
        for i, row in enumerate(rows):
            if rate(i) is not None:
                row["rating"] = rate(i)
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return data


def test_training_with_rating_weight_runs_and_weighs(tiny, tmp_path):
    assert all(r.rating in (1.0, 5.0) for r in read_manifests(tiny["train"], tiny["images"]))
    plain = quiet_train(make_config(tiny, tmp_path / "plain", **TINY))
    zero = quiet_train(make_config(tiny, tmp_path / "zero", rating_weight=0.0, **TINY))
    weighted = quiet_train(make_config(tiny, tmp_path / "weighted", rating_weight=1.0, **TINY))
    assert zero["weights_sha256"] == plain["weights_sha256"]  # rating_weight 0: the plain loss
    assert weighted["weights_sha256"] != plain["weights_sha256"]  # ratings change what is learned
    assert len(weighted["history"]) == 2 and all(h["train_loss"] > 0 for h in weighted["history"])
    assert (tmp_path / "weighted" / "model.pt").is_file()


def _pack(model_dir: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    with tarfile.open(dest / "model.tar.gz", "w:gz") as tar:
        for p in sorted(model_dir.iterdir()):
            tar.add(p, arcname=p.name)
    return dest / "model.tar.gz"


def _evaluate(models: Path, test: Path, images: Path, out: Path) -> dict:
    rc = evaluate.main(["--models", str(models), "--test", str(test), "--images", str(images), "--output",
                        str(out), "--beam-width", "1", "--samples", "1000"])
    assert rc == 0
    return json.loads((out / "evaluation.json").read_text(encoding="utf-8"))


def test_evaluate_reports_the_rated_mean_rating_only_where_ratings_exist(tiny, tmp_path):
    quiet_train(make_config(tiny, tmp_path / "model", **TINY))
    _pack(tmp_path / "model", tmp_path / "models" / "candidate")
    report = _evaluate(tmp_path / "models", tiny["test"], tiny["images"], tmp_path / "eval")
    metrics = report["models"]["candidate"]["metrics"]
    rated: dict[str, list[tuple[str, float]]] = {}
    for r in read_manifests(tiny["test"], tiny["images"]):
        if r.rating is not None:
            rated.setdefault(r.image.name, []).append((r.caption, r.rating))
    hyps = {s["image"]: s["caption"] for s in report["models"]["candidate"]["samples"]}
    assert metrics["rated_test_images"] == len(rated) == report["test"]["rated_images"] > 0
    assert metrics["rated_mean_rating"] == pytest.approx(evaluate.rated_test_metrics(hyps, rated)["rated_mean_rating"])
    assert 2 <= metrics["rated_mean_rating"] <= 5 and 0 <= metrics["rated_exact_matches"] <= len(rated)

    unrated = tmp_path / "unrated"
    unrated.mkdir()
    rows = [json.loads(x) for x in (tiny["test"] / "test.jsonl").read_text(encoding="utf-8").splitlines()]
    (unrated / "test.jsonl").write_text("".join(json.dumps({k: v for k, v in r.items() if k != "rating"}) + "\n"
                                                for r in rows), encoding="utf-8")
    plain = _evaluate(tmp_path / "models", unrated, tiny["images"], tmp_path / "eval2")["models"]["candidate"]
    assert not {"rated_mean_rating", "rated_test_images", "rated_exact_matches"} & set(plain["metrics"])
    assert plain["metrics"]["bleu4"] == metrics["bleu4"]  # the ratings change nothing else


def test_rated_match_is_the_identical_else_most_similar_rated_caption():
    rated = {"a.jpg": [("赤い丸", 2.0), ("青い四角", 5.0)], "b.jpg": [("緑の三角", 4.0)]}
    got = evaluate.rated_test_metrics({"a.jpg": "青い四角", "b.jpg": "緑の丸", "c.jpg": "x"}, rated)
    assert got == {"rated_mean_rating": 4.5, "rated_test_images": 2, "rated_exact_matches": 1}
    assert evaluate.rated_test_metrics({"a.jpg": "赤い丸が一つ"}, rated)["rated_mean_rating"] == 2.0
    assert evaluate.rated_test_metrics({"c.jpg": "x"}, rated) == {}  # no rated image: absent, not 0


@pytest.mark.parametrize("bad", ["5", 0, 6, True])
def test_a_bad_rating_in_a_manifest_is_refused_naming_the_line(tmp_path, bad):
    (tmp_path / "x.jpg").write_bytes(b"")
    (tmp_path / "m.jsonl").write_text(json.dumps({"image": "x.jpg", "caption": "猫", "rating": bad}) + "\n",
                                      encoding="utf-8")
    with pytest.raises(ValueError, match=r"m.jsonl:1: 'rating' must be a number from 1 to 5"):
        read_manifests(tmp_path / "m.jsonl")
