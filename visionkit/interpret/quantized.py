"""Quantized (QDQ) ONNX graphs made differentiable: onnx2torch converters for QuantizeLinear / DequantizeLinear.

tf2onnx writes int8 TFLite models (MoveNet, the 513 DeepLab) as float operators between QuantizeLinear and
DequantizeLinear pairs. onnx2torch has no converter for either, so such a graph could only be explained by the
gradient-free methods. Here both become fake quantization in float: QuantizeLinear rounds and saturates to the
integer grid but keeps a float tensor (so the integer-domain Reshape / Concat / GatherND of the graph still run),
DequantizeLinear maps the grid back. The forward pass is the int8 model's arithmetic; the backward pass treats the
rounding as the identity inside the representable range (the straight-through estimator), the usual way gradients
cross a quantized network (BPDA, Athalye et al. 2018). Scores are still taken from ONNX Runtime on the real graph.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import torch

# Integer ranges of the zero point's element type (ONNX TensorProto: 2 = UINT8, 3 = INT8).
_RANGES = {torch.uint8: (0, 255), torch.int8: (-128, 127)}


def _per_axis(value: torch.Tensor, axis: int, rank: int) -> torch.Tensor:
    """A per-axis scale or zero point (1-D) shaped to broadcast along ``axis`` of a rank-``rank`` tensor."""
    if value.ndim == 0 or rank == 0:
        return value
    shape = [1] * rank
    shape[axis % rank] = -1
    return value.reshape(shape)


class FakeQuantize(torch.nn.Module):
    """ONNX QuantizeLinear on the float grid: ``clamp(round(x / scale) + zero_point)`` with a straight-through
    gradient; the output is float holding integer values."""

    def __init__(self, scale: torch.Tensor, zero_point: torch.Tensor, axis: int):
        super().__init__()
        self.low, self.high = _RANGES.get(zero_point.dtype, (0, 255))
        self.register_buffer("scale", scale.float())
        self.register_buffer("zero_point", zero_point.float())
        self.axis = axis

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        scaled = x / _per_axis(self.scale, self.axis, x.ndim) + _per_axis(self.zero_point, self.axis, x.ndim)
        rounded = scaled + (torch.round(scaled) - scaled).detach()
        return rounded.clamp(self.low, self.high)


class Dequantize(torch.nn.Module):
    """ONNX DequantizeLinear: ``(q - zero_point) * scale`` on integer or float-held-integer input."""

    def __init__(self, scale: torch.Tensor, zero_point: torch.Tensor | None, axis: int):
        super().__init__()
        self.register_buffer("scale", scale.float())
        self.register_buffer("zero_point", torch.zeros(()) if zero_point is None else zero_point.float())
        self.axis = axis

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        q = q.float()
        return (q - _per_axis(self.zero_point, self.axis, q.ndim)) * _per_axis(self.scale, self.axis, q.ndim)


def fold_weight_dequantization(model: Any) -> Any:
    """A copy of an ONNX model whose DequantizeLinear nodes on constant tensors (the int8 weights and biases) are
    replaced by their float values: onnx2torch's Conv converter reads its weights from initializers only."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    constants = {t.name: t for t in graph.initializer}
    folded, kept = [], []
    for node in graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in constants:
            kept.append(node)
            continue
        q = numpy_helper.to_array(constants[node.input[0]]).astype(np.float32)
        scale = numpy_helper.to_array(constants[node.input[1]]).astype(np.float32)
        zero = (numpy_helper.to_array(constants[node.input[2]]).astype(np.float32)
                if len(node.input) > 2 and node.input[2] else np.zeros_like(scale))
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if scale.ndim == 1 and q.ndim > 0:
            shape = [1] * q.ndim
            shape[axis % q.ndim] = -1
            scale, zero = scale.reshape(shape), zero.reshape(shape)
        folded.append(numpy_helper.from_array((q - zero) * scale, node.output[0]))
    del graph.node[:]
    graph.node.extend(kept)
    graph.initializer.extend(folded)
    return model


@cache
def register_qdq_converters() -> None:
    """Add the two converters to onnx2torch's registry (once per process; skipped for opsets it already knows)."""
    from onnx2torch.node_converters.registry import add_converter, get_converter
    from onnx2torch.utils.common import OnnxMapping, OperationConverterResult, get_const_value

    def convert(module_class: type) -> Any:
        def converter(node: Any, graph: Any) -> OperationConverterResult:
            inputs = node.input_values
            scale = torch.as_tensor(get_const_value(inputs[1], graph))
            zero_point = torch.as_tensor(get_const_value(inputs[2], graph)) if len(inputs) > 2 and inputs[2] else None
            if module_class is FakeQuantize and zero_point is None:
                zero_point = torch.zeros((), dtype=torch.uint8)  # ONNX: no zero point = uint8, 0
            module = module_class(scale, zero_point, int(node.attributes.get("axis", 1)))
            return OperationConverterResult(torch_module=module,
                                            onnx_mapping=OnnxMapping(inputs=(inputs[0],), outputs=node.output_values))
        return converter

    for op, module_class in (("QuantizeLinear", FakeQuantize), ("DequantizeLinear", Dequantize)):
        for version in (10, 13):
            try:
                get_converter(op, version)
            except NotImplementedError:
                add_converter(operation_type=op, version=version)(convert(module_class))
