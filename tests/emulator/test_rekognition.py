"""Rekognition DetectLabels from pixels: the pure label function and the emulator's API."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from PIL import Image, ImageDraw

from localaws.image_labels import _components, color_name, labels_for_image


def red_circle_on_white(size: int = 200) -> Image.Image:
    img = Image.new("RGB", (size, size), "white")
    ImageDraw.Draw(img).ellipse((size // 5, size // 5, size * 4 // 5, size * 4 // 5), fill=(220, 20, 20))
    return img


def blue_square_on_black(size: int = 200) -> Image.Image:
    img = Image.new("RGB", (size, size), "black")
    ImageDraw.Draw(img).rectangle((size // 4, size // 4, size * 3 // 4, size * 3 // 4), fill=(20, 40, 230))
    return img


def checkerboard(size: int = 200, cell: int = 10) -> Image.Image:
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    for x in range(0, size, cell):
        for y in range(0, size, cell):
            if (x // cell + y // cell) % 2:
                draw.rectangle((x, y, x + cell - 1, y + cell - 1), fill="black")
    return img


def encode(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def names(labels: list[dict]) -> list[str]:
    return [label["Name"] for label in labels]


# --- the pure function ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rgb", "expected"),
    [
        ((230, 20, 20), "Red"),
        ((20, 200, 40), "Green"),
        ((20, 40, 230), "Blue"),
        ((240, 230, 30), "Yellow"),
        ((250, 250, 250), "White"),
        ((10, 10, 10), "Black"),
        ((128, 128, 128), "Gray"),
        ((250, 140, 20), "Orange"),
        ((150, 90, 20), "Brown"),  # orange hue, value below 0.6
        ((20, 200, 200), "Cyan"),
        ((140, 30, 220), "Purple"),
        ((230, 40, 160), "Pink"),
        ((250, 20, 50), "Red"),  # hue wraps around 0
    ],
)
def test_color_name(rgb, expected):
    assert color_name(*rgb) == expected


def _flood_fill_components(mask: list[list[bool]]) -> list[tuple[int, int, int, int, int]]:
    """Reference 4-connected labelling: (pixel count, x min, x max, y min, y max) per component."""
    h, w = len(mask), len(mask[0])
    seen, out = set(), []
    for y0 in range(h):
        for x0 in range(w):
            if not mask[y0][x0] or (x0, y0) in seen:
                continue
            seen.add((x0, y0))
            stack, pts = [(x0, y0)], []
            while stack:
                x, y = stack.pop()
                pts.append((x, y))
                for nx, ny in ((x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)):
                    if 0 <= nx < w and 0 <= ny < h and mask[ny][nx] and (nx, ny) not in seen:
                        seen.add((nx, ny))
                        stack.append((nx, ny))
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            out.append((len(pts), min(xs), max(xs), min(ys), max(ys)))
    return sorted(out)


def test_components_match_flood_fill():
    u_shape = [[True, False, True], [True, False, True], [True, True, True]]  # arms join in the last row
    assert _components(np.array(u_shape)) == [(7, 0, 2, 0, 2)]
    assert _components(np.zeros((3, 3), dtype=bool)) == []
    rng = random.Random(7)
    for _ in range(60):
        h, w, density = rng.randint(1, 24), rng.randint(1, 24), rng.random()
        mask = [[rng.random() < density for _ in range(w)] for _ in range(h)]
        assert sorted(_components(np.array(mask))) == _flood_fill_components(mask)


def test_labels_follow_the_pixels():
    red = labels_for_image(red_circle_on_white())
    blue = labels_for_image(blue_square_on_black())
    assert {"Red", "White", "Bright", "Circle", "Shape"} <= set(names(red))
    assert {"Blue", "Black", "Dark", "Rectangle", "Square", "Shape"} <= set(names(blue))
    assert not {"Blue", "Black", "Dark", "Square"} & set(names(red))
    assert not {"Red", "White", "Bright", "Circle"} & set(names(blue))


def test_label_shape_and_order():
    labels = labels_for_image(red_circle_on_white())
    confidences = [label["Confidence"] for label in labels]
    assert confidences == sorted(confidences, reverse=True)
    for label in labels:
        assert 0 <= label["Confidence"] <= 100
        assert label["Instances"] == []
        assert isinstance(label["Parents"], list)
        assert label["Categories"] and all("Name" in c for c in label["Categories"])
    circle = next(label for label in labels if label["Name"] == "Circle")
    assert circle["Parents"] == [{"Name": "Shape"}]


def test_labels_are_deterministic():
    assert labels_for_image(blue_square_on_black()) == labels_for_image(blue_square_on_black())


def test_confidence_grows_with_evidence():
    def red_confidence(share_px: int) -> float:
        img = Image.new("RGB", (100, 100), "white")
        ImageDraw.Draw(img).rectangle((0, 0, share_px - 1, 99), fill=(220, 20, 20))
        return next(lb["Confidence"] for lb in labels_for_image(img) if lb["Name"] == "Red")

    assert red_confidence(2) < red_confidence(6) < red_confidence(15)


def test_every_object_is_described():
    img = Image.new("RGB", (192, 96), (225, 225, 230))
    draw = ImageDraw.Draw(img)
    draw.ellipse((20, 25, 66, 71), fill=(215, 40, 40))
    draw.polygon([(144, 22), (120, 70), (168, 70)], fill=(40, 80, 220))
    labels = labels_for_image(img)
    assert {"Red", "Circle", "Blue", "Triangle", "Shape"} <= set(names(labels))
    assert not {"Square", "Rectangle"} & set(names(labels))


def test_pattern_and_plain_images():
    checker = labels_for_image(checkerboard())
    assert "Pattern" in names(checker)
    assert "Shape" not in names(checker)
    plain = labels_for_image(Image.new("RGB", (120, 80), (128, 128, 128)))
    assert names(plain) == ["Gray"]


def test_transparent_png_is_flattened_on_white():
    img = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    ImageDraw.Draw(img).rectangle((30, 30, 69, 69), fill=(20, 200, 40, 255))
    labels = names(labels_for_image(img))
    assert "Green" in labels and "White" in labels and "Black" not in labels


# --- through the emulator ------------------------------------------------------------------------


@pytest.fixture
def rekognition(aws):
    return aws.client("rekognition")


def test_detect_labels_bytes_matches_pixels(rekognition):
    red = rekognition.detect_labels(Image={"Bytes": encode(red_circle_on_white())}, MinConfidence=0)
    blue = rekognition.detect_labels(Image={"Bytes": encode(blue_square_on_black(), "JPEG")}, MinConfidence=0)
    assert red["LabelModelVersion"] == "3.0"
    assert "Red" in names(red["Labels"]) and "Blue" not in names(red["Labels"])
    assert "Blue" in names(blue["Labels"]) and "Red" not in names(blue["Labels"])
    assert names(red["Labels"]) == names(labels_for_image(red_circle_on_white()))
    assert "ImageProperties" not in red


def test_detect_labels_s3_object_same_as_bytes(aws, rekognition):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="imgs")
    data = encode(blue_square_on_black())
    s3.put_object(Bucket="imgs", Key="images/ab/sq.png", Body=data)
    from_s3 = rekognition.detect_labels(Image={"S3Object": {"Bucket": "imgs", "Name": "images/ab/sq.png"}})
    from_bytes = rekognition.detect_labels(Image={"Bytes": data})
    assert from_s3["Labels"] == from_bytes["Labels"]
    assert "Blue" in names(from_s3["Labels"])


def test_max_labels_and_min_confidence(rekognition):
    image = {"Bytes": encode(red_circle_on_white())}
    everything = rekognition.detect_labels(Image=image, MinConfidence=0)["Labels"]
    assert len(everything) >= 4
    top2 = rekognition.detect_labels(Image=image, MaxLabels=2, MinConfidence=0)["Labels"]
    assert top2 == everything[:2]
    threshold = sorted(lb["Confidence"] for lb in everything)[len(everything) // 2]
    confident = rekognition.detect_labels(Image=image, MinConfidence=threshold)["Labels"]
    assert confident == [lb for lb in everything if lb["Confidence"] >= threshold]
    assert 0 < len(confident) < len(everything)
    assert rekognition.detect_labels(Image=image, MaxLabels=0)["Labels"] == []


def test_default_min_confidence_is_55(rekognition):
    labels = rekognition.detect_labels(Image={"Bytes": encode(checkerboard())})["Labels"]
    assert labels and all(lb["Confidence"] >= 55 for lb in labels)


def test_image_properties_feature(rekognition):
    resp = rekognition.detect_labels(
        Image={"Bytes": encode(red_circle_on_white())}, Features=["GENERAL_LABELS", "IMAGE_PROPERTIES"]
    )
    colors = resp["ImageProperties"]["DominantColors"]
    assert colors[0]["SimplifiedColor"] == "white"
    assert "red" in [c["SimplifiedColor"] for c in colors]
    assert resp["ImageProperties"]["Quality"]["Brightness"] > 50
    only_props = rekognition.detect_labels(
        Image={"Bytes": encode(red_circle_on_white())}, Features=["IMAGE_PROPERTIES"]
    )
    assert "Labels" not in only_props


def _error_code(call) -> str:
    with pytest.raises(ClientError) as info:
        call()
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return info.value.response["Error"]["Code"]


def test_invalid_image_format(rekognition):
    assert _error_code(lambda: rekognition.detect_labels(Image={"Bytes": b"not an image at all"})) == (
        "InvalidImageFormatException"
    )
    gif = encode(red_circle_on_white(), "GIF")  # a real image, but not a format Rekognition takes
    assert (
        _error_code(lambda: rekognition.detect_labels(Image={"Bytes": gif})) == "InvalidImageFormatException"
    )


def test_invalid_s3_object(aws, rekognition):
    aws.client("s3").create_bucket(Bucket="imgs")
    missing_key = {"S3Object": {"Bucket": "imgs", "Name": "nope.png"}}
    missing_bucket = {"S3Object": {"Bucket": "no-such-bucket", "Name": "x.png"}}
    assert _error_code(lambda: rekognition.detect_labels(Image=missing_key)) == "InvalidS3ObjectException"
    assert _error_code(lambda: rekognition.detect_labels(Image=missing_bucket)) == "InvalidS3ObjectException"


def test_invalid_parameters(aws):
    # Client-side validation off, so the emulator is the one that refuses.
    client = aws.client("rekognition", config=Config(parameter_validation=False))
    image = {"Bytes": encode(red_circle_on_white())}
    assert _error_code(lambda: client.detect_labels(Image={})) == "InvalidParameterException"
    assert _error_code(lambda: client.detect_labels(Image=image, MaxLabels=-1)) == "InvalidParameterException"
    assert (
        _error_code(lambda: client.detect_labels(Image=image, MinConfidence=101))
        == "InvalidParameterException"
    )


def test_image_too_large(rekognition):
    rng = random.Random(0)
    big = Image.frombytes("RGB", (1400, 1400), rng.randbytes(1400 * 1400 * 3))
    data = encode(big)  # noise does not compress: well over 5 MB
    assert len(data) > 5 * 1024 * 1024
    assert _error_code(lambda: rekognition.detect_labels(Image={"Bytes": data})) == "ImageTooLargeException"


def test_decompression_bomb_is_too_large_not_a_server_error(rekognition):
    bomb = encode(Image.new("1", (14000, 14000)))  # ~24 KB of PNG, 196 M pixels once decoded
    assert len(bomb) < 1024 * 1024
    assert _error_code(lambda: rekognition.detect_labels(Image={"Bytes": bomb})) == "ImageTooLargeException"
