"""Validate untrusted image bytes with Pillow and normalise them to a content-addressed RGB JPEG.

:func:`normalise_image` opens only raster formats Pillow decodes itself (no EPS/PDF, which would
run external programs), refuses decompression bombs from the header size **before** any pixel is
decoded, verifies the file, then decodes it, applies the EXIF orientation, converts to 8-bit RGB
(alpha composited on white, CMYK/greyscale/palette/16-bit handled), bounds the longest side and
writes a baseline JPEG without any metadata (no EXIF, ICC, comments). The same input bytes always
give byte-identical output, and the S3 key is derived from the output's SHA-256.

Memory is bounded twice: the pixel count is checked from the header before any decode, and every
decode first takes its estimated decoded size from a shared :class:`DecodeBudget` (a chunk's
threads together hold at most the budget; an image larger than the whole budget decodes alone).
JPEGs decode at a reduced DCT scale (``draft``); large images of other formats are box-reduced in
their own mode before the RGB conversion, so a 1-bit 36 MP PNG never becomes a 144 MB RGBA copy.

Pillow's own global limit (``PIL.Image.MAX_IMAGE_PIXELS``) is left untouched; images above twice
that limit are refused by Pillow itself and reported as ``decompression_bomb`` too, so the effective
limit is ``min(max_pixels, 2 * Image.MAX_IMAGE_PIXELS)``.
"""

from __future__ import annotations

import ctypes
import hashlib
import io
import threading
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from ogiri.catalog import image_s3_key
from ogiri.ingest.reasons import Reason, Rejected

#: Formats accepted as input. Everything else (including EPS/PDF/ICO/...) is ``not_an_image``.
INPUT_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
_WHITE = (255, 255, 255)
#: Peak bytes per pixel of one decode by source mode (decoder buffers, the decoded image and the
#: widened copy before the reduce), measured on 36 MP images with ``ru_maxrss``; unknown modes
#: count as the widest.
_DECODE_BYTES_PER_PIXEL = {"1": 3, "L": 2, "P": 6, "RGB": 8, "RGBA": 12}
_DEFAULT_BYTES_PER_PIXEL = 12


class DecodeBudget:
    """A weighted semaphore over decoded-pixel bytes, shared by the threads of one chunk task.

    ``hold(cost)`` waits until ``cost`` bytes fit in what the other decodes leave; a cost above the
    whole budget waits until it is alone. So concurrent decodes never hold more than
    ``max(limit, largest single decode)`` bytes of pixels, whatever the thread count.
    """

    def __init__(self, limit_bytes: int):
        if limit_bytes < 1:
            raise ValueError("limit_bytes must be >= 1")
        self.limit = limit_bytes
        self.held = 0
        self.peak = 0
        self._cond = threading.Condition()

    @contextmanager
    def hold(self, cost: int):
        """Hold ``min(cost, limit)`` bytes of the budget for the ``with`` block."""
        cost = max(1, min(cost, self.limit))
        with self._cond:
            self._cond.wait_for(lambda: self.held + cost <= self.limit)
            self.held += cost
            self.peak = max(self.peak, self.held)
        try:
            yield
        finally:
            with self._cond:
                self.held -= cost
                self._cond.notify_all()


_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter
_freed_memory_returned = False


def return_freed_memory(threshold_bytes: int = 4 << 20) -> bool:
    """Have glibc serve allocations of ``threshold_bytes`` or more with ``mmap`` in this process, so
    a decoded image goes back to the OS when it is freed. Without it each decode thread's malloc
    arena keeps its peak (measured: 16 threads decoding 36 MP images one at a time still held 2 GB),
    and a decode budget would bound nothing. Idempotent; ``False`` where there is no glibc."""
    global _freed_memory_returned
    if not _freed_memory_returned:
        try:
            _freed_memory_returned = ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, threshold_bytes) == 1
        except (OSError, AttributeError):
            return False
    return _freed_memory_returned


def decode_cost(img: Image.Image) -> int:
    """Estimated peak bytes to decode ``img`` at its (draft-reduced) size and shrink it."""
    width, height = img.size
    return width * height * _DECODE_BYTES_PER_PIXEL.get(img.mode, _DEFAULT_BYTES_PER_PIXEL)


class ImageRejected(Rejected):
    """The bytes are not an acceptable image; ``reason`` is a :class:`Reason`."""


@dataclass(frozen=True)
class NormalisedImage:
    """A normalised JPEG, its SHA-256 (hex), its size, and its content-addressed S3 key."""

    jpeg: bytes
    sha256: str
    width: int
    height: int
    key: str
    source_format: str = ""
    source_width: int = 0
    source_height: int = 0


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Open lazily (header only) and refuse bombs by declared size."""
    try:
        img = Image.open(io.BytesIO(data), formats=list(INPUT_FORMATS))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:  # warning: if -W error
        raise ImageRejected(Reason.DECOMPRESSION_BOMB, str(exc)) from None
    except UnidentifiedImageError:  # its message holds the BytesIO repr (an address): not stable
        raise ImageRejected(
            Reason.NOT_AN_IMAGE, f"not a supported image (accepted: {', '.join(INPUT_FORMATS)})"
        ) from None
    except Exception as exc:  # a recognised format with a corrupt header (or a text-chunk bomb)
        raise _decode_error(exc, "open") from None
    width, height = img.size
    if width < 1 or height < 1:
        raise ImageRejected(Reason.NOT_AN_IMAGE, f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageRejected(
            Reason.DECOMPRESSION_BOMB, f"{width}x{height} = {width * height} pixels > {max_pixels}"
        )
    return img


def _decode_error(exc: BaseException, stage: str) -> ImageRejected:
    text = str(exc)
    lowered = text.lower()
    if isinstance(exc, Image.DecompressionBombError) or "decompressed data too large" in lowered:
        return ImageRejected(Reason.DECOMPRESSION_BOMB, text)
    if isinstance(exc, EOFError) or any(
        w in lowered for w in ("truncated", "broken data stream", "premature")
    ):
        return ImageRejected(Reason.TRUNCATED_IMAGE, f"{stage}: {text or type(exc).__name__}")
    return ImageRejected(Reason.NOT_AN_IMAGE, f"{stage}: {type(exc).__name__}: {text}")


def _to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB, alpha composited on white."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    elif mode in ("1", "CMYK", "YCbCr", "LAB", "HSV", "L"):
        return img.convert("RGB")
    elif mode.startswith("I") or mode == "F":
        lo, hi = img.getextrema()
        grey = img.convert("I") if mode != "F" else img
        scale = 1.0 if hi <= 255 else (1 / 257 if hi <= 65535 and lo >= 0 else 255 / max(hi, 1))
        if mode == "F":
            grey = grey.point(lambda v: v * scale).convert("L")
        else:
            grey = grey.point(lambda v: v * scale, "L") if scale != 1.0 else grey.convert("L")
        return grey.convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "A" in mode:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*_WHITE, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _shrink(img: Image.Image, max_side: int) -> Image.Image:
    """Box-reduce by an integer factor while the longest side stays at least ``max_side``, before
    the RGB conversion (so the Lanczos resize after it works on a small copy). Modes that
    ``reduce`` does not take are widened first: 1-bit to ``L``, 16-bit to ``I``, palette to RGB(A)."""
    factor = max(img.size) // max_side
    if factor < 2:
        return img
    if img.mode == "1":
        img = img.convert("L")
    elif img.mode.startswith("I;16"):
        img = img.convert("I")
    elif img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    return img.reduce(factor)


@contextmanager
def _nothing():
    yield


def _decode_to_jpeg(img: Image.Image, max_side: int, jpeg_quality: int) -> tuple[bytes, tuple[int, int]]:
    """Decode, orient, shrink, convert to RGB, bound the longest side and encode a clean JPEG."""
    img.load()
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # unreadable EXIF: keep the stored orientation rather than drop the image
        pass
    img = _to_rgb(_shrink(img, max_side))
    width, height = img.size
    longest = max(width, height)
    if longest > max_side:
        factor = max_side / longest
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        img = img.resize(size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    clean = Image.new("RGB", img.size)
    clean.paste(img)  # a fresh image carries no info/EXIF/ICC from the source
    clean.save(out, format="JPEG", quality=jpeg_quality, optimize=False, progressive=False)
    return out.getvalue(), clean.size


def normalise_image(
    data: bytes, *, max_pixels: int, max_side: int, jpeg_quality: int = 90, budget: DecodeBudget | None = None
) -> NormalisedImage:
    """Validate ``data`` and return the normalised JPEG, or raise :class:`ImageRejected`.

    Reasons: ``not_an_image`` (unknown/unsupported/corrupt), ``truncated_image`` (data ends early),
    ``decompression_bomb`` (declared width*height above ``max_pixels``; checked before decoding).
    """
    if max_pixels < 1 or max_side < 1 or not 1 <= jpeg_quality <= 95:
        raise ValueError("max_pixels and max_side must be >= 1 and jpeg_quality in 1..95")
    if not data:
        raise ImageRejected(Reason.NOT_AN_IMAGE, "empty body")
    probe = _open(data, max_pixels)
    source_format = probe.format or ""
    try:
        probe.verify()
    except Exception as exc:  # Pillow raises many types for corrupt files
        raise _decode_error(exc, "verify") from None
    finally:
        probe.close()

    img = _open(data, max_pixels)  # verify() leaves the image unusable: reopen
    source_size = img.size
    try:
        if img.format in ("JPEG", "MPO"):
            img.draft(None, (max_side, max_side))  # DCT-domain downscale: faster, less memory
        with budget.hold(decode_cost(img)) if budget is not None else _nothing():
            jpeg, size = _decode_to_jpeg(img, max_side, jpeg_quality)
    except ImageRejected:
        raise
    except Exception as exc:
        raise _decode_error(exc, "decode") from None
    digest = hashlib.sha256(jpeg).hexdigest()
    return NormalisedImage(
        jpeg=jpeg,
        sha256=digest,
        width=size[0],
        height=size[1],
        key=image_s3_key(digest),
        source_format=source_format,
        source_width=source_size[0],
        source_height=source_size[1],
    )
