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
from collections import Counter
from typing import Any

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

_PARENTS = {
    "Circle": ["Shape"],
    "Rectangle": ["Shape"],
    "Square": ["Rectangle", "Shape"],
    "Triangle": ["Shape"],
}


def color_name(r: int, g: int, b: int) -> str:
    """The colour name of one RGB pixel (0-255 channels)."""
    mx, mn = max(r, g, b), min(r, g, b)
    value = mx / 255.0
    saturation = 0.0 if mx == 0 else (mx - mn) / mx
    if value < 0.2:
        return "Black"
    if saturation < 0.18:
        if value > 0.85:
            return "White"
        return "Gray"
    if mx == r:
        hue = (60.0 * (g - b) / (mx - mn)) % 360.0
    elif mx == g:
        hue = 60.0 * (b - r) / (mx - mn) + 120.0
    else:
        hue = 60.0 * (r - g) / (mx - mn) + 240.0
    for lo, hi, name in _HUE_BINS:
        if lo <= hue < hi:
            if name == "Orange" and value < 0.6:
                return "Brown"
            return name
    return "Red"


def _prepare(img: Image.Image) -> Image.Image:
    """RGB copy, alpha flattened onto white, downscaled for analysis (deterministic resampling)."""
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
    return rgb


def _label(name: str, confidence: float, category: str = _COLOR_CATEGORY) -> dict[str, Any]:
    return {
        "Name": name,
        "Confidence": round(max(0.0, min(99.99, confidence)), 4),
        "Instances": [],
        "Parents": [{"Name": p} for p in _PARENTS.get(name, [])],
        "Aliases": [],
        "Categories": [{"Name": category}],
    }


def _luma(p: tuple[int, int, int]) -> float:
    return (0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]) / 255.0


def _components(mask: list[bool], w: int, h: int) -> list[list[int]]:
    """4-connected components of a boolean mask, as lists of pixel indices."""
    seen = [False] * len(mask)
    out: list[list[int]] = []
    for start, on in enumerate(mask):
        if not on or seen[start]:
            continue
        seen[start] = True
        stack, comp = [start], []
        while stack:
            i = stack.pop()
            comp.append(i)
            x, y = i % w, i // w
            for j, ok in ((i - 1, x > 0), (i + 1, x < w - 1), (i - w, y > 0), (i + w, y < h - 1)):
                if ok and mask[j] and not seen[j]:
                    seen[j] = True
                    stack.append(j)
        out.append(comp)
    return out


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


def _shape_labels(pixels: list[tuple[int, int, int]], w: int, h: int) -> list[dict[str, Any]]:
    """Objects = connected regions unlike the border colour; guess each one's shape from its box fill."""
    if w < 4 or h < 4:
        return []
    border = [pixels[x] for x in range(w)] + [pixels[(h - 1) * w + x] for x in range(w)]
    border += [pixels[y * w] for y in range(h)] + [pixels[y * w + w - 1] for y in range(h)]
    # The border's dominant colour class is the background; its mean RGB is the reference.
    dominant = Counter(color_name(*p) for p in border).most_common(1)[0]
    if dominant[1] < 0.6 * len(border):
        return []  # no uniform background: no object to single out
    bg = [p for p in border if color_name(*p) == dominant[0]]
    ref = tuple(sum(c[i] for c in bg) / len(bg) for i in range(3))
    limit = 60.0**2
    mask = [(p[0] - ref[0]) ** 2 + (p[1] - ref[1]) ** 2 + (p[2] - ref[2]) ** 2 > limit for p in pixels]
    n = len(pixels)
    if sum(mask) > 0.9 * n:
        return []
    best: dict[str, float] = {}
    for comp in _components(mask, w, h):
        if len(comp) < max(6, 0.006 * n):
            continue  # speckle, JPEG ringing
        xs = [i % w for i in comp]
        ys = [i // w for i in comp]
        bw, bh = max(xs) - min(xs) + 1, max(ys) - min(ys) + 1
        fill = len(comp) / (bw * bh)
        evidence = min(1.0, (len(comp) / n) / 0.03)  # bigger objects are surer
        best["Shape"] = max(best.get("Shape", 0.0), 55.0 + 40.0 * evidence * min(1.0, fill / 0.45))
        for name, conf in _shape_guesses(fill, min(bw, bh) / max(bw, bh), evidence).items():
            best[name] = max(best.get(name, 0.0), conf)
    return [_label(name, conf, _SHAPE_CATEGORY) for name, conf in best.items()]


def _edge_density(pixels: list[tuple[int, int, int]], w: int, h: int) -> float:
    """Share of horizontally/vertically adjacent pixel pairs with a strong luminance step."""
    luma = [_luma(p) for p in pixels]
    strong = total = 0
    for y in range(h):
        row = y * w
        for x in range(w):
            v = luma[row + x]
            if x + 1 < w:
                total += 1
                strong += abs(v - luma[row + x + 1]) > 0.25
            if y + 1 < h:
                total += 1
                strong += abs(v - luma[row + w + x]) > 0.25
    return strong / total if total else 0.0


def image_statistics(img: Image.Image) -> dict[str, Any]:
    """Colour shares, mean brightness, contrast and edge density of an image (for labels/properties)."""
    rgb = _prepare(img)
    w, h = rgb.size
    pixels = list(rgb.getdata())
    n = len(pixels)
    names = [color_name(*p) for p in pixels]
    counts = Counter(names)
    lumas = [_luma(p) for p in pixels]
    mean = sum(lumas) / n
    contrast = math.sqrt(sum((v - mean) ** 2 for v in lumas) / n)
    sums: dict[str, list[int]] = {}
    for name, p in zip(names, pixels, strict=True):
        acc = sums.setdefault(name, [0, 0, 0])
        acc[0] += p[0]
        acc[1] += p[1]
        acc[2] += p[2]
    mean_rgb = {name: [round(c / counts[name]) for c in acc] for name, acc in sums.items()}
    return {
        "size": (w, h),
        "pixels": pixels,
        "color_shares": {k: v / n for k, v in counts.items()},
        "color_rgb": mean_rgb,
        "brightness": mean,
        "contrast": contrast,
        "edge_density": _edge_density(pixels, w, h),
    }


def labels_for_image(img: Image.Image) -> list[dict[str, Any]]:
    """Rekognition-shaped labels for a Pillow image, highest confidence first (pure, deterministic)."""
    stats = image_statistics(img)
    w, h = stats["size"]
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
    labels.extend(_shape_labels(stats["pixels"], w, h))
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
