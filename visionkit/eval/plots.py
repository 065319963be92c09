"""PNG plots of an evaluation (``visionkit eval ... --plots DIR``): precision-recall curves and confusion matrices,
drawn with matplotlib's non-interactive Agg backend (no display needed). ``pip install "visionkit[plots]"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OptionError, SinkError


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise OptionError("--plots needs matplotlib: pip install 'visionkit[plots]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120, bbox_inches="tight")
    except OSError as e:
        raise SinkError(f"cannot write plot {path}: {e.strerror or e}") from None
    finally:
        fig.clear()
        _pyplot().close(fig)
    return path


def pr_curves(evaluator: Any, path: str | Path, title: str) -> Path:
    """Precision against recall at IoU 0.5 for every category with ground truth (thin), and their mean (thick),
    from COCOeval's accumulated ``precision`` over its 101 recall points (area "all", the largest maxDets)."""
    plt = _pyplot()
    recall = evaluator.params.recThrs
    precision = evaluator.eval["precision"][0, :, :, 0, -1]  # [R, K]
    fig, ax = plt.subplots(figsize=(7, 6))
    curves = []
    legend = precision.shape[1] <= 20  # one entry per class while the legend stays readable
    for k, cat in enumerate(evaluator.params.catIds):
        p = precision[:, k]
        if (p > -1).any():
            p = np.where(p > -1, p, 0)
            curves.append(p)
            name = evaluator.cocoGt.cats[int(cat)]["name"]
            ax.plot(recall, p, linewidth=0.8, alpha=0.5, label=f"{name} {p.mean():.3f}" if legend else None)
    if curves:
        mean = np.mean(curves, axis=0)
        ax.plot(recall, mean, color="blue", linewidth=3, label=f"all classes, AP50 {mean.mean():.3f}")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.01), title=title)
    ax.legend(loc="lower left", fontsize=7)
    ax.grid(alpha=0.3)
    return _save(fig, Path(path))


def confusion_matrix(matrix: np.ndarray, names: list[str], path: str | Path, title: str) -> Path:
    """A [true, predicted] count matrix, each row normalised to 1 (how a true class was predicted), cells with
    counts annotated when the matrix is small enough to read."""
    plt = _pyplot()
    matrix = np.asarray(matrix, np.float64)
    rows = matrix.sum(1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    n = len(names)
    side = min(max(6, 0.3 * n + 3), 30)
    fig, ax = plt.subplots(figsize=(side, side * 0.9))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    ax.set_xticks(range(n), names, rotation=90, fontsize=max(4, 10 - n // 10))
    ax.set_yticks(range(n), names, fontsize=max(4, 10 - n // 10))
    ax.set(xlabel="predicted", ylabel="true", title=title)
    if n <= 30:
        for (i, j), v in np.ndenumerate(matrix):
            if v:
                ax.text(j, i, f"{int(v)}", ha="center", va="center", fontsize=7,
                        color="white" if share[i, j] > 0.5 else "black")
    return _save(fig, Path(path))


def classification_confusion(pairs: list[tuple[int, int]], names: list[str], path: str | Path, title: str,
                             limit: int = 40) -> Path:
    """The confusion matrix of (label, best class) pairs over at most ``limit`` classes (ImageNet's 1000 would not be
    readable): first those of the misses (true and predicted), then the most frequent others."""
    counts: dict[int, int] = {}
    missed: set[int] = set()
    for label, best in pairs:
        counts[label] = counts.get(label, 0) + 1
        counts[best] = counts.get(best, 0) + 1
        if label != best:
            missed |= {label, best}
    classes = sorted(sorted(counts, key=lambda c: (c not in missed, -counts[c]))[:limit])
    index = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), np.int64)
    for label, best in pairs:
        if label in index and best in index:
            matrix[index[label], index[best]] += 1
    labels = [names[c] if 0 <= c < len(names) else str(c) for c in classes]
    return confusion_matrix(matrix, labels, path, title)
