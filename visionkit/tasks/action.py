"""Action recognition in video: Kinetics-400 clip classifiers over a sliding window of frames.

Backend:
  torchvision   torchvision's video classifiers (R3D-18, MC3-18, R(2+1)D-18, S3D, MViT v1/v2) with a state dict.
                Frames are preprocessed by the ``VideoClassification`` transforms of the catalog's ``weights_enum``
                (resize, centre crop, mean/std: torchvision's own object, not a copy), one frame at a time as it
                arrives: those transforms work frame by frame, so the result equals transforming the whole clip,
                and a frame shared by overlapping windows is prepared once and kept small. PyTorch, or the
                torch.onnx export (free batch and clip length) on ONNX Runtime or OpenVINO; MViT's export holds
                ONNX sequence ops OpenVINO does not convert, so MViT runs on PyTorch or ONNX Runtime only.

The sliding window over a stream (what ``visionkit.load("action")`` returns) is
``visionkit.composites.action.ActionPredictor``, built on a Predictor of this backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..catalog import ModelEntry
from ..device import Device
from ..errors import OptionError
from ..io.sources import Frame
from ..results import ActionPrediction
from ._runtime import load_state_dict, torch_net, torchvision_weights
from .base import Backend
from .yolo import PT_RUNTIMES

# (frame index, preprocessed frame (C, 1, h, w)): what a window holds per frame.
_Item = tuple[int, Any]
# A frame, the window prediction labelling it, and whether that window was classified on this frame's arrival.
_Labelled = tuple[Frame, ActionPrediction, bool]


class TorchvisionAction(Backend):
    task = "action"
    name = "torchvision"
    # 16 frames: the clip length of most torchvision video models; each catalog entry sets its own in `defaults`.
    OPTIONS = {"window": 16, "stride": None, "top_k": 5}

    def __init__(self, entry: ModelEntry, weights: Path, device: Device, options: dict[str, Any]):
        super().__init__(entry, weights, device, options)
        import torchvision

        arch = entry.arch or entry.name
        enum_member = torchvision_weights(entry)
        model = torchvision.models.get_model(arch, weights=None, num_classes=len(self.class_names))
        load_state_dict(model, weights, arch)
        self.transforms = enum_member.transforms()
        self.min_frames = int(enum_member.meta.get("min_temporal_size", 1))
        # The MViT builder sizes the positional encoding for exactly min_temporal_size frames; the others take any T.
        self.fixed_frames = self.min_frames if isinstance(model, torchvision.models.video.MViT) else None
        # Off PyTorch: the export at the clip shape (1, 3, T, h, w) with a free batch axis, and a free T too unless
        # the model fixes it: a window's length is an option, and a one-image call is a clip of min_frames.
        if self.fixed_frames and device.runtime == "openvino":
            raise OptionError(f"runtime openvino: {entry.name}'s ONNX export holds ONNX sequence operations "
                              "(SequenceInsert) that OpenVINO does not convert; use runtime torch or onnx")
        length = self.fixed_frames or max(int(options["window"]), self.min_frames)
        free = {0: "batch"} if self.fixed_frames else {0: "batch", 2: "frames"}
        net = torch_net(model, weights, device, (1, 3, length, *self.transforms.crop_size), f"{arch}-clip",
                        input_axes=free)
        self.session, self.model, self.dtype = net.session, net.module, net.dtype

    @classmethod
    def runtimes(cls, suffix: str) -> tuple[str, ...]:
        return PT_RUNTIMES  # the network exports to ONNX (torch.onnx), which ONNX Runtime and OpenVINO run (not MViT)

    def warmup_input(self) -> list[np.ndarray]:
        return [np.zeros((*self.transforms.crop_size, 3), np.uint8)]

    def preprocess(self, images: list[np.ndarray]) -> Any:
        """BGR frames -> (C, T, h, w) float, each frame through the enum's ``VideoClassification`` preset.

        The preset takes (T, C, H, W) uint8 RGB and returns (C, T, h, w): its ``(N, T, C, H, W) => (N, C, T, H, W)``
        permute; here T = 1 per call, so frames of different sizes (a folder of stills) mix freely.
        """
        import torch

        frames = [torch.from_numpy(np.ascontiguousarray(im[..., ::-1].transpose(2, 0, 1))).to(self.device.torch)
                  for im in images]
        return torch.cat([self.transforms(f[None]) for f in frames], dim=1)

    def clip(self, frames: list[Any], window: int) -> Any:
        """A window's (C, 1, h, w) frames -> the (1, C, T, h, w) model input, sampled evenly (see the module doc)."""
        import torch

        length = self.fixed_frames or max(window, self.min_frames)
        index = np.linspace(0, len(frames) - 1, length).round().astype(int)
        return torch.cat([frames[i] for i in index], dim=1)[None].to(self.dtype)

    def forward(self, batch: Any) -> Any:
        """A clip (1, C, T, h, w), or preprocessed frames (C, T, h, w) taken as one clip of them (what a plain
        Predictor's priming pass and one-image calls give; streams go through the sliding window instead)."""
        clip = batch if batch.ndim == 5 else self.clip(list(batch.split(1, dim=1)), batch.shape[1])
        return self.session.run([clip])[0]

    def postprocess(self, raw: Any, batch: Any, images: list[np.ndarray]) -> list[ActionPrediction]:
        import torch

        probs = torch.as_tensor(raw).float().softmax(1).cpu().numpy()
        return [ActionPrediction.from_probs(p, self.class_names, int(self.options["top_k"])) for p in probs]
