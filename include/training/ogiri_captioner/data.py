"""Manifests, image paths and image loading.

A manifest is JSON Lines, one record per (image, caption):
``{"image": "<path or s3 key/uri>", "caption": "...", "labels": [...], "image_key": "...",
"rating": 1-5 (optional: the caption's human rating)}``.
``image`` is resolved against the ``images`` channel when there is one, else against the manifest's
own directory; an S3 URI or key is matched against the mirrored channel by dropping leading path
components (``s3://bucket/images/ab/x.jpg`` → ``<images channel>/ab/x.jpg``).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Record:
    """One manifest row with its image resolved to a local file."""

    image: Path
    caption: str
    labels: tuple[str, ...] = field(default=())
    image_key: str = ""
    rating: float | None = None


#: Floor of a rated caption's sample weight, so a poorly rated caption still counts a little.
MIN_RATING_WEIGHT = 0.05


def rating_weight_of(rating: float | None, rating_weight: float) -> float:
    """Sample weight of a caption: ``max(0.05, 1 + rating_weight * (rating - 3) / 2)`` when rated (1-5),
    1 when unrated. So rating 3 weighs 1, and with ``rating_weight`` 1 a 5 weighs 2 and a 1 weighs 0.05."""
    if rating_weight < 0:
        raise ValueError(f"rating_weight must be >= 0, got {rating_weight}")
    if rating is None:
        return 1.0
    return max(MIN_RATING_WEIGHT, 1.0 + rating_weight * (float(rating) - 3.0) / 2.0)


def _rating(row: dict, where: str) -> float | None:
    value = row.get("rating")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value <= 5:
        raise ValueError(f"{where}: 'rating' must be a number from 1 to 5, got {value!r}")
    return float(value)


def _candidates(ref: str) -> list[str]:
    if ref.startswith("s3://"):
        ref = ref[5:].split("/", 1)[1] if "/" in ref[5:] else ""
    parts = [p for p in ref.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"image path must not contain '..': {ref!r}")
    return ["/".join(parts[i:]) for i in range(len(parts))]


def resolve_image(ref: str, roots: list[Path]) -> Path:
    """The local file for manifest image ``ref`` under one of ``roots``; ValueError if none has it."""
    if not isinstance(ref, str) or not ref:
        raise ValueError(f"manifest 'image' must be a non-empty string, got {ref!r}")
    if Path(ref).is_absolute() and Path(ref).is_file():
        return Path(ref)
    for root in roots:
        for cand in _candidates(ref):
            path = root / cand
            if path.is_file():
                return path
    raise ValueError(f"image {ref!r} not found under {', '.join(str(r) for r in roots)}")


def manifest_files(channel: str | Path) -> list[Path]:
    """Every ``*.jsonl`` in a channel dir (recursively, sorted), or the file itself."""
    channel = Path(channel)
    if channel.is_file():
        return [channel]
    if not channel.is_dir():
        raise ValueError(f"manifest channel {channel} does not exist")
    files = sorted(channel.rglob("*.jsonl"))
    if not files:
        raise ValueError(f"no *.jsonl manifest in {channel}")
    return files


def read_manifests(channel: str | Path, images_dir: str | Path | None = None) -> list[Record]:
    """All records of the manifests in ``channel`` with images resolved (see module docstring)."""
    records = []
    for path in manifest_files(channel):
        roots = [Path(images_dir)] if images_dir else [path.parent, Path(channel)]
        for lineno, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict) or "image" not in row or "caption" not in row:
                raise ValueError(f"{where}: record needs 'image' and 'caption'")
            if not isinstance(row["caption"], str) or not row["caption"].strip():
                raise ValueError(f"{where}: 'caption' must be a non-empty string")
            try:
                image = resolve_image(row["image"], roots)
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
            records.append(Record(image, row["caption"], tuple(row.get("labels") or ()),
                                  str(row.get("image_key") or ""), _rating(row, where)))
    if not records:
        raise ValueError(f"manifests in {channel} have no records")
    return records


def open_image(source: bytes | str | Path) -> Image.Image:
    """An RGB PIL image from bytes or a path; ValueError naming the problem when undecodable."""
    try:
        if isinstance(source, bytes | bytearray):
            if not source:
                raise ValueError("image is empty (0 bytes)")
            img = Image.open(io.BytesIO(source))
        else:
            img = Image.open(source)
        img.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise ValueError(f"cannot decode image: {exc}") from None
    return img.convert("RGB")


def image_transform(image_size: int):
    """Resize (no crop: positions matter), to tensor, ImageNet normalisation."""
    from torchvision import transforms

    return transforms.Compose([
        transforms.Resize((image_size, image_size), antialias=True),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


class ImageFiles:
    """Map-style dataset of transformed images from paths, for the one-off feature pass."""

    def __init__(self, paths: list[Path], image_size: int):
        self.paths = paths
        self.transform = image_transform(image_size)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        return self.transform(open_image(self.paths[i]))
