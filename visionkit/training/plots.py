"""Training curves and the confusion matrix as PNG files (matplotlib's object API: no pyplot global state)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _save(fig: Any, path: Path) -> Path:
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)  # atomic: an interrupted run keeps the previous picture
    return path


def plot_curves(history: Sequence[dict[str, float]], path: Path, metric: str = "top1") -> Path:
    """Loss (left) and ``metric`` (right) per epoch, training and validation."""
    from matplotlib.figure import Figure

    epochs = [row["epoch"] for row in history]
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    for ax, key, label in zip(fig.subplots(1, 2), ("loss", metric), ("loss", metric)):
        for split, style in (("train", "-o"), ("val", "-s")):
            values = [row.get(f"{split}_{key}") for row in history]
            if any(v is not None for v in values):
                ax.plot(epochs, values, style, markersize=3, label=split)
        ax.set_xlabel("epoch")
        ax.set_title(label)
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, path)


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts; row = true class, column = predicted class."""
    return np.bincount(truth * num_classes + predicted, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def plot_confusion(matrix: np.ndarray, classes: Sequence[str], path: Path, title: str) -> Path:
    """Counts per (true, predicted) pair, each row shaded by its share of the true class."""
    from matplotlib.figure import Figure

    n = len(classes)
    side = min(max(4.0, 0.45 * n + 2), 16.0)
    fig = Figure(figsize=(side, side), layout="constrained")
    ax = fig.subplots()
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    if n <= 30:  # beyond that the labels and counts are unreadable anyway
        ax.set_xticks(range(n), classes, rotation=90)
        ax.set_yticks(range(n), classes)
        for (i, j), count in np.ndenumerate(matrix):
            if count:
                ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                        color="white" if share[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return _save(fig, path)
