"""The model card of a training run (``card.json``) and the preprocessing it describes.

A run folder is a model: ``card.json`` says which architecture, which classes (index = class id), what input
(size, channels, mean/std) and where its weights are (``best.pth``, a plain state dict that loads with
``torch.load(weights_only=True)``). Training and inference both preprocess through ``Preprocess`` built from the
card, so a held-out score measured at the end of training is what ``visionkit eval classify`` reproduces.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import WeightsError
from .architectures import InputSpec

CARD_NAME = "card.json"
CARD_FORMAT = "visionkit-card/1"
BEST, LAST = "best.pth", "last.pth"


@dataclass
class ModelCard:
    """Everything needed to rebuild, run and trust a trained model, as JSON next to its weights."""

    task: str
    architecture: str
    classes: list[str]
    input: dict[str, Any]  # InputSpec fields: size, channels, mean, std
    data: dict[str, Any] = field(default_factory=dict)  # path, sha256, images per split, skipped files
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)  # best epoch, val and test scores
    seed: int = 0
    versions: dict[str, str] = field(default_factory=dict)
    weights: dict[str, str] = field(default_factory=lambda: {"best": BEST, "last": LAST})
    format: str = CARD_FORMAT

    @property
    def spec(self) -> InputSpec:
        i = self.input
        return InputSpec(int(i["size"]), int(i["channels"]), tuple(i["mean"]), tuple(i["std"]))

    def save(self, run_dir: Path) -> Path:
        return write_json_atomic(run_dir / CARD_NAME, asdict(self))

    @classmethod
    def load(cls, path: Path) -> ModelCard:
        """The card in a run folder, or ``path`` itself when it is the card; WeightsError when unreadable."""
        path = path / CARD_NAME if path.is_dir() else path
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise WeightsError(f"{path}: not a readable model card ({e})") from None
        if not isinstance(data, dict) or data.get("format") != CARD_FORMAT:
            raise WeightsError(f"{path}: not a visionkit model card (expected format {CARD_FORMAT!r})")
        known = set(cls.__dataclass_fields__)
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as e:
            raise WeightsError(f"{path}: incomplete model card ({e})") from None


def card_path_for(path: Path) -> Path | None:
    """The card that describes ``path`` (a run folder, its card or one of its checkpoints), or None."""
    if path.is_dir():
        candidate = path / CARD_NAME
    elif path.name == CARD_NAME:
        candidate = path
    else:
        candidate = path.with_name(CARD_NAME)
    return candidate if candidate.is_file() else None


def versions() -> dict[str, str]:
    import torch
    import torchvision

    from .. import __version__

    return {"visionkit": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "python": platform.python_version()}


def write_json_atomic(path: Path, data: Any) -> Path:
    """Write JSON through a temporary file and a rename, so an interrupted run never leaves half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


class Preprocess:
    """BGR uint8 image -> float32 CHW array: grey or RGB, resized to the square input, scaled to 0..1, normalised.

    One implementation for training, validation and inference, so they cannot drift apart.
    """

    def __init__(self, spec: InputSpec):
        self.spec = spec
        self.mean = np.asarray(spec.mean, np.float32).reshape(-1, 1, 1)
        self.std = np.asarray(spec.std, np.float32).reshape(-1, 1, 1)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if image.ndim == 2:
            image = image[..., None]
        if self.spec.channels == 1:
            pixels = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.shape[2] == 3 else image[..., 0]
            pixels = pixels[..., None]
        else:
            pixels = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.shape[2] == 1 else image[..., 2::-1]
        size = self.spec.size
        if pixels.shape[:2] != (size, size):
            shrink = pixels.shape[0] > size or pixels.shape[1] > size
            pixels = cv2.resize(pixels, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
            pixels = pixels.reshape(size, size, -1)
        chw = np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32) / 255.0
        return (chw - self.mean) / self.std


def load_trained(path: Path) -> tuple[ModelCard, Any]:
    """The card and the eval-mode network of a run folder, its card or one of its checkpoints (``best.pth`` by
    default; ``last.pth`` holds the network under ``"model"``), read with ``weights_only=True``."""
    import torch

    from .architectures import build_for

    card_file = card_path_for(path)
    if card_file is None:
        raise WeightsError(f"{path}: no {CARD_NAME} here or next to it (a `visionkit train` run folder holds one)")
    card = ModelCard.load(card_file)
    weights = card_file.parent / card.weights["best"] if path.is_dir() or path == card_file else path
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsError(f"{weights}: not a readable PyTorch state dict ({type(e).__name__})") from None
    if isinstance(state, dict) and "optimizer" in state:  # last.pth: the whole training state
        state = state["model"]
    model = build_for(card.task, card.architecture, len(card.classes), card.spec)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError) as e:
        raise WeightsError(f"{weights} does not fit {card.architecture} with {len(card.classes)} classes: "
                           f"{str(e).splitlines()[0]}") from None
    return card, model.eval()


def weights_file(path: Path) -> Path:
    """The checkpoint a run folder or its card stands for (``best.pth``); a checkpoint stands for itself."""
    card_file = card_path_for(path)
    if card_file is None or not (path.is_dir() or path == card_file):
        return path
    return card_file.parent / ModelCard.load(card_file).weights["best"]
