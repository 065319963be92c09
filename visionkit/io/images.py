"""Decode files and convert in-memory images to the one layout every backend takes: BGR uint8 (H, W, 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import SourceError

IMAGE_SUFFIXES = frozenset(".bmp .dib .jpeg .jpg .jpe .jp2 .png .webp .pbm .pgm .ppm .pxm .pnm .tif .tiff .sr "
                           ".ras .exr .hdr .pic .avif".split())
VIDEO_SUFFIXES = frozenset(".asf .avi .gif .m4v .mkv .mov .mp4 .mpeg .mpg .ts .wmv .webm .flv .3gp .ogv".split())


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file (EXIF orientation applied) to BGR uint8, or raise SourceError saying why not."""
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)  # np.fromfile + imdecode also handles non-ASCII paths
    except FileNotFoundError:
        raise SourceError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SourceError(f"{path}: is a directory, not an image") from None
    except OSError as e:
        raise SourceError(f"{path}: cannot read ({e.strerror})") from None
    return decode_image(data, str(path))


def decode_image(data: np.ndarray | bytes, name: str) -> np.ndarray:
    """Decode an encoded image's bytes (a file read from anywhere: disk, object store) like ``read_image``."""
    data = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes) else data
    if data.size == 0:
        raise SourceError(f"{name}: empty file (0 bytes)")
    # IMREAD_COLOR applies EXIF orientation and turns gray, BGRA and 16-bit files into BGR uint8 in one pass.
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise SourceError(f"{name}: not a decodable image (corrupt, truncated or not an image file)")
    return image


def to_bgr(image: Any, name: str = "image") -> np.ndarray:
    """Accept a numpy array (BGR/BGRA/gray, uint8/uint16/float in 0..1) or a PIL image; return BGR uint8.

    Numpy input is taken as BGR, OpenCV's convention (as ultralytics does); PIL input is RGB by definition.
    Anything else, an empty image or pixels that are not numbers (NaN) raise SourceError: the backends' resize
    and colour conversions would otherwise fail deep inside OpenCV or silently see black.
    """
    if not isinstance(image, np.ndarray):
        return _pil_to_bgr(image, name)
    if image.size == 0 or image.ndim not in (2, 3):
        raise SourceError(f"{name}: expected an (H, W) or (H, W, C) image, got shape {image.shape}")
    if image.dtype == np.uint16:
        image = (image // 257).astype(np.uint8)
    elif image.dtype.kind == "f":
        if np.isnan(image).any():
            raise SourceError(f"{name}: {image.dtype} image holds NaN values")
        image = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise SourceError(f"{name}: unsupported pixel type {image.dtype} (expected uint8, uint16 or float)")
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.shape[2] != 3:
        raise SourceError(f"{name}: expected 1, 3 or 4 channels, got {image.shape[2]}")
    return np.ascontiguousarray(image)


def _pil_to_bgr(image: Any, name: str) -> np.ndarray:
    from PIL import Image

    if not isinstance(image, Image.Image):
        raise SourceError(f"{name}: unsupported input type {type(image).__name__} "
                          "(expected a path, a numpy BGR array or a PIL image)")
    if image.width == 0 or image.height == 0:
        raise SourceError(f"{name}: empty PIL image ({image.width}x{image.height} pixels)")
    if image.mode.startswith("I;16") or image.mode == "I":  # 16-bit gray: PIL's convert("RGB") saturates
        return to_bgr(np.clip(np.asarray(image), 0, 65535).astype(np.uint16), name)
    try:
        rgb = np.asarray(image.convert("RGB"))
    except (ValueError, OSError) as e:  # modes PIL has no RGB conversion for (e.g. "La", "PA")
        raise SourceError(f"{name}: cannot convert a PIL {image.mode} image to RGB ({e})") from None
    return np.ascontiguousarray(rgb[..., ::-1])
