"""Shared plumbing for backends: ONNX Runtime sessions and ultralytics' offline switches."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

from ..device import Device


def ultralytics_offline() -> None:
    """ultralytics checks the network, fetches fonts and pip-installs extras unless told not to."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "False")
    os.environ.setdefault("YOLO_VERBOSE", "False")


def onnx_session(path: Path, device: Device) -> Any:
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": device.index}))
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: QDQ models log one warning per node otherwise
    return ort.InferenceSession(str(path), sess_options=options, providers=providers)


@cache
def onnx_output_names(path: Path) -> tuple[str, ...]:
    """Output names of an ONNX file, to tell model families apart when only a path is given."""
    from ..device import Device

    try:
        session = onnx_session(path, Device("cpu"))
    except Exception as e:  # garbage or truncated file: a user-facing WeightsError, not an internal error
        from ..errors import WeightsError

        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsError(f"{path}: not a loadable ONNX model ({first})") from None
    return tuple(o.name for o in session.get_outputs())


def torchvision_weights(entry: Any) -> Any:
    """The torchvision weights enum member named by a catalog entry's ``weights_enum``: its transforms,
    categories and metrics travel with it, so preprocessing comes from torchvision itself, not a copy."""
    import torchvision

    from ..errors import WeightsError

    name = entry.extra.get("weights_enum")
    if not name:
        raise WeightsError(f"catalog entry {entry.name!r} has no weights_enum (e.g. 'ResNet18_Weights.IMAGENET1K_V1'):"
                           " torchvision preprocessing comes from it")
    try:
        return torchvision.models.get_weight(name)
    except (ValueError, KeyError, AttributeError) as e:
        raise WeightsError(f"catalog entry {entry.name!r}: unknown torchvision weights {name!r} ({e})") from None
