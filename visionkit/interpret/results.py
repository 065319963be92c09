"""The result of ``visionkit.explain``: one heat map per explained prediction, on the source image.

It follows ``visionkit.results``: a ``Result`` dataclass of numbers (no frames), validated on creation, with
``to_dict`` (JSON-ready; maps downsampled to 8-bit so a line stays small) and ``plot`` (an overlay copy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import cv2
import numpy as np

from ..results import Result
from .targets import Target

# to_dict keeps each map at this many pixels on its longer side.
DICT_MAP_SIDE = 64


@dataclass(kw_only=True)
class Explanation(Result):
    """``maps`` (n, H, W) float32 in 0..1 at source size, ``maps[i]`` explaining ``targets[i]``; ``method`` made
    them, reading ``layers`` (CAMs) of the model; ``prediction`` is the predictor's result they explain."""

    kind: ClassVar[str] = "explanation"
    method: str
    maps: np.ndarray
    targets: list[Target]
    prediction: Result
    layers: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.maps = np.asarray(self.maps, dtype=np.float32)
        if self.maps.ndim != 3 or len(self.maps) != len(self.targets):
            raise ValueError(f"maps must have shape (n, H, W) with n={len(self.targets)} targets, "
                             f"but got shape {self.maps.shape}")

    def __len__(self) -> int:
        return len(self.targets)

    def mass_inside(self, box: tuple[float, float, float, float] | np.ndarray, index: int = 0) -> float:
        """Share of map ``index``'s total mass that lies inside ``box`` (xyxy, image pixels)."""
        x1, y1, x2, y2 = (int(round(float(v))) for v in box)
        m = self.maps[index]
        return float(m[max(y1, 0):max(y2, 0), max(x1, 0):max(x2, 0)].sum() / max(float(m.sum()), 1e-12))

    def _payload(self) -> dict[str, Any]:
        items = []
        for t, m in zip(self.targets, self.maps):
            h, w = m.shape
            scale = DICT_MAP_SIDE / max(h, w)
            small = cv2.resize(m, (max(round(w * scale), 1), max(round(h * scale), 1)), interpolation=cv2.INTER_AREA)
            py, px = np.unravel_index(int(np.argmax(m)), m.shape)
            items.append({"target": t.to_dict(), "peak": [int(px), int(py)],
                          "map": np.round(small * 255).astype(np.uint8).tolist()})
        return {"method": self.method, "layers": self.layers, "prediction": self.prediction.to_dict(),
                "explanations": items}

    def plot(self, image: np.ndarray, index: int = 0, alpha: float = 0.5, **style: Any) -> np.ndarray:  # type: ignore[override]
        """``image`` (BGR) under map ``index`` as a jet overlay, with the target's box and label drawn."""
        from pytorch_grad_cam.utils.image import show_cam_on_image

        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32) / 255
        overlay = cv2.cvtColor(show_cam_on_image(rgb, self.maps[index], use_rgb=True, image_weight=1 - alpha),
                               cv2.COLOR_RGB2BGR)
        t = self.targets[index]
        lw = max(1, round(sum(image.shape[:2]) / 2 * 0.003))
        if t.box is not None:
            x1, y1, x2, y2 = (int(round(v)) for v in t.box)
            cv2.rectangle(overlay, (x1, y1), (x2, y2), (255, 255, 255), lw + 1, cv2.LINE_AA)
        label = f"{self.method}: {t.class_name} {t.score:.2f}"
        scale = lw / 3
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, max(lw - 1, 1))
        cv2.rectangle(overlay, (0, 0), (tw + 8, th + base + 8), (0, 0, 0), -1)
        cv2.putText(overlay, label, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), max(lw - 1, 1),
                    cv2.LINE_AA)
        return overlay
