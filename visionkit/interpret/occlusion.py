"""Gradient-free explanations: they only run the predictor, end to end, on altered copies of the image, so they
work on every backend (ONNX Runtime, quantized graphs, TFLite) and explain the whole pipeline, preprocessing
included.

  occlusion  captum's ``Occlusion``: slide a grey patch over the image; a pixel's importance is how much the
             target's score drops while it is covered
  rise       RISE (Petsiuk et al. 2018): average many random smooth masks, each weighted by the target's score on
             the image seen through it (D-RISE for boxes: the score is IoU x confidence of a same-class detection)

Scores come from ``targets.result_scores``, so every target of an image is explained in the same passes.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from .targets import Target, result_scores


def _normalized(maps: np.ndarray) -> np.ndarray:
    """Importance clipped at 0 (what lowers the score when removed) and scaled to 0..1 per map, as CAMs are."""
    maps = np.maximum(maps, 0)
    return (maps / np.maximum(maps.reshape(len(maps), -1).max(1), 1e-12)[:, None, None]).astype(np.float32)


def occlusion_maps(predictor: Any, image: np.ndarray, targets: list[Target], window: int | None = None,
                   stride: int | None = None) -> np.ndarray:
    """(n, H, W) occlusion maps; ``window`` defaults to 1/8 of the image's longer side, ``stride`` to half of it."""
    import torch
    from captum.attr import Occlusion

    h, w = image.shape[:2]
    window = window or max(4, round(max(h, w) / 8))
    stride = stride or max(1, window // 2)

    def scores(x: torch.Tensor) -> torch.Tensor:  # captum's "aggregation" mode: one image in, all targets out
        im = x[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
        return torch.from_numpy(result_scores(predictor.predict([im])[0], targets))

    x = torch.from_numpy(image.transpose(2, 0, 1).astype(np.float32))[None]
    grey = torch.full_like(x, 127.0)
    attr = Occlusion(scores).attribute(x, sliding_window_shapes=(3, window, window), strides=(3, stride, stride),
                                       baselines=grey, perturbations_per_eval=1)
    return _normalized(attr[:, 0].numpy())


def rise_maps(predictor: Any, image: np.ndarray, targets: list[Target], samples: int = 400, cells: int = 8,
              keep: float = 0.5, seed: int = 0) -> np.ndarray:
    """(n, H, W) RISE maps from ``samples`` masks: a ``cells`` x ``cells`` grid of cells kept with probability
    ``keep``, upsampled bilinearly and shifted by a random sub-cell offset (the paper's recipe)."""
    h, w = image.shape[:2]
    rng = np.random.default_rng(seed)
    ch, cw = int(np.ceil(h / cells)), int(np.ceil(w / cells))
    grey = np.full_like(image, 127)
    total = np.zeros((len(targets), h, w), np.float64)
    batch = max(predictor.batch_size, 1)
    for start in range(0, samples, batch):
        masks = []
        for _ in range(min(batch, samples - start)):
            grid = (rng.random((cells + 1, cells + 1)) < keep).astype(np.float32)
            up = cv2.resize(grid, ((cells + 1) * cw, (cells + 1) * ch), interpolation=cv2.INTER_LINEAR)
            dy, dx = rng.integers(0, ch), rng.integers(0, cw)
            masks.append(up[dy:dy + h, dx:dx + w])
        shown = [(image * m[..., None] + grey * (1 - m[..., None])).round().astype(np.uint8) for m in masks]
        for m, result in zip(masks, predictor.predict(shown)):
            total += result_scores(result, targets)[:, None, None] * m[None]
    return _normalized(total / (samples * keep))
