"""``visionkit models --info``: what a model is made of, Keras ``summary()``-style.

The layer table (name, type, output shape, parameters), total and trainable parameter counts, GFLOPs at the input
size, the input and output shapes, and for a weights file its size and sha256. GFLOPs are counted by PyTorch's own
``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix products, the operations that dominate) and
given the way torchvision publishes them in its weights' ``meta["_ops"]``: one multiply-accumulate = one FLOP
(resnet18 1.814, mobilenet_v3_large 0.217 at 224x224; tested). ultralytics' own figures count two.

A model is a catalog name (built with random weights when its file is not here: the counts do not depend on the
values), a training run folder or its card, an ultralytics ``.pt`` (loaded through the shared safe loader, fused as
for inference) or an ONNX file (parameters from its initializers; no FLOP count).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ModelNotFoundError, OptionError, WeightsError

MAX_ROWS = 80  # deeper modules are folded into their parents beyond this many table rows


@dataclass
class LayerRow:
    name: str
    kind: str
    output: str
    params: int


@dataclass
class ModelSummary:
    name: str
    input_shape: tuple[int, ...]
    output: str
    params: int
    trainable: int
    gmacs: float | None = None
    layers: list[LayerRow] = field(default_factory=list)
    file: Path | None = None
    file_size: int | None = None
    sha256: str = ""
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "input_shape": list(self.input_shape), "output": self.output,
                "params": self.params, "trainable": self.trainable, "gflops": self.gmacs,
                "layers": [row.__dict__ for row in self.layers], "file": str(self.file) if self.file else None,
                "file_size": self.file_size, "sha256": self.sha256}

    def render(self) -> str:
        rows = [("LAYER", "TYPE", "OUTPUT SHAPE", "PARAMS")]
        rows += [(r.name, r.kind, r.output, f"{r.params:,}") for r in self.layers]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                 for r in rows]
        flops = "GFLOPs: not counted"
        if self.gmacs is not None:
            size = f"{self.input_shape[-2]}x{self.input_shape[-1]}"
            flops = (f"GFLOPs: {self.gmacs:.4g} at {size} (multiply-accumulates, torchvision's convention; "
                     f" {2 * self.gmacs:.4g} counting multiplies and adds apart)")
        lines += ["", f"model: {self.name}" + (f" ({self.note})" if self.note else ""),
                  f"parameters: {self.params:,} total, {self.trainable:,} trainable",
                  f"input: {tuple(self.input_shape)}  output: {self.output}", flops]
        if self.file is not None:
            lines.append(f"file: {self.file}  {self.file_size:,} bytes  sha256 {self.sha256}")
        return "\n".join(lines)


def summarize(model: str, task: str | None = None, imgsz: int | None = None) -> ModelSummary:
    """The summary of a catalog name or model file (see the module docstring)."""
    from . import catalog, weights

    path = Path(model).expanduser()
    names = {e.name for e in catalog.list_models()}
    if model not in names and path.exists():
        return _from_file(path, task, imgsz)
    entry = catalog.get_entry(model)
    local = next((d / entry.file for d in [*weights.weights_dirs(), weights.cache_dir()] if (d / entry.file).is_file()),
                 None)
    if entry.backend in ("ultralytics",):
        return _with_file(_ultralytics(local, entry, imgsz), local) if local else \
            _summary_of(_ultralytics_yaml(entry), entry.name, _square(imgsz or entry.input_size or 640, 3),
                        "random weights from the architecture's yaml")
    if entry.backend == "torchvision":
        import torchvision

        net = torchvision.models.get_model(entry.arch or entry.name, weights=None)
        side = imgsz or entry.input_size or 224
        summary = _summary_of(net, entry.name, _square(side, 3), "architecture; counts do not depend on weights")
        return _with_file(summary, local) if local else summary
    if entry.backend == "visionkit":
        from .training.architectures import build, input_spec

        spec = input_spec(entry.name, imgsz)
        return _summary_of(build(entry.name, 10, spec), entry.name, _square(spec.size, spec.channels),
                           "untrained architecture, 10 classes")
    if local is not None and local.suffix == ".onnx":
        return _onnx(local, entry.name)
    raise ModelNotFoundError(f"no summary for {entry.name!r} ({entry.backend} backend) without its weights file "
                             f"{entry.file} here")


def _from_file(path: Path, task: str | None, imgsz: int | None) -> ModelSummary:
    from .training.card import card_path_for, load_trained, weights_file

    if card_path_for(path) is not None and (path.is_dir() or path.suffix in (".json", ".pth")):
        card, net = load_trained(path)
        spec = card.spec
        return _with_file(_summary_of(net, path.name, _square(imgsz or spec.size, spec.channels),
                                      f"{card.architecture}, {len(card.classes)} classes, trained by visionkit"),
                          weights_file(path))
    if path.suffix == ".onnx":
        return _onnx(path, path.name)
    if path.suffix == ".pt":
        return _with_file(_ultralytics(path, None, imgsz, task), path)
    raise OptionError(f"{path}: --info reads catalog names, training runs, ultralytics .pt and .onnx files")


def _ultralytics(path: Path, entry: Any, imgsz: int | None, task: str | None = None) -> ModelSummary:
    from .device import Device
    from .tasks._runtime import load_ultralytics

    try:
        net = load_ultralytics(path, Device("cpu"), task or (entry.task if entry else "detect"))
    except WeightsError:
        raise
    except Exception as e:  # ultralytics' own failure to read the file (or to fetch what it refers to)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsError(f"{path}: cannot load it as an ultralytics checkpoint ({first})") from None
    net = net.float()
    for p in net.parameters():
        p.requires_grad = True  # loaded frozen for inference; the question here is what training would update
    side = imgsz or (entry.input_size if entry else None) or int(net.args.get("imgsz", 640))
    return _summary_of(net, path.stem, _square(side, 3), "fused for inference, as ultralytics runs it")


def _ultralytics_yaml(entry: Any) -> Any:
    from .tasks._runtime import ultralytics_offline

    ultralytics_offline()
    from ultralytics import YOLO

    return YOLO(Path(entry.file).with_suffix(".yaml").name).model


def _square(side: Any, channels: int) -> tuple[int, int, int, int]:
    h, w = (side, side) if isinstance(side, int) else side
    return (1, channels, int(h), int(w))


def _summary_of(net: Any, name: str, shape: tuple[int, ...], note: str) -> ModelSummary:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    net = net.eval()
    params = sum(p.numel() for p in net.parameters())
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    x = torch.zeros(shape)
    rows, hooks = [], []
    for layer_name, module in _table_modules(net):
        def hook(m: Any, inputs: Any, output: Any, layer_name: str = layer_name) -> None:
            rows.append(LayerRow(layer_name, type(m).__name__, _shape_text(output),
                                 sum(p.numel() for p in m.parameters())))
        hooks.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            out = net(x)
    finally:
        for h in hooks:
            h.remove()
    macs = counter.get_total_flops() / 2  # the counter counts a multiply-accumulate as two
    return ModelSummary(name, shape, _shape_text(out), params, trainable, macs / 1e9, rows, note=note)


def _table_modules(net: Any) -> list[tuple[str, Any]]:
    """Leaf modules, or the modules at the deepest nesting level that still fits ``MAX_ROWS`` rows."""
    named = [(n, m) for n, m in net.named_modules() if n]
    depth_of = {n: n.count(".") for n, _ in named}
    chosen: list[tuple[str, Any]] = []
    for depth in range(max(depth_of.values(), default=0) + 1):
        rows = [(n, m) for n, m in named if depth_of[n] == depth or (depth_of[n] < depth and not any(m.children()))]
        if len(rows) > MAX_ROWS and chosen:
            break
        chosen = rows
    return chosen


def _shape_text(value: Any) -> str:
    import torch

    if isinstance(value, torch.Tensor):
        return str(tuple(value.shape))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_shape_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_shape_text(v)}" for k, v in value.items()) + "}"
    return type(value).__name__


def _onnx(path: Path, name: str) -> ModelSummary:
    import numpy as np
    import onnx

    graph = onnx.load(str(path)).graph
    params = sum(int(np.prod(t.dims)) for t in graph.initializer)
    dims = [[d.dim_value or d.dim_param or "?" for d in v.type.tensor_type.shape.dim] for v in graph.input]
    outs = ", ".join(str(tuple(d.dim_value or d.dim_param or "?" for d in v.type.tensor_type.shape.dim))
                     for v in graph.output)
    ops: dict[str, int] = {}
    for node in graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    rows = [LayerRow(op, "ONNX op", f"x{count}", 0) for op, count in sorted(ops.items(), key=lambda kv: -kv[1])]
    summary = ModelSummary(name, tuple(dims[0]) if dims else (), outs, params, 0, None, rows,
                           note="ONNX graph: operators by count; parameters from its initializers")
    return _with_file(summary, path)


def _with_file(summary: ModelSummary, path: Path) -> ModelSummary:
    from .weights import sha256_of

    summary.file, summary.file_size, summary.sha256 = path, path.stat().st_size, sha256_of(path)
    return summary
