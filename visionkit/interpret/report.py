"""Pictures of an attack: the score-vs-eps curve and the lecture's triptych (original, amplified perturbation,
adversarial image, each with its label)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import SinkError
from ..results import Classification, Detections, Result, SemanticMask

# Detections drawn on triptychs: attacks score detectors at evaluation settings (conf 0.001), whose hundreds of
# faint boxes would hide the picture; the interactive default shows what a user would see.
DISPLAY_CONF = 0.25


def write_png(path: Path, image: np.ndarray) -> Path:
    """Write ``image`` (BGR) to ``path``, creating its folder; a SinkError naming the path when that fails."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        written = cv2.imwrite(str(path), image)
    except (OSError, cv2.error) as e:
        raise SinkError(f"{path}: cannot write the image ({getattr(e, 'strerror', None) or e})") from None
    if not written:
        raise SinkError(f"{path}: cannot write the image")
    return path


def _shown(result: Result) -> Result:
    return result[result.scores >= DISPLAY_CONF] if isinstance(result, Detections) else result


def _label(result: Result) -> str:
    if isinstance(result, Classification):
        _, name, score = result.top1
        return f"{name} {score:.2f}"
    if isinstance(result, SemanticMask):  # the three largest classes
        return ", ".join(f"{n} {v:.0%}" for n, v in list(result.pixel_share().items())[:3])
    n = len(result)  # type: ignore[arg-type]
    pose = getattr(result, "keypoints", None) is not None
    what = ("person" if n == 1 else "people") if pose else ("object" if n == 1 else "objects")
    return f"{n} {what} (score >= {DISPLAY_CONF})"


def _panel(image: np.ndarray, caption: str, height: int) -> np.ndarray:
    """``image`` scaled to ``height`` (pixel-sharp when enlarged) over a white caption bar of a fixed height."""
    f = height / image.shape[0]
    image = cv2.resize(image, (max(round(image.shape[1] * f), 1), height),
                       interpolation=cv2.INTER_NEAREST if f > 1 else cv2.INTER_AREA)
    scale = 0.45
    (_, th), base = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    (tw, _), _ = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    width = max(image.shape[1], tw + 12)
    out = np.full((height + th + base + 12, width, 3), 255, np.uint8)
    out[:height, (width - image.shape[1]) // 2:(width - image.shape[1]) // 2 + image.shape[1]] = image
    cv2.putText(out, caption, (6, height + th + 6), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def save_triptych(path: Path, image: np.ndarray, adversarial: np.ndarray, clean: Result, attacked: Result,
                  eps: float) -> Path:
    """original | perturbation amplified to the full range (grey = unchanged) | adversarial, side by side, each
    panel 160..360 px tall, detections drawn on the outer two."""
    delta = adversarial.astype(np.float32) - image.astype(np.float32)
    peak = max(float(np.abs(delta).max()), 1.0)
    amplified = (127.5 + delta * (127.5 / peak)).round().clip(0, 255).astype(np.uint8)
    height = int(np.clip(image.shape[0], 160, 360))
    clean, attacked = _shown(clean), _shown(attacked)
    drawn = [im if isinstance(r, Classification) else r.plot(im) for im, r in ((image, clean),
                                                                             (adversarial, attacked))]
    strip = np.hstack([_panel(drawn[0], "original: " + _label(clean), height),
                       _panel(amplified, f"perturbation x{127.5 / peak:.0f} (eps {eps * 255:.0f}/255)", height),
                       _panel(drawn[1], "adversarial: " + _label(attacked), height)])
    return write_png(path, strip)


def save_curve(path: Path, report: Any) -> Path:
    """Score against eps (in /255 units), one line per input transform, the targeted hit rate dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [e * 255 for e in report.eps]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for name, values in report.scores.items():
        ax.plot(x, values, marker="o", label="as deployed" if name == "none" else f"{name} in front (diagnostic)")
    if report.target_rates is not None:
        ax.plot(x, report.target_rates, "k--", marker="x", label=f"reached target {report.targeted}")
    ax.set_xlabel("eps (L-inf, x/255 of the image range)")
    ax.set_ylabel(report.metric if report.target_rates is None else f"{report.metric}; share reaching the target")
    ax.set_ylim(0, 1)
    ax.set_title(f"{report.model}: {report.method.upper()} ({report.images} images)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    except OSError as e:
        raise SinkError(f"{path}: cannot write the curve ({e.strerror or e})") from None
    finally:
        plt.close(fig)
    return path
