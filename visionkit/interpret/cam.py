"""Class activation maps and saliency through the field's libraries: pytorch-grad-cam (Grad-CAM, Grad-CAM++,
EigenCAM, Score-CAM) and captum (saliency).

CAMs are computed where the network sees the image, on the model input of a ``Differentiable``, then carried back
to the user's image through the preprocessing geometry (crops and letterbox pads undone). Saliency is a gradient
on the image's own pixels. EigenCAM needs no gradient, only a layer's activations, so on an ONNX model that
gradients cannot cross (e.g. a quantized QDQ graph) it reads them from ONNX Runtime with the layer added as an
extra graph output.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import OptionError
from .differentiable import Differentiable, OnInput
from .geometry import input_geometry
from .targets import Target

# visionkit's method names -> pytorch-grad-cam's classes.
CAM_METHODS = {"gradcam": "GradCAM", "gradcam++": "GradCAMPlusPlus", "hirescam": "HiResCAM", "layercam": "LayerCAM",
               "eigencam": "EigenCAM", "scorecam": "ScoreCAM"}


def layers_named(network: torch.nn.Module, names: list[str]) -> list[torch.nn.Module]:
    """Modules of ``network`` by their dotted names (``named_modules``), or an OptionError listing a few."""
    modules = dict(network.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        some = ", ".join(list(modules)[-5:])
        raise OptionError(f"no layer {missing[0]!r} in the network (the last ones are: {some})")
    return [modules[n] for n in names]


def cam_maps(d: Differentiable, image: np.ndarray, targets: list[Target], method: str,
             layers: list[str] | None = None) -> np.ndarray:
    """(n, H, W) maps in 0..1 on ``image`` (BGR uint8), one per target, by a pytorch-grad-cam method (EigenCAM,
    class-agnostic, gives each target the map of the input it is seen in)."""
    import pytorch_grad_cam

    hw = image.shape[:2]
    x = d.image_tensor([image])
    target_layers = layers_named(d.network, layers) if layers else d.layers
    cam_class = getattr(pytorch_grad_cam, CAM_METHODS[method])
    maps = []
    # Not ``with cam_class(...)``: its __exit__ prints an exception raised inside and swallows it, which turned a
    # scoring bug into an unrelated "maps must have shape" error later on. The hooks are released here instead.
    cam = cam_class(model=OnInput(d), target_layers=target_layers)
    try:
        for t in targets:
            d.focus(hw, t)
            with torch.no_grad():
                inp = d.preprocess(x)
            inp.requires_grad_(True)  # so gradients reach the activations even when the weights are frozen
            geometry = d.geometry(hw, tuple(inp.shape[2:]))
            maps.append(geometry.maps_to_image(cam(input_tensor=inp, targets=[d.score(t, geometry)]), hw)[0])
    finally:
        cam.activations_and_grads.release()
    return np.stack(maps) if maps else np.zeros((0, *hw), np.float32)


def saliency_maps(d: Differentiable, image: np.ndarray, targets: list[Target]) -> np.ndarray:
    """(n, H, W) gradient magnitude of each target's score on the image pixels (captum ``Saliency``)."""
    from captum.attr import Saliency
    from pytorch_grad_cam.utils.image import scale_cam_image

    hw = image.shape[:2]
    x = d.image_tensor([image]).requires_grad_(True)
    maps = []
    for t in targets:
        d.focus(hw, t)
        with torch.no_grad():
            input_hw = tuple(d.preprocess(x).shape[2:])
        scorer = d.score(t, d.geometry(hw, input_hw))

        def score(batch: torch.Tensor, scorer: Any = scorer) -> torch.Tensor:
            return torch.stack([scorer(o) for o in d(batch)])

        maps.append(Saliency(score).attribute(x, abs=True)[0].amax(0).detach().cpu().numpy())
    return scale_cam_image(np.stack(maps)) if maps else np.zeros((0, *hw), np.float32)


def onnx_eigencam(backend: Any, image: np.ndarray, layers: list[str] | None = None) -> np.ndarray:
    """EigenCAM on an ONNX model run by ONNX Runtime: (1, H, W) on ``image``. ``layers`` are tensor names; by
    default the feature maps feeding the last convolutions (or the last feature map, for a classifier whose last
    convolution works on pooled features)."""
    from pytorch_grad_cam.utils.image import scale_cam_image
    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection

    path = Path(backend.weights)
    names = tuple(layers) if layers else feature_tensors(path)
    session = _activation_session(path, names)
    batch = backend.preprocess([image])
    x = batch[0] if isinstance(batch, list) else batch
    inp = session.get_inputs()[0]
    activations = session.run(list(names), {inp.name: x})
    nhwc = inp.shape[-1] == 3
    input_hw = tuple(x.shape[1:3]) if nhwc else tuple(x.shape[2:4])
    per_layer = [scale_cam_image(np.maximum(get_2d_projection(a.astype(np.float32)), 0), input_hw[::-1])[:, None]
                 for a in activations]
    maps = scale_cam_image(np.maximum(np.concatenate(per_layer, axis=1), 0).mean(axis=1))
    hw = image.shape[:2]
    return input_geometry(backend, hw, input_hw).maps_to_image(maps, hw)


@cache
def _shapes(path: Path) -> tuple[Any, dict[str, list[int]]]:
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in [*model.graph.value_info, *model.graph.output]
              if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT}
    return model, shapes


@cache
def feature_tensors(path: Path) -> tuple[str, ...]:
    """Default EigenCAM layers of an ONNX graph: the float NCHW inputs (with more than one pixel) of the convolutions
    whose outputs reach no other convolution; else the graph's last such feature map."""
    model, shapes = _shapes(path)
    nodes = list(model.graph.node)
    consumers: dict[str, list[Any]] = {}
    for n in nodes:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    def reaches_conv(node: Any) -> bool:
        todo, seen = list(node.output), set()
        while todo:
            t = todo.pop()
            for c in consumers.get(t, []):
                if c.op_type == "Conv":
                    return True
                if id(c) not in seen:
                    seen.add(id(c))
                    todo.extend(c.output)
        return False

    def is_map(name: str) -> bool:
        s = shapes.get(name, [])
        return len(s) == 4 and s[2] * s[3] > 1

    heads = [n.input[0] for n in nodes if n.op_type == "Conv" and not reaches_conv(n) and is_map(n.input[0])]
    if heads:
        return tuple(dict.fromkeys(heads))
    maps = [o for n in nodes for o in n.output if is_map(o)]
    if not maps:
        raise OptionError(f"{path}: no feature map tensor found for EigenCAM")
    return (maps[-1],)


@cache
def _activation_session(path: Path, names: tuple[str, ...]) -> Any:
    """An ONNX Runtime session of the model with the ``names`` tensors exposed as extra outputs."""
    import onnx
    import onnxruntime as ort

    model, shapes = _shapes(path)
    model = onnx.ModelProto.FromString(model.SerializeToString())
    known = {v.name for v in model.graph.output}
    for name in names:
        if name not in shapes:
            raise OptionError(f"{path}: no float tensor named {name!r} to read activations from")
        if name not in known:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, shapes[name]))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"])
