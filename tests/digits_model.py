"""A tiny CNN trained on sklearn's digits in a few seconds, run as a visionkit classify backend (``.digits`` files),
for attack and explanation tests that need a classifier that is right on most images.

Images are the 8x8 digits scaled to 0..255 and enlarged 2x to 16x16 grey BGR, so CAMs have room to show where.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from visionkit.interpret.differentiable import Classifier, Differentiable, register_differentiable
from visionkit.results import Classification
from visionkit.tasks.base import Backend

SIZE = 16


class TinyCNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU())
        self.head = torch.nn.Sequential(torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(16 * 16, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def gray(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) 0..1 -> (B, 1, H, W): what the backend feeds the network."""
    return x.mean(1, keepdim=True)


class DigitsBackend(Backend):
    task = "classify"
    name = "test-digits"
    SUFFIXES = (".digits",)
    CONCURRENT = True
    OPTIONS = {"top_k": 5}

    def __init__(self, entry: Any, weights: Path, device: Any, options: dict[str, Any]):
        super().__init__(entry, weights, device, options)
        self.model = TinyCNN()
        self.model.load_state_dict(torch.load(weights, weights_only=True))
        self.model.eval()
        self.class_names = [str(i) for i in range(10)]
        self.input_hw = (SIZE, SIZE)  # the network's fixed input (the warm-up pass is this size too)

    def preprocess(self, images: list[np.ndarray]) -> torch.Tensor:
        x = torch.from_numpy(np.stack([im[..., ::-1].transpose(2, 0, 1) for im in images]).astype(np.float32) / 255)
        return gray(x)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.model(batch)

    def postprocess(self, raw: torch.Tensor, batch: Any, images: list[np.ndarray]) -> list[Classification]:
        return [Classification.from_probs(p, self.class_names, self.options["top_k"], keep_probs=True)
                for p in raw.softmax(1).numpy()]


class DigitsDifferentiable(Classifier):
    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        return gray(x)


@register_differentiable("classify", "test-digits")
def _digits(backend: DigitsBackend) -> Differentiable:
    return DigitsDifferentiable(backend, backend.model, [backend.model.features[-1]])


def digit_images() -> tuple[np.ndarray, np.ndarray]:
    """(n, 16, 16, 3) uint8 BGR images and (n,) labels of sklearn's digits."""
    from sklearn.datasets import load_digits

    d = load_digits()
    small = (d.images / 16 * 255).round().astype(np.uint8)
    big = np.stack([cv2.resize(im, (SIZE, SIZE), interpolation=cv2.INTER_NEAREST) for im in small])
    return np.repeat(big[..., None], 3, axis=-1), d.target.astype(np.int64)


def train(path: Path, images: np.ndarray, labels: np.ndarray, epochs: int = 6) -> Path:
    """Train TinyCNN on ``images`` (seconds on a CPU) and save its state dict at ``path``."""
    torch.manual_seed(0)
    model = TinyCNN()
    x = gray(torch.from_numpy(images[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32) / 255))
    y = torch.from_numpy(labels)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(epochs):
        for idx in torch.randperm(len(x)).split(64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    torch.save(model.state_dict(), path)
    return path


def write_folder(root: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """A classify attack folder: images/ and labels.csv (file,class_index)."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    with open(root / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "class_index"])
        for i, (im, label) in enumerate(zip(images, labels)):
            cv2.imwrite(str(root / "images" / f"{i:04d}.png"), im)
            w.writerow([f"{i:04d}.png", int(label)])
    return root
