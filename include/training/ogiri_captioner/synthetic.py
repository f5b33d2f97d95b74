"""Deterministic synthetic captioning data: coloured shapes left/right, captioned in Japanese.

``python -m ogiri_captioner.synthetic --out DIR --n N --seed S`` writes::

    DIR/images/<sha256[:2]>/<sha256>.jpg     content-addressed like the production bucket
    DIR/train/train.jsonl  DIR/val/val.jsonl  DIR/test/test.jsonl

Manifest ``image`` values are keys like ``images/ab/ab12….jpg``; point the ``images`` channel at
``DIR/images`` (or read them relative to ``DIR``). Train images carry one caption in a random
template; val/test images carry every template of their scene as references.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = {"赤": (215, 40, 40), "青": (40, 80, 220), "緑": (30, 160, 60), "黄": (235, 200, 30)}
ADJECTIVE = {"赤": "赤い", "青": "青い", "緑": "緑の", "黄": "黄色い"}
SHAPES = ("丸", "四角", "三角")
LABELS = {"丸": "Circle", "四角": "Square", "三角": "Triangle", "赤": "Red", "青": "Blue", "緑": "Green",
          "黄": "Yellow"}
PAIR_TEMPLATES = ("左に{a}、右に{b}", "{a}が左、{b}が右にある", "右に{b}、左に{a}")
SINGLE_TEMPLATES = ("{p}に{a}がひとつ", "{a}が{p}にある")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Scene:
    """Up to one object per side: ``(colour, shape)`` or None."""

    left: tuple[str, str] | None
    right: tuple[str, str] | None

    def captions(self) -> list[str]:
        """Every caption template filled in for this scene (the first is the canonical one)."""
        def phrase(obj):
            return ADJECTIVE[obj[0]] + obj[1]

        if self.left and self.right:
            return [t.format(a=phrase(self.left), b=phrase(self.right)) for t in PAIR_TEMPLATES]
        obj, pos = (self.left, "左") if self.left else (self.right, "右")
        return [t.format(a=phrase(obj), p=pos) for t in SINGLE_TEMPLATES]

    def labels(self) -> list[str]:
        return sorted({LABELS[x] for obj in (self.left, self.right) if obj for x in obj})


def random_scene(rng: random.Random) -> Scene:
    def obj():
        return rng.choice(sorted(COLOURS)), rng.choice(SHAPES)

    if rng.random() < 0.8:
        return Scene(obj(), obj())
    return Scene(obj(), None) if rng.random() < 0.5 else Scene(None, obj())


#: Another palette for the same scene names: traffic drawn with it is what drift monitoring must flag.
SHIFTED_COLOURS = {"赤": (120, 0, 120), "青": (0, 200, 200), "緑": (250, 120, 0), "黄": (90, 60, 20)}


def render(scene: Scene, rng: random.Random, size: int = 96,
           palette: dict[str, tuple[int, int, int]] | None = None) -> Image.Image:
    """The scene drawn on a noisy light background, with jittered object sizes and positions
    (``palette``: the RGB of each colour name, ``COLOURS`` by default)."""
    palette = palette or COLOURS
    bg = tuple(rng.randint(200, 245) for _ in range(3))
    img = Image.new("RGB", (size, size), bg)
    draw = ImageDraw.Draw(img)
    for _ in range(30):  # speckle noise so no two images are identical
        x, y = rng.randrange(size), rng.randrange(size)
        draw.point((x, y), fill=tuple(max(0, c - rng.randint(20, 60)) for c in bg))
    for side, obj in (("left", scene.left), ("right", scene.right)):
        if obj is None:
            continue
        colour, shape = obj
        r = rng.uniform(0.12, 0.2) * size
        cx = (0.25 if side == "left" else 0.75) * size + rng.uniform(-0.06, 0.06) * size
        cy = rng.uniform(0.3, 0.7) * size
        fill = tuple(min(255, max(0, c + rng.randint(-20, 20))) for c in palette[colour])
        box = (cx - r, cy - r, cx + r, cy + r)
        if shape == "丸":
            draw.ellipse(box, fill=fill)
        elif shape == "四角":
            draw.rectangle(box, fill=fill)
        else:
            draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    return img


def generate(out: str | Path, n: int = 600, seed: int = 0, split: tuple[float, float] = (0.7, 0.15),
             size: int = 96, train_captions: int = 1) -> dict[str, Path]:
    """Write ``n`` images and the three manifests under ``out``; return the paths by name.

    Returns ``{"root", "images", "train", "val", "test"}`` (the last three are manifest dirs).
    The same ``(n, seed, split, size)`` always gives byte-identical files.
    """
    if n < 3:
        raise ValueError("n must be at least 3 (one image per split)")
    out = Path(out)
    rng = random.Random(seed)
    n_train = max(1, int(n * split[0]))
    n_val = max(1, int(n * split[1]))
    records: dict[str, list[dict]] = {s: [] for s in SPLITS}
    for i in range(n):
        scene = random_scene(rng)
        buf = io.BytesIO()
        render(scene, rng, size).save(buf, format="JPEG", quality=92)
        data = buf.getvalue()
        digest = hashlib.sha256(data).hexdigest()
        key = f"images/{digest[:2]}/{digest}.jpg"
        (out / key).parent.mkdir(parents=True, exist_ok=True)
        (out / key).write_bytes(data)
        name = "train" if i < n_train else "val" if i < n_train + n_val else "test"
        caps = scene.captions()
        chosen = rng.sample(caps, min(train_captions, len(caps))) if name == "train" else caps
        for cid, cap in enumerate(chosen):
            records[name].append({"image": key, "caption": cap, "labels": scene.labels(),
                                  "image_key": digest, "caption_id": cid})
    paths = {"root": out, "images": out / "images"}
    for name, rows in records.items():
        (out / name).mkdir(parents=True, exist_ok=True)
        with open(out / name / f"{name}.jsonl", "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        paths[name] = out / name
    return paths


def write_url_csv(root: str | Path, base_url: str, out_csv: str | Path,
                  splits: tuple[str, ...] = SPLITS, header: bool = True) -> int:
    """Write ``image_url,caption`` rows for the dataset under ``root``, served at ``base_url``.

    ``base_url`` is where ``root`` is served over HTTP (``http://127.0.0.1:8000/``); each URL is
    ``base_url`` + the image key (``images/ab/….jpg``). Returns the number of rows written.
    """
    root = Path(root)
    base = base_url.rstrip("/") + "/"
    rows = 0
    with open(out_csv, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        if header:
            writer.writerow(["image_url", "caption"])
        for name in splits:
            manifest = root / name / f"{name}.jsonl"
            if not manifest.exists():
                raise ValueError(f"no {name} manifest at {manifest}; generate the dataset first")
            for line in manifest.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    rec = json.loads(line)
                    writer.writerow([base + rec["image"], rec["caption"]])
                    rows += 1
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--n", type=int, default=600, help="number of images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=96, help="image side in pixels")
    parser.add_argument("--csv-base-url", help="also write DIR/captions.csv with image_url,caption rows")
    args = parser.parse_args(argv)
    paths = generate(args.out, n=args.n, seed=args.seed, size=args.size)
    if args.csv_base_url:
        write_url_csv(paths["root"], args.csv_base_url, Path(args.out) / "captions.csv")
    print(json.dumps({k: str(v) for k, v in paths.items()}))


if __name__ == "__main__":
    main()
