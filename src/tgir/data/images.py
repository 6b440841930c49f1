"""Safe image decoding: existence and size checks, EXIF orientation, RGB, resize."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from tgir import TgirError

# The one pixel limit (CLI, index, training data and server uploads): an image of more than
# 50 megapixels is refused before it is decoded (a decompression bomb, or a photo far beyond
# what a 64-256 px model uses). 6000 x 6000 (36 MP) is accepted; 8000 x 7000 (56 MP) is not.
MAX_PIXELS = 50_000_000


def decode_image(source: str | Path | bytes, size: int | None = None,
                 max_pixels: int = MAX_PIXELS, max_bytes: int | None = None,
                 name: str | None = None) -> np.ndarray:
    """Decode ``source`` (a path or the encoded bytes) to a uint8 RGB array.

    ``size`` resizes to ``size x size`` (bilinear). Raises ``TgirError`` naming the file (or
    ``name``, e.g. an upload's file name) for a missing, unreadable, corrupt or oversized image
    (more than ``max_pixels`` pixels, checked before decoding, or more than ``max_bytes``
    bytes); never returns a placeholder.
    """
    what = name or ("the uploaded image" if isinstance(source, bytes) else str(source))
    if not isinstance(source, bytes):
        p = Path(source)
        if not p.is_file():
            raise TgirError(f"image not found: {p}")
        try:
            source = p.read_bytes()
        except OSError as e:
            raise TgirError(f"cannot read image {p}: {e.strerror}") from e
    if not source:
        raise TgirError(f"empty image file: {what}")
    if max_bytes is not None and len(source) > max_bytes:
        raise TgirError(f"image is {len(source)} bytes; the limit is {max_bytes}: {what}")
    try:
        with Image.open(io.BytesIO(source)) as im:
            if im.width * im.height > max_pixels:
                raise TgirError(f"image too large ({im.width}x{im.height}, "
                                f"{im.width * im.height / 1e6:.1f} megapixels; the limit is "
                                f"{max_pixels / 1e6:g}): {what}")
            im.load()  # decode now: a truncated file fails here, not later
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16-bit / int / float grey
                a = np.asarray(im, dtype=np.float64)
                hi = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
                im = Image.fromarray(np.clip(a / hi * 255.0, 0, 255).astype(np.uint8), "L")
            if im.mode in ("RGBA", "LA", "P", "PA"):
                im = im.convert("RGBA")
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, im)
            im = im.convert("RGB")
            if size is not None and im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8).copy()
    except UnidentifiedImageError as e:
        raise TgirError(f"corrupt or unsupported image: {what} is not an image format Pillow "
                        f"reads (PNG, JPEG, WebP, GIF, BMP, TIFF)") from e
    except (Image.DecompressionBombError, OSError, SyntaxError, ValueError) as e:
        # Pillow's messages may name its in-memory buffer (<_io.BytesIO object at 0x...>)
        why = re.sub(r"<_io\.BytesIO object at 0x[0-9a-f]+>", "the data", str(e))
        raise TgirError(f"corrupt or unsupported image: {what} ({why})") from e


def load_images(paths: list[Path], size: int | None = None, desc: str = "images",
                strict: bool = False) -> np.ndarray:
    """Decode many images into one (N, H, W, 3) uint8 array, with a progress bar.

    Nothing is skipped silently. By default every problem is collected first (missing files
    before any decoding, then unreadable or mis-sized ones) and reported in one error with the
    counts and the first names; ``strict`` stops at the first problem instead.
    """
    from tqdm import tqdm

    if not paths:
        raise TgirError(f"no {desc} to load")
    paths = [Path(p) for p in paths]
    if not strict:
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise TgirError(_problems(f"{len(missing)} of {len(paths)} {desc} files are missing",
                                      [str(p) for p in missing]))
    first = decode_image(paths[0], size)
    out = np.empty((len(paths), *first.shape), dtype=np.uint8)
    out[0] = first
    bad: list[str] = []
    # disable=None: the bar shows on a terminal only
    for i in tqdm(range(1, len(paths)), desc=f"load {desc}", leave=False, mininterval=1.0,
                  disable=None):
        try:
            img = decode_image(paths[i], size)
            if img.shape != first.shape:
                raise TgirError(f"image {paths[i]} is {img.shape[1]}x{img.shape[0]}, expected "
                                f"{first.shape[1]}x{first.shape[0]} (pass an image size to "
                                f"resize)")
        except TgirError as e:
            if strict:
                raise
            bad.append(str(e))
            continue
        out[i] = img
    if bad:
        raise TgirError(_problems(f"{len(bad)} of {len(paths)} {desc} files cannot be used",
                                  bad))
    return out


def _problems(head: str, items: list[str], show: int = 5) -> str:
    more = f" ... and {len(items) - show} more" if len(items) > show else ""
    return f"{head}: " + "; ".join(items[:show]) + more


def to_tensor_batch(images: np.ndarray):
    """uint8 (B,H,W,3) -> float tensor (B,3,H,W) in [0,1]."""
    import torch

    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)
