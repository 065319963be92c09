"""The model catalog (``models/<task>.toml``): what each model name means, read through functions only.

Each entry carries what is needed to run and trust a model without reading its code: weights file, official
URL and hash, input size, class names, backend defaults and published metrics (torchvision's weights-enum idea,
kept as data so the CLI can list it and a user can audit it).
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from .errors import ModelNotFoundError, OptionError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

TASKS = ("detect", "classify", "pose", "segment", "action")


@dataclass(frozen=True)
class ModelEntry:
    """One catalog row. ``defaults`` are for interactive use, ``eval`` for scoring (e.g. conf 0.001)."""

    name: str
    task: str
    backend: str
    file: str
    url: str = ""
    sha256: str = ""
    input_size: int | tuple[int, int] | None = None
    classes: str = ""
    license: str = ""
    source: str = ""
    default: bool = False
    arch: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)
    eval: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def hash_prefix(self) -> str:
        """torchvision-style ``name-<8 hex>.pth`` files embed the start of their sha256."""
        m = re.search(r"-([0-9a-f]{8,})\.pth?$", self.file)
        return m.group(1) if m else ""

    @property
    def class_names(self) -> list[str]:
        return load_class_names(self.classes) if self.classes else []

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in ("", None, {}, False)}


@cache
def _entries() -> dict[str, ModelEntry]:
    """All entries of ``models/<task>.toml``; a name defined twice is an error, not a silent override."""
    known = set(ModelEntry.__dataclass_fields__) - {"name", "extra"}
    entries: dict[str, ModelEntry] = {}
    files = sorted(f for f in resources.files("visionkit.zoo").iterdir() if f.name.endswith(".toml"))
    rows = [(f.name, name, row) for f in files for name, row in tomllib.loads(f.read_text("utf-8")).items()]
    for file, name, row in rows:
        if name in entries:
            raise ValueError(f"model {name!r} is defined twice in the catalog (again in models/{file})")
        fields = {k: v for k, v in row.items() if k in known}
        extra = {k: v for k, v in row.items() if k not in known}
        if isinstance(fields.get("input_size"), list):
            fields["input_size"] = tuple(fields["input_size"])
        entries[name] = ModelEntry(name=name, extra=extra, **fields)
    return entries


@cache
def load_class_names(list_name: str) -> list[str]:
    """Class names of a list in ``models/classes/<name>.txt``: line i is class id i."""
    path = resources.files("visionkit.zoo.classes").joinpath(f"{list_name}.txt")
    if not path.is_file():
        raise ModelNotFoundError(f"unknown class list {list_name!r} (expected models/classes/{list_name}.txt)")
    return path.read_text(encoding="utf-8").splitlines()


def list_models(task: str | None = None, pattern: str | None = None) -> list[ModelEntry]:
    """Catalog entries sorted by task then name, optionally filtered by task and an fnmatch pattern."""
    for what, value in (("task", task), ("pattern", pattern)):
        if value is not None and not isinstance(value, str):
            raise OptionError(f"a model {what} must be a string, got {type(value).__name__}")
    rows = [e for e in _entries().values() if (task is None or e.task == task)]
    if pattern:
        rows = [e for e in rows if fnmatch.fnmatch(e.name, pattern)]
    return sorted(rows, key=lambda e: (TASKS.index(e.task) if e.task in TASKS else 99, e.name))


def get_entry(name: str) -> ModelEntry:
    if not isinstance(name, str):
        raise ModelNotFoundError(f"a model name must be a string, got {type(name).__name__}")
    entries = _entries()
    if name in entries:
        return entries[name]
    lower = {n.lower(): n for n in entries}
    close = sorted(lower[m] for m in difflib.get_close_matches(name.lower(), list(lower), n=4, cutoff=0.6))
    hint = f"; did you mean {', '.join(close)}?" if close else "; run `visionkit models` to list them"
    raise ModelNotFoundError(f"unknown model {name!r}: not in the catalog and not an existing file{hint}")


def default_model(task: str) -> ModelEntry:
    for e in list_models(task):
        if e.default:
            return e
    raise ModelNotFoundError(f"the catalog has no default model for task {task!r}")
