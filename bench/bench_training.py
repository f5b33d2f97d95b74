"""Captioner speed: cached-feature training vs the classic CNN-every-step loop, and serving latency.

Run: ``.venv/bin/python bench/bench_training.py [--quick] [--encoder resnet50 --image-size 224]``.
Both training loops run in the same process on the same synthetic data and the same decoder, so
the ratio is meaningful on a shared machine. Prints images/s for

* ``classic``: every step decodes + transforms the images and runs the frozen CNN, then the decoder
  (the tutorial pattern);
* ``cached``: the decoder step over fp16 features computed once (the one-off extraction rate is
  printed too);

then the end-to-end serving latency (image in, caption out) p50/p95 for greedy and beam-3 at
batch 1 and 32, on a decoder trained briefly so captions have realistic lengths.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "include" / "training"))

import torch  # noqa: E402

from ogiri_captioner.artifacts import Captioner  # noqa: E402
from ogiri_captioner.data import ImageFiles, open_image, read_manifests  # noqa: E402
from ogiri_captioner.features import encode_images, extract_features  # noqa: E402
from ogiri_captioner.model import build_decoder, build_encoder  # noqa: E402
from ogiri_captioner.synthetic import generate  # noqa: E402
from ogiri_captioner.tokenizer import CharTokenizer  # noqa: E402
from ogiri_captioner.training import _pad, sequence_loss  # noqa: E402


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def _parse_args() -> argparse.Namespace:
    """The command-line options, with --quick's smaller settings applied."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--encoder", default="resnet50")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--grid", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--images", type=int, default=256)
    p.add_argument("--classic-steps", type=int, default=3)
    p.add_argument("--cached-steps", type=int, default=40)
    p.add_argument("--train-steps", type=int, default=150, help="decoder steps before the latency runs")
    p.add_argument("--reps", type=int, default=15, help="latency repetitions at batch 1 (batch 32: a third)")
    p.add_argument("--embed-dim", type=int, default=256)
    p.add_argument("--hidden-dim", type=int, default=512)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="resnet18 at 64 px, fewer steps (smoke run)")
    args = p.parse_args()
    if args.quick:
        args.encoder, args.image_size, args.grid, args.images = "resnet18", 64, 2, 128
        args.embed_dim, args.hidden_dim = 128, 256
        args.classic_steps, args.cached_steps, args.train_steps, args.reps = 3, 20, 60, 6
    return args


class _DecoderSteps:
    """Optimiser steps of the decoder on the captions of the records, batch ``s`` at a time."""

    def __init__(self, decoder, tokens: torch.Tensor, pad_id: int, batch_size: int, device: torch.device):
        self.decoder, self.tokens, self.pad_id, self.bs, self.device = decoder, tokens, pad_id, batch_size, device
        self.opt = torch.optim.AdamW(decoder.parameters(), lr=1e-3, foreach=True)

    def step(self, feats, idx) -> None:
        """One teacher-forced training step on the features of records ``idx``."""
        loss = sequence_loss(self.decoder, feats, self.tokens[idx].to(self.device), self.pad_id)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def batch_idx(self, s: int) -> torch.Tensor:
        """The record indices of step ``s`` (wrapping around the records)."""
        return torch.arange(s * self.bs, (s + 1) * self.bs) % len(self.tokens)


def _time_classic(args, encoder, files: ImageFiles, device: torch.device, steps: _DecoderSteps) -> float:
    """Images/s of the classic loop: images -> CNN -> decoder, every step."""
    # the same encoder call as the one-off extraction: AMP + channels_last on a GPU, so only the
    # caching differs between the two loops
    bs = args.batch_size
    warm = encode_images(encoder, torch.stack([files[i] for i in range(bs)]), device)
    steps.step(warm, steps.batch_idx(0))  # warm-up
    t0 = time.perf_counter()
    for s in range(args.classic_steps):
        idx = steps.batch_idx(s)
        feats = encode_images(encoder, torch.stack([files[int(i)] for i in idx]), device)
        steps.step(feats, idx)
    return args.classic_steps * bs / (time.perf_counter() - t0)


def _time_cached(args, encoder, paths: list, device: torch.device, steps: _DecoderSteps):
    """Images/s of the one-off feature extraction and of the decoder-only loop; the features and rows."""
    t0 = time.perf_counter()
    feats_all = extract_features(encoder, paths, args.image_size, device, batch_size=args.batch_size)
    extract = len(paths) / (time.perf_counter() - t0)
    feats_all = feats_all.to(device)
    rows = torch.arange(len(paths))
    steps.step(feats_all[rows[steps.batch_idx(0)]], steps.batch_idx(0))
    t0 = time.perf_counter()
    for s in range(args.cached_steps):
        idx = steps.batch_idx(s)
        steps.step(feats_all[rows[idx]], idx)
    cached = args.cached_steps * args.batch_size / (time.perf_counter() - t0)
    return extract, cached, feats_all, rows


def _print_training(args, source: str, device: torch.device, classic: float, cached: float, extract: float,
                    epoch_imgs: int) -> None:
    """The training-loop table and the cached/classic speedups."""
    print(f"encoder={args.encoder} ({source} weights) image_size={args.image_size} grid={args.grid} "
          f"batch={args.batch_size} device={device} threads={args.threads}")
    print(f"{'training loop':<36}{'images/s':>12}")
    print(f"{'classic (CNN every step)':<36}{classic:>12.1f}")
    print(f"{'cached features (decoder only)':<36}{cached:>12.1f}")
    print(f"{'one-off feature extraction':<36}{extract:>12.1f}")
    print(f"speedup cached/classic: {cached / classic:.1f}x per step; over 10 epochs incl. extraction: "
          f"{(10 * epoch_imgs / classic) / (epoch_imgs / extract + 10 * epoch_imgs / cached):.1f}x")


def _time_serving(cap: Captioner, images: list, reps_at_1: int) -> dict:
    """p50/p95 end-to-end caption latency, greedy and beam-3, at batch 1 and 32 (printed and returned)."""
    results = {}
    print(f"\n{'serving latency (ms)':<24}{'p50':>10}{'p95':>10}{'ms/image':>10}")
    for batch in (1, 32):
        for width in (1, 3):
            cap.caption(images[:batch], width)  # warm-up
            reps = reps_at_1 if batch == 1 else max(3, reps_at_1 // 3)
            times = []
            for r in range(reps):
                chunk = images[r % 32 : r % 32 + 1] if batch == 1 else images
                t0 = time.perf_counter()
                cap.caption(chunk, width)
                times.append((time.perf_counter() - t0) * 1000)
            name = f"{'greedy' if width == 1 else 'beam-3'} batch {batch}"
            p50, p95 = statistics.median(times), _pct(times, 0.95)
            results[name] = {"p50_ms": round(p50, 2), "p95_ms": round(p95, 2)}
            print(f"{name:<24}{p50:>10.1f}{p95:>10.1f}{p50 / batch:>10.2f}")
    return results


def main() -> None:
    """Time both training loops on the same data and decoder, then the serving latency."""
    args = _parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tmp = Path(tempfile.mkdtemp(prefix="ogiri-bench-"))
    data = generate(tmp / "data", n=args.images, seed=0, split=(0.9, 0.05))
    recs = read_manifests(data["train"], data["images"])
    tok = CharTokenizer.build(r.caption for r in recs)
    tokens = _pad([tok.encode(r.caption, add_special=True, max_len=48) for r in recs], tok.pad_id)
    encoder, source = build_encoder(args.encoder, args.grid)
    encoder.to(device)
    if device.type == "cuda":
        encoder.to(memory_format=torch.channels_last)  # as extract_features does
    torch.manual_seed(0)
    decoder = build_decoder("lstm", len(tok), encoder.feat_dim, args.grid ** 2, args.embed_dim,
                            args.hidden_dim, 48).to(device)
    steps = _DecoderSteps(decoder, tokens, tok.pad_id, args.batch_size, device)
    paths = [r.image for r in recs]
    files = ImageFiles(paths, args.image_size)

    classic = _time_classic(args, encoder, files, device, steps)
    extract, cached, feats_all, rows = _time_cached(args, encoder, paths, device, steps)
    _print_training(args, source, device, classic, cached, extract, len(paths))

    for s in range(args.train_steps):  # make the decoder emit <eos> at realistic lengths
        steps.step(feats_all[rows[steps.batch_idx(s)]], steps.batch_idx(s))
    cfg = {"encoder": args.encoder, "decoder": "lstm", "embed_dim": args.embed_dim, "hidden_dim": args.hidden_dim, "max_len": 48,
           "image_size": args.image_size, "grid": args.grid, "beam_width": 3}
    cap = Captioner(encoder, decoder, tok, cfg, device)
    results = _time_serving(cap, [open_image(p) for p in paths[:32]], args.reps)
    print(json.dumps({"classic_img_s": round(classic, 1), "cached_img_s": round(cached, 1),
                      "extract_img_s": round(extract, 1), "speedup": round(cached / classic, 1),
                      "latency": results}))


if __name__ == "__main__":
    main()
