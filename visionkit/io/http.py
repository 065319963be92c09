"""http(s) URLs that name one image (``https://host/photo.jpg``, a camera's ``/snapshot`` endpoint): read once and
decoded like a file, not opened as a video stream (what ultralytics and supervision users expect of a URL ending in
.jpg). A URL is an image when its path ends in an image suffix, or, when its path says neither image nor video, when
the server answers with an ``image/*`` content type (one GET whose body is not read: MJPEG cameras answer
``multipart/x-mixed-replace`` and stay video streams).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import cv2
import numpy as np

from ..errors import SourceError
from .images import IMAGE_SUFFIXES, VIDEO_SUFFIXES

HTTP_SCHEMES = ("http://", "https://")
TIMEOUT_S = 10.0  # connect and per-read timeout
MAX_IMAGE_BYTES = 256 * 1024 * 1024  # a response larger than this is not "one image"
STREAM_SUFFIXES = frozenset((".mjpg", ".mjpeg", ".m3u8", ".mpd", ".sdp"))  # streams, never probed


def _suffix(url: str) -> str:
    return PurePosixPath(urlsplit(url).path).suffix.lower()


def is_image_url(spec: Any) -> bool:
    """An http(s) URL whose path ends in an image suffix (query strings allowed: ``a.jpg?size=large``)."""
    return isinstance(spec, str) and spec.lower().startswith(HTTP_SCHEMES) and _suffix(spec) in IMAGE_SUFFIXES


def serves_image(url: str) -> bool:
    """Whether an http(s) URL whose path names no image, video or stream suffix answers with an image; False for
    every other URL, and when the server cannot be reached (the video reader then reports it, reconnecting)."""
    if not url.lower().startswith(HTTP_SCHEMES) or _suffix(url) in IMAGE_SUFFIXES | VIDEO_SUFFIXES | STREAM_SUFFIXES:
        return False
    try:
        with urllib.request.urlopen(_request(url), timeout=TIMEOUT_S) as response:
            return response.headers.get_content_type().startswith("image/")
    except (OSError, ValueError):  # URLError, HTTPError, timeouts, a malformed URL
        return False


def read_image_url(url: str) -> np.ndarray:
    """Download and decode the image at ``url`` to BGR uint8, or raise SourceError saying why not (HTTP status,
    unreachable host, timeout, a body that is not an image)."""
    try:
        with urllib.request.urlopen(_request(url), timeout=TIMEOUT_S) as response:
            kind = response.headers.get_content_type()
            data = response.read(MAX_IMAGE_BYTES + 1)
    except urllib.error.HTTPError as e:
        raise SourceError(f"{url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        reason = e.reason.strerror if isinstance(e.reason, OSError) and e.reason.strerror else e.reason
        raise SourceError(f"{url}: cannot connect ({reason})") from None
    except TimeoutError:
        raise SourceError(f"{url}: no answer within {TIMEOUT_S:g} s") from None
    except (OSError, ValueError) as e:
        raise SourceError(f"{url}: cannot read ({e})") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise SourceError(f"{url}: larger than {MAX_IMAGE_BYTES >> 20} MB, not one image")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        raise SourceError(f"{url}: not a decodable image (the server sent {kind}, {len(data)} bytes)")
    return image


def _request(url: str) -> urllib.request.Request:
    return urllib.request.Request(url, headers={"User-Agent": "visionkit", "Accept": "image/*, */*;q=0.5"})
