"""Image validation and normalisation: hostile files are refused with the right reason, good ones
come out as deterministic, metadata-free RGB JPEGs at a content-addressed key."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib

import pytest
from PIL import Image, ImageCms

from ogiri.ingest.images import ImageRejected, normalise_image
from ogiri.ingest.reasons import Reason

LIMITS = {"max_pixels": 40_000_000, "max_side": 512}


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_bomb(width: int, height: int, valid_pixels: bool = True) -> bytes:
    """A 1-bit greyscale PNG declaring width x height; zero rows compress to almost nothing.

    With ``valid_pixels=False`` the IDAT is garbage: decoding it would fail as a corrupt file, so a
    ``decompression_bomb`` verdict proves the size was refused before any pixel was decoded.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    if valid_pixels:
        row = b"\0" * (1 + (width + 7) // 8)
        comp = zlib.compressobj(9)
        parts = [comp.compress(row * 1000) for _ in range(height // 1000)]
        parts.append(comp.compress(row * (height % 1000)))
        parts.append(comp.flush())
        idat = b"".join(parts)
    else:
        idat = b"\x78\x9c" + b"\xff" * 64
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    )


def gradient(size=(64, 48), mode="RGB") -> Image.Image:
    img = Image.linear_gradient("L").resize(size)
    return (
        img if mode == "L" else Image.merge("RGB", (img, img.transpose(Image.Transpose.FLIP_LEFT_RIGHT), img))
    )


def assert_clean_jpeg(result) -> Image.Image:
    out = decode(result.jpeg)
    assert out.format == "JPEG" and out.mode == "RGB"
    assert (out.width, out.height) == (result.width, result.height)
    assert "exif" not in out.info and "icc_profile" not in out.info
    assert not out.getexif()
    assert result.sha256 == hashlib.sha256(result.jpeg).hexdigest()
    assert result.key == f"images/{result.sha256[:2]}/{result.sha256}.jpg"
    return out


def test_rgb_jpeg_is_deterministic_and_content_addressed():
    data = encode(gradient(), "JPEG", quality=95)
    first = normalise_image(data, **LIMITS)
    second = normalise_image(bytes(data), **LIMITS)
    assert first.jpeg == second.jpeg and first.key == second.key
    assert_clean_jpeg(first)
    assert (first.width, first.height) == (64, 48)
    assert first.source_format == "JPEG"
    other = normalise_image(encode(gradient((65, 48)), "JPEG"), **LIMITS)
    assert other.key != first.key


def test_longest_side_is_bounded_keeping_aspect():
    for fmt in ("JPEG", "PNG"):  # JPEG takes the DCT draft path, PNG the plain one
        result = normalise_image(encode(gradient((2000, 1000)), fmt), max_pixels=40_000_000, max_side=500)
        assert (result.width, result.height) == (500, 250)
        assert_clean_jpeg(result)


def test_cmyk_jpeg_is_converted_to_rgb():
    cmyk = Image.new("CMYK", (40, 30), (0, 255, 255, 0))  # pure red in CMYK
    result = normalise_image(encode(cmyk, "JPEG"), **LIMITS)
    out = assert_clean_jpeg(result)
    r, g, b = out.getpixel((20, 15))
    assert r > 200 and g < 60 and b < 60


def test_greyscale_png_is_converted_to_rgb():
    result = normalise_image(encode(gradient(mode="L"), "PNG"), **LIMITS)
    out = assert_clean_jpeg(result)
    r, g, b = out.getpixel((10, 40))
    assert abs(r - g) <= 2 and abs(g - b) <= 2


def test_16_bit_greyscale_png_is_scaled_not_clipped():
    img = Image.new("I;16", (32, 16))
    img.paste(65535, (0, 0, 16, 16))
    img.paste(32896, (16, 0, 32, 16))  # 128 * 257
    result = normalise_image(encode(img, "PNG"), **LIMITS)
    out = assert_clean_jpeg(result)
    assert out.getpixel((4, 8))[0] >= 250
    assert 120 <= out.getpixel((28, 8))[0] <= 136


@pytest.mark.parametrize("mode", ["RGBA", "P", "LA"])
def test_transparency_is_composited_on_white(mode):
    img = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    img.paste((0, 0, 255, 255), (10, 0, 20, 20))
    if mode == "P":
        src = img.convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
        src.info["transparency"] = src.getpixel((0, 0))
        data = encode(src, "PNG", transparency=src.getpixel((0, 0)))
    elif mode == "LA":
        data = encode(img.convert("LA"), "PNG")
    else:
        data = encode(img, "PNG")
    out = assert_clean_jpeg(normalise_image(data, **LIMITS))
    assert min(out.getpixel((2, 10))) >= 245  # transparent -> white, not black
    assert max(out.getpixel((17, 10))[:2]) < 100  # the opaque blue half stays dark


def test_exif_orientation_is_applied_and_metadata_stripped():
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    img.paste((0, 0, 255), (20, 0, 40, 20))  # left red, right blue
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    exif[0x010F] = "SecretCam"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(img, "JPEG", exif=exif.tobytes(), icc_profile=icc, quality=95)
    assert Image.open(io.BytesIO(data)).getexif()[0x0112] == 6
    result = normalise_image(data, **LIMITS)
    out = assert_clean_jpeg(result)
    assert (out.width, out.height) == (20, 40)
    top, bottom = out.getpixel((10, 5)), out.getpixel((10, 35))
    assert top[0] > 200 and top[2] < 60  # the left (red) half is now on top
    assert bottom[2] > 200 and bottom[0] < 60
    assert b"SecretCam" not in result.jpeg and b"Exif" not in result.jpeg


def test_truncated_jpeg_is_rejected():
    data = encode(gradient((256, 256)), "JPEG", quality=95)
    with pytest.raises(ImageRejected) as err:
        normalise_image(data[: len(data) // 2], **LIMITS)
    assert err.value.reason == Reason.TRUNCATED_IMAGE


def test_truncated_png_is_rejected():
    data = encode(gradient((256, 256)), "PNG")
    with pytest.raises(ImageRejected) as err:
        normalise_image(data[: len(data) // 2], **LIMITS)
    assert err.value.reason == Reason.TRUNCATED_IMAGE


@pytest.mark.parametrize(
    "data",
    [
        b"<!DOCTYPE html><html><body><img src=x.jpg></body></html>",
        b"",
        b"\xff\xd8\xff",  # a JPEG signature and nothing else
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",  # EPS would run Ghostscript
        b"GIF89a",
    ],
    ids=["html", "empty", "jpeg-magic-only", "eps", "gif-magic-only"],
)
def test_non_images_are_rejected(data):
    with pytest.raises(ImageRejected) as err:
        normalise_image(data, **LIMITS)
    assert err.value.reason == Reason.NOT_AN_IMAGE


def test_png_decompression_bomb_is_refused():
    bomb = png_bomb(20_000, 20_000)  # 400 Mpixel, beyond Pillow's own hard limit
    assert len(bomb) < 200_000
    with pytest.raises(ImageRejected) as err:
        normalise_image(bomb, **LIMITS)
    assert err.value.reason == Reason.DECOMPRESSION_BOMB


def test_bomb_is_refused_from_the_header_before_decoding():
    # 49 Mpixel: under Pillow's default limit, over ours. The pixel data is garbage, so had it been
    # decoded the verdict would be a corrupt/truncated image instead.
    with pytest.raises(ImageRejected) as err:
        normalise_image(png_bomb(7000, 7000, valid_pixels=False), **LIMITS)
    assert err.value.reason == Reason.DECOMPRESSION_BOMB
    assert "7000x7000" in err.value.detail
    # The same file under a generous limit is decoded, and fails as a broken image.
    with pytest.raises(ImageRejected) as err:
        normalise_image(png_bomb(7000, 7000, valid_pixels=False), max_pixels=60_000_000, max_side=512)
    assert err.value.reason != Reason.DECOMPRESSION_BOMB


def test_pillow_global_limits_are_untouched():
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageRejected):
        normalise_image(png_bomb(20_000, 20_000), max_pixels=10, max_side=512)
    normalise_image(encode(gradient(), "PNG"), max_pixels=10_000, max_side=512)
    assert Image.MAX_IMAGE_PIXELS == before


def test_bad_arguments_are_reported():
    with pytest.raises(ValueError, match="max_side"):
        normalise_image(b"x", max_pixels=10, max_side=0)


def test_png_text_chunk_bomb_is_refused():
    small = encode(gradient((8, 8)), "PNG")
    ztxt = b"Comment\0\0" + zlib.compress(b"A" * (32 << 20), 9)  # 32 MB of text in ~32 KB
    assert len(ztxt) < 100_000
    bomb = small[:33] + png_chunk(b"zTXt", ztxt) + small[33:]  # right after IHDR
    with pytest.raises(ImageRejected) as err:
        normalise_image(bomb, **LIMITS)
    assert err.value.reason == Reason.DECOMPRESSION_BOMB


# ---------------------------------------------------------------- decode budget (issue 12)


def test_decode_budget_never_holds_more_than_its_limit():
    import threading
    import time

    from ogiri.ingest.images import DecodeBudget

    budget = DecodeBudget(100)
    seen, lock = [], threading.Lock()

    def work(cost):
        with budget.hold(cost):
            with lock:
                seen.append(budget.held)
            time.sleep(0.01)

    threads = [threading.Thread(target=work, args=(c,)) for c in [40, 40, 40, 250, 10, 60, 30] * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(seen) <= 100 and budget.peak <= 100 and budget.held == 0
    assert 100 in seen  # an oversized decode holds the whole budget: it runs alone


def test_large_images_decode_under_a_budget_to_the_same_bounds():
    from ogiri.ingest.images import DecodeBudget, decode_cost

    for mode, fmt in [("1", "PNG"), ("P", "GIF"), ("RGBA", "PNG"), ("I;16", "PNG")]:
        buf = io.BytesIO()
        Image.new(mode, (3000, 1200)).save(buf, fmt)
        budget = DecodeBudget(64 * 2**20)
        out = normalise_image(buf.getvalue(), max_pixels=4_000_000, max_side=512, budget=budget)
        assert (out.width, out.height) == (512, 205), mode
        with Image.open(buf) as probe:
            assert budget.peak == min(decode_cost(probe), budget.limit), mode
        assert budget.held == 0
