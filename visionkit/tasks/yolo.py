"""The ultralytics YOLO family's codecs: images -> letterboxed input, model outputs -> results, for detection, pose,
instance segmentation and classification, on every runtime.

One codec per task serves every runtime because every runtime hands back what the family's ONNX export returns: a
``.pt`` runs on PyTorch as the module (its outputs viewed as the export's, ``export_outputs``), or is exported once
by ultralytics' own exporter (``export_ultralytics_onnx``: dynamic size, no NMS in the graph) and that file runs on
ONNX Runtime, OpenVINO or OpenCV; an exported ``.onnx`` / OpenVINO ``.xml`` runs as it is. What the codec needs to
know about the model (class names, stride, keypoint shape, the NMS-free end-to-end head) comes from the module or
from the export's metadata, the same facts either way. Letterbox, NMS, box scaling, keypoint scaling and mask
decoding are ultralytics' own ops, so the results are the reference's.

Backends (registered names, as the catalog and ``backend_for_file`` know them):
  ultralytics   ``.pt`` checkpoints of all four tasks (default runtime PyTorch; ``runtime="onnx"|"openvino"``)
  onnx-yolo     exported YOLO detectors, ``.onnx`` or OpenVINO ``.xml``: v5 layout [B, N, 5+nc], v8/11 [B, 4+nc, N]
                or NMS-free [B, max_det, 6]
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from ..catalog import ModelEntry
from ..device import Device
from ..errors import OptionError, WeightsError
from ..results import Classification, Detections
from ..runtimes import Session, TensorSpec, file_facts, open_session
from ..runtimes.base import native_runtime
from ..runtimes.torch import TorchRuntime
from ._runtime import export_ultralytics_onnx, load_ultralytics, stride_multiple, ultralytics_channels_last
from .base import Backend, as_hw

YOLO_OPTIONS = {"conf": 0.25, "iou": 0.7, "max_det": 300, "imgsz": 640, "classes": None, "agnostic": False,
                "multi_label": False}
# ultralytics' validator settings (``DetectionValidator``: conf 0.001, iou 0.7, every class above conf per box).
YOLO_EVAL_OPTIONS = {"conf": 0.001, "iou": 0.7, "max_det": 300, "multi_label": True}
SSD_OUTPUTS = ("detection_boxes", "detection_classes", "detection_scores", "num_detections")
# Runtimes a .pt checkpoint runs on (PyTorch itself, or its ONNX export) and an exported file runs on.
PT_RUNTIMES = ("torch", "onnx", "openvino")
FILE_RUNTIMES = ("onnx", "openvino", "opencv")


@dataclass(frozen=True)
class YoloFacts:
    """What the codecs need to know about one YOLO model, from its module or its export's metadata."""

    task: str
    names: list[str]
    stride: int
    end2end: bool = False  # NMS-free head (YOLO26, YOLOv10 exported end to end): [B, max_det, 6 + extra] out
    kpt_shape: tuple[int, int] | None = None
    imgsz: tuple[int, int] | None = None  # the size it was trained / exported at

    @classmethod
    def of_module(cls, model: Any) -> YoloFacts:
        names = model.names
        imgsz = model.args.get("imgsz") if isinstance(getattr(model, "args", None), dict) else None
        return cls(getattr(model, "task", "detect"), [names[i] for i in range(len(names))],
                   max(int(model.stride.max()), 32), bool(getattr(model, "end2end", False)),
                   tuple(model.kpt_shape) if hasattr(model, "kpt_shape") else None,
                   as_hw(imgsz) if imgsz else None)

    @classmethod
    def of_metadata(cls, meta: dict[str, str]) -> YoloFacts:
        """ultralytics (and YOLOv5) exports store ``names`` as a dict literal, shapes as list literals."""
        names = ast.literal_eval(meta["names"]) if "names" in meta else {}
        names = [names[i] for i in range(len(names))] if isinstance(names, dict) else list(names)
        kpt = ast.literal_eval(meta["kpt_shape"]) if "kpt_shape" in meta else None
        imgsz = ast.literal_eval(meta["imgsz"]) if "imgsz" in meta else None
        return cls(meta.get("task", "detect"), names, max(int(meta.get("stride", 32)), 32),
                   meta.get("end2end") == "True", tuple(kpt) if kpt else None, as_hw(imgsz) if imgsz else None)


def export_outputs(raw: Any) -> list[Any]:
    """A YOLO module's eval-mode return value as its ONNX export's outputs: (y, raw preds) -> [y];
    ((y, protos), raw preds) -> [y, protos] (segmentation); (probs, logits) -> [probs] (classification)."""
    first = raw[0] if isinstance(raw, tuple) else raw
    return list(first) if isinstance(first, (tuple, list)) else [first]


def letterbox(images: list[np.ndarray], imgsz: int | tuple[int, int], stride: int, auto: bool) -> np.ndarray:
    """ultralytics' LetterBox (centred, pad 114); ``auto`` pads only to a stride multiple (rectangular input).
    Returns the BCHW RGB float32 batch in 0..1 that YOLO networks take, on every runtime."""
    from ultralytics.data.augment import LetterBox

    same = len({im.shape for im in images}) == 1
    box = LetterBox(imgsz, auto=auto and same, stride=stride)
    boxed = [box(image=im) for im in images]
    x = boxed[0][None] if len(boxed) == 1 else np.stack(boxed)
    x = x[..., ::-1].transpose(0, 3, 1, 2)  # BHWC BGR -> BCHW RGB
    return np.ascontiguousarray(x, dtype=np.float32) / np.float32(255)


def yolo_nms(pred: Any, options: dict[str, Any], end2end: bool = False, nc: int = 0) -> list[Any]:
    """ultralytics' NMS on [B, 4+nc, N] predictions (or end-to-end [B, N, 6]).

    ``nc`` is the class count for heads with extra channels after the class scores (mask coefficients,
    keypoints), which ultralytics' predictors pass as ``len(model.names)``; 0 = all channels are classes.

    ultralytics stops a batch's NMS after 2 s + 0.05 s per image (a training-time guard) and leaves the remaining
    images with no boxes; at eval settings (conf 0.001) on a CPU that silently emptied most images of a batch,
    so the limit is lifted.

    It switches from a per-box Python loop to torchvision's compiled NMS (the same boxes, ~20x faster with a few
    hundred candidates) only when torchvision is already imported, as its own predictors ensure: so import it.
    """
    import torch
    import torchvision  # noqa: F401
    from ultralytics.utils.nms import non_max_suppression

    return non_max_suppression(torch.as_tensor(pred), options["conf"], options["iou"], options["classes"],
                               options["agnostic"], multi_label=options["multi_label"], max_det=options["max_det"],
                               nc=nc, end2end=end2end, max_time_img=float("inf"))


def to_detections(pred: Any, input_hw: tuple[int, int], image: np.ndarray, names: list[str]) -> Detections:
    """[n, 6] (x1, y1, x2, y2, score, class) in letterboxed-input pixels -> Detections in image pixels."""
    from ultralytics.utils.ops import scale_boxes

    pred = pred.float()
    boxes = scale_boxes(input_hw, pred[:, :4].clone(), image.shape).cpu().numpy()
    return Detections.from_arrays(boxes, pred[:, 4].cpu().numpy(), pred[:, 5].cpu().numpy().astype(np.int64), names)


class YoloCodec(Backend):
    """What the four YOLO codecs share: opening the model on the runtime asked for, and its facts.

    ``self.session`` runs the model; ``self.model`` is the PyTorch module when the runtime is PyTorch (the
    explanation and summary tools differentiate or count it), else None.
    """

    CONCURRENT = True
    SUFFIXES = (".pt",)
    EXPECTED_TASK: ClassVar[str] = "detect"

    @classmethod
    def runtimes(cls, suffix: str) -> tuple[str, ...]:
        return PT_RUNTIMES if suffix == ".pt" else FILE_RUNTIMES if suffix == ".onnx" else ("openvino",)

    @classmethod
    def export_onnx(cls, weights: Path) -> Path:
        return export_ultralytics_onnx(weights)

    def __init__(self, entry: ModelEntry, weights: Path, device: Device, options: dict[str, Any]):
        super().__init__(entry, weights, device, options)
        self.model: Any = None
        runtime = device.runtime or native_runtime(weights)
        if runtime == "torch":
            self.model = load_ultralytics(weights, device, self.EXPECTED_TASK)
            self.facts = YoloFacts.of_module(self.model)
            # CONCURRENT, but the heads cache anchors per input shape on themselves: a copy per call in flight.
            self.session: Session = TorchRuntime.session(self.model, device, export_outputs, per_call_state=True,
                                                         channels_last=ultralytics_channels_last(device))
        else:
            file = weights if weights.suffix.lower() in (".onnx", ".xml") else self.export_onnx(weights)
            self.weights = file  # the file the runtime runs
            self.session = open_session(file, replace(device, runtime=runtime))
            self.facts = YoloFacts.of_metadata(self.session.metadata)
            if self.facts.task != self.EXPECTED_TASK:
                raise WeightsError(f"{weights} is an ultralytics {self.facts.task} model, not a "
                                   f"{self.EXPECTED_TASK} model")
            self.check_signature(self.session.inputs, self.session.outputs, weights)
        image = self.session.inputs[0] if self.session.inputs else None
        h, w = (image.fixed(2), image.fixed(3)) if image else (None, None)
        self.input_hw = (h, w) if h and w else None
        self.fixed_batch = bool(image and image.fixed(0))
        self.stride = self.facts.stride
        self.end2end = self.facts.end2end
        self.class_names = entry.class_names or self.facts.names

    def check_signature(self, inputs: list[TensorSpec], outputs: list[TensorSpec], weights: Path) -> None:
        """Refuse, at load, an exported file that is not of this family and task (it would fail on the first image)."""

    def forward(self, batch: np.ndarray) -> list[Any]:
        if self.fixed_batch and len(batch) != 1:  # a fixed-batch export: one image at a time, outputs concatenated
            import torch

            parts = [self.session.run([b[None]]) for b in batch]
            return [torch.cat([torch.as_tensor(p[i]) for p in parts]) for i in range(len(parts[0]))]
        return self.session.run([batch])


class YoloDetect(YoloCodec):
    task = "detect"
    name = "ultralytics"
    OPTIONS = {**YOLO_OPTIONS, "rect": True}  # rect: letterbox to a stride multiple only (a dynamic-size model)
    EVAL_OPTIONS = YOLO_EVAL_OPTIONS

    def __init__(self, entry: ModelEntry, weights: Path, device: Device, options: dict[str, Any]):
        super().__init__(entry, weights, device, options)
        self.imgsz = self.input_hw or stride_multiple(options["imgsz"], self.stride, entry.name)

    def check_signature(self, inputs: list[TensorSpec], outputs: list[TensorSpec], weights: Path) -> None:
        """One float image input [B, 3, H, W] and a first output of rank 3 whose fixed axes all hold at least 5
        values (a box and a score), as every YOLO detection layout does: a classifier, a pose or face model given
        as a detector is refused here, at load, not on the first image."""
        shape = inputs[0].shape if len(inputs) == 1 else ()
        image = inputs and inputs[0].dtype in ("float32", "float16") and len(shape) == 4 and shape[1] == 3
        out = outputs[0].shape if outputs else ()
        if not (image and len(out) == 3 and all(d >= 5 for d in out[1:] if isinstance(d, int))):
            raise WeightsError(f"{weights}: not a YOLO detector (float [B, 3, H, W] -> [B, 4 + classes, anchors], "
                               f"[B, anchors, 5 + classes] or [B, max_det, 6]); the file has "
                               f"{signature(inputs, outputs)}")

    def warmup_input(self) -> list[np.ndarray]:
        h, w = as_hw(self.imgsz)
        return [np.zeros((h, w, 3), np.uint8)]

    def preprocess(self, images: list[np.ndarray]) -> np.ndarray:
        return letterbox(images, self.imgsz, self.stride, auto=self.input_hw is None and self.options["rect"])

    def predictions(self, raw: list[Any]) -> Any:
        """The first output as ultralytics' NMS takes it: [B, 4+nc(+extra), N]; YOLOv5 exports' [B, N, 5+nc]
        (objectness times class probability) turned into that layout.

        For the v5 layout only the candidates whose objectness is above ``conf`` in some image of the batch are
        kept: a score is objectness times a class probability <= 1, so no other candidate can pass NMS's own
        ``conf`` filter, and the boxes are the same. It spares multiplying and copying all 25 200 x 85 outputs
        (8.6 MB, fresh memory every call), which took 5-9 ms of a 640 image's postprocess on this CPU."""
        import torch

        pred = torch.as_tensor(raw[0])
        if not self.end2end and pred.shape[1] > pred.shape[2]:  # v5 layout [B, N, 5+nc]
            keep = (pred[..., 4] > self.options["conf"]).any(0)
            if int(keep.sum()) == 6:  # ultralytics' NMS takes a last axis of 6 for an end-to-end [B, N, 6] output
                keep[int((~keep).nonzero()[0])] = True  # so one more, below conf: NMS drops it again
            pred = pred[:, keep]
            pred = torch.cat([pred[..., :4], pred[..., 5:] * pred[..., 4:5]], -1).transpose(1, 2)
        return pred

    def postprocess(self, raw: list[Any], batch: np.ndarray, images: list[np.ndarray]) -> list[Detections]:
        preds = yolo_nms(self.predictions(raw), self.options, self.end2end)
        return [to_detections(p, batch.shape[2:], im, self.class_names) for p, im in zip(preds, images)]


class OnnxYoloDetect(YoloDetect):
    """An exported YOLO detector by path: ``.onnx`` (any file without SSD outputs) or an OpenVINO ``.xml``."""

    name = "onnx-yolo"
    SUFFIXES = (".onnx", ".xml")
    RUNTIME = "onnx"

    @classmethod
    def accepts(cls, path: Path) -> bool:
        return path.suffix.lower() in cls.SUFFIXES and not set(SSD_OUTPUTS) <= set(file_facts(path).outputs)


class YoloPose(YoloDetect):
    """YOLO-pose; boxes exactly as the detection codec, keypoints as ultralytics' ``PosePredictor``."""

    task = "pose"
    name = "ultralytics"
    EXPECTED_TASK = "pose"

    def postprocess(self, raw: list[Any], batch: np.ndarray, images: list[np.ndarray]) -> list[Detections]:
        import torch
        from ultralytics.utils.ops import scale_coords

        kpt_shape = self.facts.kpt_shape or (17, 3)
        preds = yolo_nms(self.predictions(raw), self.options, self.end2end, nc=len(self.facts.names))
        input_hw = batch.shape[2:]
        out = []
        for pred, im in zip(preds, images, strict=True):
            kpts = scale_coords(input_hw, pred[:, 6:].float().view(len(pred), *kpt_shape), im.shape)
            if kpt_shape[1] == 2:  # x, y only: every returned keypoint is taken as found
                kpts = torch.cat([kpts, torch.ones_like(kpts[..., :1])], -1)
            det = to_detections(pred, input_hw, im, self.class_names)
            out.append(det.with_(keypoints=kpts.cpu().numpy()))
        return out


# Elements of float32 scratch per strip when scaling masks to the source size (4 MB): bounded memory on huge images.
_STRIP_ELEMENTS = 1 << 20


def masks_to_source(masks: Any, image_hw: tuple[int, int]) -> np.ndarray:
    """(n, h, w) uint8 masks on the letterboxed input -> (n, H, W) bool at source size.

    ultralytics' own step for drawing and for ``Results.masks`` at the original size: ``scale_masks`` (drop the
    letterbox padding, bilinear to the source) then ``> 0.5``; done a few masks at a time so the float
    intermediate stays bounded on huge images.
    """
    from ultralytics.utils.ops import scale_masks

    out = np.empty((len(masks), *image_hw), bool)
    step = max(1, _STRIP_ELEMENTS // (image_hw[0] * image_hw[1]))
    for i in range(0, len(masks), step):
        out[i:i + step] = (scale_masks(masks[None, i:i + step].float(), image_hw)[0] > 0.5).cpu().numpy()
    return out


class YoloSegment(YoloDetect):
    """YOLO-seg, as ``YOLO(pt).predict()`` by default (``retina_masks=False``).

    Like ultralytics' ``SegmentationPredictor``: NMS told the class count (the mask coefficients follow the class
    scores), ``process_mask(..., upsample=True)`` at the letterboxed input size, boxes whose mask comes out empty
    dropped; then the masks are scaled to the source as ultralytics does to draw them.
    """

    task = "segment"
    name = "ultralytics"
    EXPECTED_TASK = "segment"

    def postprocess(self, raw: list[Any], batch: np.ndarray, images: list[np.ndarray]) -> list[Detections]:
        import torch
        from ultralytics.utils.ops import process_mask

        protos = torch.as_tensor(raw[1])
        preds = yolo_nms(self.predictions(raw), self.options, self.end2end, nc=len(self.facts.names))
        input_hw = batch.shape[2:]
        out = []
        for pred, proto, im in zip(preds, protos, images, strict=True):
            masks = process_mask(proto, pred[:, 6:], pred[:, :4], input_hw, upsample=True)
            keep = masks.amax((-2, -1)) > 0
            pred, masks = pred[keep], masks[keep]
            det = to_detections(pred, input_hw, im, self.class_names)
            out.append(det.with_(masks=masks_to_source(masks, im.shape[:2])))
        return out


class YoloClassify(YoloCodec):
    """YOLO-cls, preprocessed exactly as ultralytics' ``ClassificationPredictor`` does."""

    task = "classify"
    name = "ultralytics"
    EXPECTED_TASK = "classify"
    OPTIONS = {"top_k": 5, "imgsz": None}  # imgsz None: the size the checkpoint was trained at

    def __init__(self, entry: ModelEntry, weights: Path, device: Device, options: dict[str, Any]):
        super().__init__(entry, weights, device, options)
        size = options["imgsz"] or self.input_hw or self.facts.imgsz or 224
        self.imgsz = self.input_hw or as_hw(stride_multiple(size, self.stride, entry.name))
        if self.input_hw and options["imgsz"] and as_hw(options["imgsz"]) != self.input_hw:
            raise OptionError(f"imgsz {options['imgsz']}: {weights.name} has a fixed {self.input_hw} input")
        self.transforms = _ultralytics_transforms(self.model, self.imgsz)

    def warmup_input(self) -> list[np.ndarray]:
        return [np.zeros((*self.imgsz, 3), np.uint8)]

    def preprocess(self, images: list[np.ndarray]) -> np.ndarray:
        import torch
        from PIL import Image

        x = torch.stack([self.transforms(Image.fromarray(cv2.cvtColor(im, cv2.COLOR_BGR2RGB))) for im in images])
        return x.numpy()

    def postprocess(self, raw: list[Any], batch: Any, images: list[np.ndarray]) -> list[Classification]:
        import torch

        probs = torch.as_tensor(raw[0]).float().cpu().numpy()
        return [Classification.from_probs(p, self.class_names, int(self.options["top_k"]), keep_probs=True)
                for p in probs]


def _ultralytics_transforms(model: Any, imgsz: tuple[int, int]) -> Any:
    """The transforms ``ClassificationPredictor.setup_source`` picks: the ones a trained checkpoint carries when
    they were made for this size, else ``classify_transforms(imgsz)``."""
    from ultralytics.data.augment import classify_transforms

    carried = getattr(model, "transforms", None)
    size = getattr(carried.transforms[0], "size", imgsz) if carried is not None else None
    size = (size, size) if isinstance(size, int) else size
    return carried if size is not None and tuple(size) == tuple(imgsz) else classify_transforms(list(imgsz))


def signature(inputs: list[TensorSpec], outputs: list[TensorSpec]) -> str:
    """What a model takes and gives, as a message quotes it when the file is not of the family expected:
    ``uint8 [1, 300, 300, 3] -> float [1, 10, 4], float [1, 10], ...`` (ONNX's type names; dynamic axes by their
    names)."""
    onnx_names = {"float32": "float", "float64": "double"}

    def listed(specs: list[TensorSpec], most: int = 4) -> str:
        shown = ", ".join(f"{onnx_names.get(s.dtype, s.dtype)} [{', '.join(str(d) for d in s.shape)}]"
                          for s in specs[:most])
        return shown if len(specs) <= most else f"{shown}, ... ({len(specs)} in all)"

    return f"{listed(inputs)} -> {listed(outputs)}"
