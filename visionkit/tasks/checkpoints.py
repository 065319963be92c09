"""Reading ultralytics ``.pt`` checkpoints without running code from them.

A ``.pt`` file is a pickle, and unpickling calls whatever functions the file names: ``os.system`` as easily as a
layer's class. A model file from a stranger would run its code before a single frame is processed. So a checkpoint
is read with PyTorch's restricted unpickler (``torch.load(weights_only=True)``), allowed only what real ultralytics
checkpoints are made of (derived from YOLOv8/11/26 detect, seg, pose, cls and obb checkpoints, as ``YOLO.save`` and
``yolo train`` write them, and from the globals ultralytics' own restricted loader admits for older releases):

* classes: ``nn.Module`` subclasses defined under ``torch.nn.modules``, ``ultralytics.nn.modules`` or in
  ``ultralytics.nn.tasks``; the loss helpers a training checkpoint may keep (``ultralytics.utils.loss`` / ``tal``);
  the torchvision transforms old classification checkpoints carry. These are only *rebuilt* (``cls.__new__`` plus
  their saved state, which is how pickle stores every module), never *called*: calling a model class runs its
  constructor, and ``DetectionModel(cfg)`` evaluates the config's ``activation`` string. So the pickle's call
  instructions are checked before anything is loaded: they may call PyTorch's own rebuild functions and the value
  constructors below, nothing else;
* values: numpy scalars and dtypes, ``IterableSimpleNamespace`` / ``SimpleNamespace`` / ``argparse.Namespace``,
  enum members, ``pathlib`` paths; and, for checkpoints that pickle ``Detect.forward`` through
  ``builtins.getattr``, a stand-in that returns only a module class's ``forward`` or an enum member.

Nothing from ``builtins``, ``os``, ``subprocess`` or any other module is admitted. A file that needs more is refused
with a ``WeightsError`` naming the global; the user can vouch for it (``--trust-weights``, ``trust_weights=True``),
and a catalog file whose sha256 matched the catalog is vouched for by the catalog: such files load exactly as
ultralytics loads them (its ``load_checkpoint``, the full unpickler).
"""

from __future__ import annotations

import enum
import importlib
import pickle
import pickletools
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import WeightsError

TRUST_HINT = "pass --trust-weights, or trust_weights=True in Python, if you trust this file"

# Where model classes may come from: nn.Module subclasses defined in these packages' modules, or in these modules.
MODULE_CLASS_PACKAGES = ("torch.nn.modules.", "ultralytics.nn.modules.")
MODULE_CLASS_MODULES = ("ultralytics.nn.tasks",)
# Modules whose plain classes a training checkpoint may keep on its model (the loss criterion and its assigner).
PLAIN_CLASS_SOURCES = ("ultralytics.utils.loss", "ultralytics.utils.tal")
# Old classification checkpoints carry their preprocessing.
TORCHVISION_TRANSFORMS = ("torchvision.transforms.transforms.Compose", "torchvision.transforms.transforms.Normalize",
                          "torchvision.transforms.transforms.Resize", "torchvision.transforms.transforms.CenterCrop",
                          "torchvision.transforms.transforms.ToTensor",
                          "torchvision.transforms.functional.InterpolationMode")
# Names older ultralytics releases pickled, and what they are now (as ultralytics' torch_safe_load maps them).
RENAMED_MODULES = {"ultralytics.yolo.utils.": "ultralytics.utils.", "ultralytics.yolo.v8.": "ultralytics.models.yolo.",
                   "ultralytics.yolo.data.": "ultralytics.data."}
RENAMED_GLOBALS = {"ultralytics.nn.modules.block.Silence": "torch.nn.modules.linear.Identity",  # YOLOv9e
                   "ultralytics.nn.tasks.YOLOv10DetectionModel": "ultralytics.nn.tasks.DetectionModel",
                   "ultralytics.utils.loss.v10DetectLoss": "ultralytics.utils.loss.E2EDetectLoss",
                   "pathlib.WindowsPath": "pathlib.PosixPath", "pathlib._local.WindowsPath": "pathlib.PosixPath",
                   "pathlib._local.PosixPath": "pathlib.PosixPath"}
# The module names of the original YOLOv5 repository (github.com/ultralytics/yolov5), which ultralytics cannot run.
YOLOV5_MODULES = ("models", "models.yolo", "models.common", "models.experimental")

_trusted: ContextVar[Path | None] = ContextVar("visionkit_trusted_weights", default=None)
# torch's allow-list is one process-wide set that safe_globals() edits on entry and exit: one load at a time.
_allow_list_lock = threading.Lock()


@contextmanager
def trusting(path: Path | None) -> Iterator[None]:
    """Within the block, ``path`` (None: no file) is loaded with the full unpickler: someone vouched for it."""
    token = _trusted.set(Path(path) if path is not None else None)
    try:
        yield
    finally:
        _trusted.reset(token)


def is_trusted(path: Path) -> bool:
    return _trusted.get() == Path(path)


def load_ultralytics_checkpoint(path: Path, device: Any) -> Any:
    """The model of an ultralytics checkpoint, as ``ultralytics.nn.tasks.load_checkpoint`` returns it (fp32, eval,
    ``args``, ``task``, ``stride``...), read safely unless ``path`` is trusted (see ``trusting``)."""
    import torch
    from ultralytics.nn.tasks import guess_model_task, load_checkpoint
    from ultralytics.utils import DEFAULT_CFG_DICT

    if is_trusted(path):
        return load_checkpoint(path, device=device)[0]
    ckpt = read_checkpoint(path)
    # From here on, the steps of ultralytics' load_checkpoint, so a safely read model equals a trusted one.
    candidate = ckpt.get("ema") or ckpt.get("model") if isinstance(ckpt, dict) else None
    if not isinstance(candidate, torch.nn.Module):
        raise WeightsError(f"{path}: not an ultralytics checkpoint (no model in it, as model.save() writes)")
    model = candidate.float()
    if ckpt.get("modelopt"):  # QAT checkpoint: re-apply the fake-quantization it learned
        from ultralytics.nn.tasks import restore_qat

        restore_qat(model, ckpt["modelopt"])
    model.args = {**DEFAULT_CFG_DICT, **(ckpt.get("train_args", {}))}
    model.pt_path = str(path)
    model.task = getattr(model, "task", guess_model_task(model))
    if not hasattr(model, "stride"):
        model.stride = torch.tensor([32.0])
    model = model.eval().to(device)
    for m in model.modules():
        if hasattr(m, "inplace"):
            m.inplace = True
        elif isinstance(m, torch.nn.Upsample) and not hasattr(m, "recompute_scale_factor"):
            m.recompute_scale_factor = None  # torch 1.11.0 compatibility
    return model


def read_checkpoint(path: Path, label: str | None = None) -> Any:
    """``torch.load(path)`` with the restricted unpickler and the allow-list above; a ``WeightsError`` that names the
    offending global when the file needs anything else. Messages start with ``label`` (default: the path)."""
    import torch

    label = label or str(path)
    allowed = _allow_list(path, label)
    with _allow_list_lock:
        added = [entry for entry in allowed if entry not in torch.serialization.get_safe_globals()]
        try:
            with torch.serialization.safe_globals(added):
                return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:  # what the scan could not see (e.g. the state of an unlisted type)
            raise WeightsError(f"{label}: refusing to load: {_unpickler_reason(e)} ({TRUST_HINT})") from None
        except (RuntimeError, EOFError, ValueError) as e:
            raise WeightsError(f"{label}: not a readable PyTorch checkpoint ({_first_line(e)})") from None


def check_checkpoint(path: Path, label: str | None = None) -> None:
    """Raise what ``read_checkpoint`` would, for a file another library is about to load itself (the ONNX exporter):
    a file the restricted unpickler reads makes the full unpickler call nothing else (the same instructions run, each
    already checked)."""
    read_checkpoint(path, label)


# ---------------------------------------------------------------------------------------------------- allow-list
def _allow_list(path: Path, label: str) -> list[Any]:
    """The ``safe_globals`` entries (object, pickled name) for this file, after checking every global it names and
    every call it makes."""
    import torch

    scan = _scan(path, label)
    if zipfile.is_zipfile(path):
        unsafe = set(torch.serialization.get_unsafe_globals_in_checkpoint(str(path))) | scan.stack_globals
    else:  # a plain pickle or torch's pre-1.6 format: nothing tells torch's own globals from others, so none pass
        unsafe = set(scan.globals)
    for name in scan.globals:
        if name.rpartition(".")[0] in YOLOV5_MODULES:
            raise WeightsError(f"{label}: an original YOLOv5 checkpoint (github.com/ultralytics/yolov5 code, "
                               f"'{name}'), which the ultralytics package cannot run; export it to ONNX with "
                               "YOLOv5's export.py and run the .onnx")
    entries: list[Any] = []
    # torch's names (it maps some Python 2 names, e.g. __builtin__, as pickle does), in file order where they agree
    for name in [n for n in scan.globals if n in unsafe] + sorted(unsafe - set(scan.globals)):
        obj = _allowed_global(name)
        if obj is None:
            raise WeightsError(f"{label}: refusing to load: it needs the global '{name}', which a model checkpoint "
                               f"does not need ({TRUST_HINT})")
        entries.append((obj, name))
    for name in scan.calls:  # every global passed the check above, as one of torch's own or one of the allow-list
        if name is None:
            raise WeightsError(f"{label}: refusing to load: it calls an object it built itself while loading, which a "
                               f"model checkpoint does not do ({TRUST_HINT})")
        if _allowed_global(name) is not None and not _is_value_constructor(name):
            raise WeightsError(f"{label}: refusing to load: it calls '{name}' while loading, which a model checkpoint "
                               f"does not do ({TRUST_HINT})")
    if "numpy.dtype" in scan.globals:  # a dtype's state is set on its concrete class, which the pickle never names
        import numpy as np

        entries.extend({type(np.dtype(code)) for code in np.typecodes["All"]})
    if not zipfile.is_zipfile(path):
        raise WeightsError(f"{label}: refusing to load: not a torch.save() archive, so what it runs when loaded cannot "
                           f"be checked ({TRUST_HINT})")
    return entries


@cache
def _allowed_global(name: str) -> Any | None:
    """The object a pickled global name stands for, if a model checkpoint may use it; else None."""
    current = RENAMED_GLOBALS.get(name, name)
    for old, new in RENAMED_MODULES.items():
        if current.startswith(old):
            current = new + current[len(old):]
    values = _value_constructors()
    if current in values:
        return values[current]
    module, _, attr = current.rpartition(".")
    plain = module in PLAIN_CLASS_SOURCES or current in TORCHVISION_TRANSFORMS
    if not (plain or module.startswith(MODULE_CLASS_PACKAGES) or module in MODULE_CLASS_MODULES):
        return None  # checked before importing anything: a pickle must not choose which modules get imported
    try:
        obj = getattr(importlib.import_module(module), attr, None)
    except ImportError:
        return None
    if not isinstance(obj, type) or obj.__module__ != module:
        return None
    import torch

    return obj if plain or issubclass(obj, torch.nn.Module) else None


def _is_value_constructor(name: str) -> bool:
    """Whether a checkpoint may *call* this global: a value constructor, or an enum (a call is a member lookup)."""
    obj = _allowed_global(name)
    return obj is not None and (obj in _value_constructors().values() or
                                (isinstance(obj, type) and issubclass(obj, enum.Enum)))


@cache
def _value_constructors() -> dict[str, Any]:
    import argparse
    import types

    import numpy as np
    from ultralytics.utils import IterableSimpleNamespace

    scalar = np.float64(0).__reduce__()[0]  # numpy's scalar reconstructor, under its numpy 1 and numpy 2 names
    return {"numpy.core.multiarray.scalar": scalar, "numpy._core.multiarray.scalar": scalar, "numpy.dtype": np.dtype,
            "ultralytics.utils.IterableSimpleNamespace": IterableSimpleNamespace,
            "types.SimpleNamespace": types.SimpleNamespace, "argparse.Namespace": argparse.Namespace,
            "pathlib.PosixPath": type(Path()), "builtins.getattr": _module_attribute}


def _module_attribute(owner: Any, name: str) -> Any:
    """``builtins.getattr`` as checkpoints use it (protocol 2 pickles ``Detect.forward`` and
    ``InterpolationMode.BILINEAR`` that way), for nothing else."""
    import torch

    if isinstance(owner, type) and issubclass(owner, enum.Enum) and name in owner.__members__:
        return owner[name]
    if isinstance(owner, type) and issubclass(owner, torch.nn.Module) and name in ("forward", "forward_fuse"):
        return getattr(owner, name)
    if isinstance(owner, torch.nn.Module) and name in ("forward", "forward_fuse"):
        return getattr(type(owner), name).__get__(owner)
    what = owner.__qualname__ if isinstance(owner, type) else type(owner).__qualname__
    raise pickle.UnpicklingError(f"it asks for {what}.{name}, which a model checkpoint does not need")


# ---------------------------------------------------------------------------------------------- pickle scanning
@dataclass
class _Scan:
    globals: dict[str, None] = field(default_factory=dict)  # every global named, in order (a dict: ordered set)
    stack_globals: set[str] = field(default_factory=set)  # named by STACK_GLOBAL, which torch's own scan misses
    calls: dict[str | None, None] = field(default_factory=dict)  # callables of REDUCE/INST/OBJ; None = not a global


class _GlobalRef(str):
    """A stack item that is a global, as opposed to a string constant."""


def _scan(path: Path, label: str) -> _Scan:
    """Every global the pickle of ``path`` names and every one it calls, without unpickling anything."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                # torch reads "<folder of the first entry>/data.pkl"; with one folder and no name twice, that is the
                # record scanned here, so a second pickle cannot hide behind a harmless one
                names = archive.namelist()
                record = f"{names[0].split('/', 1)[0]}/data.pkl" if names else ""
                if {n.split("/", 1)[0] for n in names} != {record.split("/")[0]} or len(set(names)) != len(names) \
                        or record not in names:
                    raise ValueError("not the layout torch.save() writes: one folder, one data.pkl")
                data = archive.read(record)
        else:
            data = Path(path).read_bytes()
        return _scan_pickle(data)
    except (ValueError, IndexError, KeyError, zipfile.BadZipFile, EOFError) as e:
        raise WeightsError(f"{label}: not a readable PyTorch checkpoint (empty, truncated or another format: "
                           f"{_first_line(e)})") from None


def _scan_pickle(data: bytes) -> _Scan:
    """Walk the opcodes with a symbolic stack that knows only which items are globals (and which are strings, for
    STACK_GLOBAL), so each call instruction can be traced to what it calls, memo references included."""
    scan = _Scan()
    stack: list[Any] = []
    marks: list[int] = []
    memo: dict[int, Any] = {}
    for op, arg, _ in pickletools.genops(data):
        name = op.name
        if name == "STOP":
            break
        if name == "MARK":
            marks.append(len(stack))
            continue
        if name in ("GLOBAL", "INST", "STACK_GLOBAL"):
            ref = f"{stack.pop(-2)}.{stack.pop()}" if name == "STACK_GLOBAL" else arg.replace(" ", ".")
            scan.globals[ref] = None
            if name == "STACK_GLOBAL":
                scan.stack_globals.add(ref)
            if name == "INST":  # instantiate = call with the items above the mark
                scan.calls[ref] = None
                del stack[marks.pop():]
                stack.append(None)
            else:
                stack.append(_GlobalRef(ref))
            continue
        if name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
            memo[len(memo) if name == "MEMOIZE" else arg] = stack[-1]
            continue
        if name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(memo[arg])
            continue
        if name == "DUP":
            stack.append(stack[-1])
            continue
        if name == "REDUCE" or name == "OBJ":
            target = stack[-2] if name == "REDUCE" else stack[marks[-1]]
            scan.calls[str(target) if isinstance(target, _GlobalRef) else None] = None
        before = op.stack_before
        if pickletools.markobject in before:
            del stack[marks.pop():]
            below = before.index(pickletools.markobject)
        else:
            below = len(before)
        if below:
            del stack[-below:]
        stack.extend(arg if isinstance(arg, str) else None for _ in op.stack_after)
    return scan


def _unpickler_reason(e: pickle.UnpicklingError) -> str:
    """The line of torch's weights_only error that says what was refused (it comes between generic paragraphs)."""
    paragraphs = [p.strip() for p in str(e).split("\n\n") if p.strip()]
    if len(paragraphs) > 1 and paragraphs[0].startswith("Weights only load failed"):
        return paragraphs[1].splitlines()[0]
    return _first_line(e)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
