"""Deterministic image labels computed from pixels, standing in for Rekognition's model.

``labels_for_image(img)`` returns Rekognition-shaped labels (``Name``, ``Confidence`` 0-100,
``Instances``, ``Parents``, ``Aliases``, ``Categories``) sorted by confidence:

* colours: the share of pixels in each named colour (hue/saturation/value bins), e.g. ``Red``;
* brightness: ``Bright`` / ``Dark`` from mean luminance;
* composition: each object (a connected region of pixels unlike the border colour) gives ``Shape``
  plus a guess of ``Circle``, ``Rectangle`` (``Square`` when about as wide as high) or ``Triangle``
  from how much of its bounding box it fills; ``Pattern`` for a high density of strong edges.

The same pixels always give the same labels; confidences grow with the evidence.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

_ANALYSIS_SIZE = 96
_COLOR_CATEGORY = "Colors and Visual Composition"
_SHAPE_CATEGORY = "Colors and Visual Composition"
_ACHROMATIC = {"White", "Black", "Gray"}

# Hue bins in degrees (start inclusive), checked in order; red wraps around 0.
_HUE_BINS = (
    (0, 15, "Red"),
    (15, 40, "Orange"),
    (40, 70, "Yellow"),
    (70, 165, "Green"),
    (165, 195, "Cyan"),
    (195, 260, "Blue"),
    (260, 290, "Purple"),
    (290, 340, "Pink"),
    (340, 361, "Red"),
)

# Vectorised form of the rules above: class indices, hue bin edges and the class of each bin.
_COLOR_NAMES = ("Red", "Orange", "Yellow", "Green", "Cyan", "Blue", "Purple", "Pink", "Brown", "White",
                "Gray", "Black")
_ORANGE, _BROWN, _WHITE, _GRAY, _BLACK = (_COLOR_NAMES.index(c) for c in ("Orange", "Brown", "White", "Gray",
                                                                          "Black"))
_HUE_EDGES = np.array([lo for lo, _, _ in _HUE_BINS], dtype=np.float64)
_HUE_BIN_CLASS = np.array([_COLOR_NAMES.index(name) for _, _, name in _HUE_BINS], dtype=np.intp)

_PARENTS = {
    "Circle": ["Shape"],
    "Rectangle": ["Shape"],
    "Square": ["Rectangle", "Shape"],
    "Triangle": ["Shape"],
}


def color_name(r: int, g: int, b: int) -> str:
    """The colour name of one RGB pixel (0-255 channels)."""
    return _COLOR_NAMES[int(_color_classes(np.array([r, g, b], dtype=np.float64)))]


def _prepare(img: Image.Image) -> np.ndarray:
    """RGB pixels as an (h, w, 3) float array, alpha flattened onto white, downscaled for analysis."""
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    rgb = img.convert("RGB")
    w, h = rgb.size
    if w < 1 or h < 1:
        raise ValueError("image has no pixels")
    scale = min(1.0, _ANALYSIS_SIZE / max(w, h))
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        rgb = rgb.resize(size, Image.Resampling.BOX)
    return np.asarray(rgb, dtype=np.float64)


def _label(name: str, confidence: float, category: str = _COLOR_CATEGORY) -> dict[str, Any]:
    return {
        "Name": name,
        "Confidence": round(max(0.0, min(99.99, confidence)), 4),
        "Instances": [],
        "Parents": [{"Name": p} for p in _PARENTS.get(name, [])],
        "Aliases": [],
        "Categories": [{"Name": category}],
    }


def _color_classes(pixels: np.ndarray) -> np.ndarray:
    """Index into ``_COLOR_NAMES`` of every pixel of an (..., 3) RGB array.

    Black below 20% value; White/Gray below 18% saturation; otherwise the hue bin, with dark
    orange called Brown.
    """
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    mx, mn = pixels.max(axis=-1), pixels.min(axis=-1)
    value = mx / 255.0
    spread = mx - mn
    with np.errstate(divide="ignore", invalid="ignore"):
        saturation = np.where(mx == 0, 0.0, spread / mx)
        hue = np.where(
            mx == r,
            (60.0 * (g - b) / spread) % 360.0,
            np.where(mx == g, 60.0 * (b - r) / spread + 120.0, 60.0 * (r - g) / spread + 240.0),
        )
    hue_bin = np.clip(np.searchsorted(_HUE_EDGES, hue, side="right") - 1, 0, len(_HUE_BIN_CLASS) - 1)
    classes = _HUE_BIN_CLASS[hue_bin]
    classes = np.where((classes == _ORANGE) & (value < 0.6), _BROWN, classes)
    achromatic = np.where(value > 0.85, _WHITE, _GRAY)
    classes = np.where(saturation < 0.18, achromatic, classes)
    return np.where(value < 0.2, _BLACK, classes)


def _luma(pixels: np.ndarray) -> np.ndarray:
    return (0.299 * pixels[..., 0] + 0.587 * pixels[..., 1] + 0.114 * pixels[..., 2]) / 255.0


def _components(mask: np.ndarray) -> list[tuple[int, int, int, int, int]]:
    """4-connected components of a 2-D boolean mask as (pixel count, x min, x max, y min, y max).

    Labels horizontal runs of set pixels and joins runs that overlap a run in the row above.
    """
    h, w = mask.shape
    padded = np.zeros((h, w + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    step = np.diff(padded, axis=1)
    ys, x0s = np.nonzero(step == 1)  # row-major, so the i-th start and i-th end are the same run
    x1s = np.nonzero(step == -1)[1]  # exclusive end
    runs = list(zip(ys.tolist(), x0s.tolist(), x1s.tolist(), strict=True))
    parent = list(range(len(runs)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    above: list[int] = []  # runs of the previous row
    current: list[int] = []
    row = -1
    for k, (y, x0, x1) in enumerate(runs):
        if y != row:
            above = current if y == row + 1 else []
            current, row = [], y
        for a in above:
            _, a0, a1 = runs[a]
            if a0 < x1 and x0 < a1:
                parent[root(a)] = root(k)
        current.append(k)
    objects: dict[int, list[int]] = {}
    for k, (y, x0, x1) in enumerate(runs):
        obj = objects.setdefault(root(k), [0, x0, x1 - 1, y, y])
        obj[0] += x1 - x0
        obj[1], obj[2] = min(obj[1], x0), max(obj[2], x1 - 1)
        obj[3], obj[4] = min(obj[3], y), max(obj[4], y)
    return [tuple(obj) for obj in objects.values()]


def _shape_guesses(fill: float, aspect: float, evidence: float) -> dict[str, float]:
    """Shape name -> confidence for one object, from how much of its bounding box it fills."""
    guesses: dict[str, float] = {}
    for name, ideal in (("Circle", math.pi / 4), ("Rectangle", 1.0), ("Triangle", 0.5)):
        closeness = 1.0 - abs(fill - ideal) / 0.12
        if closeness <= 0:
            continue
        conf = 50.0 + 45.0 * closeness * evidence
        if name == "Circle":
            conf *= 0.7 + 0.3 * aspect  # circles are round: their box is square
        guesses[name] = conf
        if name == "Rectangle" and aspect > 0.85:
            guesses["Square"] = conf * (0.8 + 0.2 * aspect)
    return guesses


def _shape_labels(pixels: np.ndarray, classes: np.ndarray) -> list[dict[str, Any]]:
    """Objects = connected regions unlike the border colour; guess each one's shape from its box fill."""
    h, w = classes.shape
    if w < 4 or h < 4:
        return []
    border = np.concatenate([pixels[0], pixels[h - 1], pixels[:, 0], pixels[:, w - 1]])
    border_classes = np.concatenate([classes[0], classes[h - 1], classes[:, 0], classes[:, w - 1]])
    # The border's dominant colour class is the background; its mean RGB is the reference.
    counts = np.bincount(border_classes, minlength=len(_COLOR_NAMES))
    dominant = int(counts.argmax())
    if counts[dominant] < 0.6 * len(border):
        return []  # no uniform background: no object to single out
    ref = border[border_classes == dominant].mean(axis=0)
    limit = 60.0**2
    mask = ((pixels - ref) ** 2).sum(axis=-1) > limit
    n = w * h
    if mask.sum() > 0.9 * n:
        return []
    best: dict[str, float] = {}
    for size, x_min, x_max, y_min, y_max in _components(mask):
        if size < max(6, 0.006 * n):
            continue  # speckle, JPEG ringing
        bw, bh = x_max - x_min + 1, y_max - y_min + 1
        fill = size / (bw * bh)
        evidence = min(1.0, (size / n) / 0.03)  # bigger objects are surer
        best["Shape"] = max(best.get("Shape", 0.0), 55.0 + 40.0 * evidence * min(1.0, fill / 0.45))
        for name, conf in _shape_guesses(fill, min(bw, bh) / max(bw, bh), evidence).items():
            best[name] = max(best.get(name, 0.0), conf)
    return [_label(name, conf, _SHAPE_CATEGORY) for name, conf in best.items()]


def _edge_density(luma: np.ndarray) -> float:
    """Share of horizontally/vertically adjacent pixel pairs with a strong luminance step."""
    across = np.abs(np.diff(luma, axis=1)) > 0.25
    down = np.abs(np.diff(luma, axis=0)) > 0.25
    total = across.size + down.size
    return float(across.sum() + down.sum()) / total if total else 0.0


def image_statistics(img: Image.Image) -> dict[str, Any]:
    """Colour shares, mean brightness, contrast and edge density of an image (for labels/properties)."""
    pixels = _prepare(img)
    h, w = pixels.shape[:2]
    n = w * h
    classes = _color_classes(pixels)
    flat = classes.ravel()
    counts = np.bincount(flat, minlength=len(_COLOR_NAMES))
    sums = np.stack([np.bincount(flat, weights=pixels[..., c].ravel(), minlength=len(_COLOR_NAMES))
                     for c in range(3)], axis=1)
    present = [k for k in range(len(_COLOR_NAMES)) if counts[k]]
    lumas = _luma(pixels)
    mean = float(lumas.mean())
    contrast = math.sqrt(float(((lumas - mean) ** 2).mean()))
    return {
        "size": (w, h),
        "pixels": pixels,
        "classes": classes,
        "color_shares": {_COLOR_NAMES[k]: int(counts[k]) / n for k in present},
        "color_rgb": {_COLOR_NAMES[k]: [round(float(c) / int(counts[k])) for c in sums[k]] for k in present},
        "brightness": mean,
        "contrast": contrast,
        "edge_density": _edge_density(lumas),
    }


def labels_for_image(img: Image.Image) -> list[dict[str, Any]]:
    """Rekognition-shaped labels for a Pillow image, highest confidence first (pure, deterministic)."""
    stats = image_statistics(img)
    labels: list[dict[str, Any]] = []
    for name, share in stats["color_shares"].items():
        if name in _ACHROMATIC:
            if share >= 0.03:  # grey tones are everywhere: only a large share is worth a label
                labels.append(_label(name, 40.0 + 60.0 * math.sqrt(min(1.0, share / 0.6))))
        elif share >= 0.01:  # a saturated colour is strong evidence even on a small object
            labels.append(_label(name, 55.0 + 45.0 * math.sqrt(min(1.0, share / 0.25))))
    brightness = stats["brightness"]
    if brightness >= 0.6:
        labels.append(_label("Bright", 50.0 + 50.0 * (brightness - 0.6) / 0.4))
    elif brightness <= 0.35:
        labels.append(_label("Dark", 50.0 + 50.0 * (0.35 - brightness) / 0.35))
    labels.extend(_shape_labels(stats["pixels"], stats["classes"]))
    edges = stats["edge_density"]
    if edges >= 0.08:
        labels.append(_label("Pattern", 50.0 + 50.0 * min(1.0, (edges - 0.08) / 0.25)))
    # Highest confidence first; the name breaks ties so the order is stable.
    labels.sort(key=lambda lb: (-lb["Confidence"], lb["Name"]))
    return labels


def image_properties(img: Image.Image) -> dict[str, Any]:
    """Rekognition ``ImageProperties`` (quality and dominant colours) for ``Features=[IMAGE_PROPERTIES]``."""
    stats = image_statistics(img)
    dominant = sorted(stats["color_shares"].items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    colors = []
    for name, share in dominant:
        r, g, b = stats["color_rgb"][name]
        colors.append(
            {
                "Red": r,
                "Green": g,
                "Blue": b,
                "HexCode": f"#{r:02X}{g:02X}{b:02X}",
                "SimplifiedColor": name.lower(),
                "PixelPercent": round(100.0 * share, 4),
            }
        )
    return {
        "Quality": {
            "Brightness": round(100.0 * stats["brightness"], 4),
            "Sharpness": round(min(100.0, 100.0 * stats["edge_density"] / 0.3), 4),
            "Contrast": round(min(100.0, 100.0 * stats["contrast"] / 0.5), 4),
        },
        "DominantColors": colors,
    }
