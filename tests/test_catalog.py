"""visionkit.catalog: listing, lookup errors, class lists and the consistency of every catalog entry."""

from __future__ import annotations

import difflib
import json
import re
from contextlib import nullcontext as does_not_raise
from pathlib import Path

import pytest

from visionkit import available_models, catalog
from visionkit.catalog import TASKS, ModelEntry, default_model, get_entry, list_models, load_class_names
from visionkit.errors import ModelNotFoundError, VisionkitError
from visionkit.tasks.base import backend_class

ALL = list_models()


def test_list_models_sorted_by_task_then_name() -> None:
    assert ALL, "the catalog is empty"
    keys = [(TASKS.index(e.task), e.name) for e in ALL]
    assert keys == sorted(keys)
    assert len({e.name for e in ALL}) == len(ALL)
    assert available_models() == [e.name for e in ALL]


@pytest.mark.parametrize(
    ("task", "pattern", "must_have", "must_not_have"),
    [
        (None, None, {"yolov5n", "ssd_mobilenet_v1_coco", "yolo11n"}, set()),
        ("detect", None, {"yolov5n", "ssd_mobilenet_v1_coco"}, set()),
        (None, "yolo*", {"yolov5n", "yolo11n", "yolov8n"}, {"ssd_mobilenet_v1_coco", "ssd300_vgg16"}),
        ("detect", "ssd*", {"ssd_mobilenet_v1_coco", "ssd300_vgg16"}, {"yolov5n"}),
        (None, "*n", {"yolov5n", "yolo11n"}, {"yolo11s"}),
        ("detect", "no-such-*", set(), {"yolov5n"}),
        ("no-such-task", None, set(), {"yolov5n"}),
    ],
)
def test_list_models_filters(task, pattern, must_have, must_not_have) -> None:
    names = [e.name for e in list_models(task, pattern)]
    assert must_have <= set(names)
    assert not must_not_have & set(names)
    assert names == [e.name for e in ALL if e.name in names]  # filtering keeps the sort order
    if task:
        assert all(e.task == task for e in list_models(task, pattern))
    if not must_have:
        assert names == []


@pytest.mark.parametrize(
    ("name", "expected", "suggestions"),
    [
        ("yolov5n", does_not_raise(), None),
        ("ssd_mobilenet_v1_coco", does_not_raise(), None),
        ("yolov5", pytest.raises(ModelNotFoundError), ["yolov5n"]),
        ("YOLO11", pytest.raises(ModelNotFoundError), ["yolo11n", "yolo11s"]),
        ("ssd_mobilenet", pytest.raises(ModelNotFoundError), ["ssd_mobilenet_v1_coco"]),
        ("yolov5n.onnx.bak", pytest.raises(ModelNotFoundError), ["yolov5n"]),
        ("zzz-unknown", pytest.raises(ModelNotFoundError), []),
    ],
)
def test_get_entry(name, expected, suggestions) -> None:
    with expected as info:
        entry = get_entry(name)
    if info is None:
        assert isinstance(entry, ModelEntry) and entry.name == name
        return
    message = str(info.value)
    assert isinstance(info.value, VisionkitError) and isinstance(info.value, KeyError)
    assert message.startswith(f"unknown model {name!r}")  # not KeyError's quoted repr
    assert "\n" not in message
    if suggestions:
        listed = re.search(r"did you mean (.+)\?$", message).group(1).split(", ")
        assert set(suggestions) <= set(listed), listed
        assert listed == sorted(listed) and set(listed) <= {e.name for e in ALL}
    else:
        assert "did you mean" not in message and "visionkit models" in message


def test_default_model() -> None:
    entry = default_model("detect")
    assert entry.default and entry.task == "detect"
    assert sum(e.default for e in list_models("detect")) == 1, "exactly one default per task"
    with pytest.raises(ModelNotFoundError, match="no default model for task 'nope'"):
        default_model("nope")


def test_class_lists() -> None:
    coco80, coco91 = load_class_names("coco80"), load_class_names("coco91")
    assert len(coco80) == 80 and len(set(coco80)) == 80
    assert len(coco91) == 91 and coco91[0] == "__background__"
    assert set(coco80) <= set(coco91)
    # coco91 is indexed by COCO category id; dropping the placeholders gives coco80 in the same order
    assert [n for n in coco91 if n not in ("__background__", "N/A")] == coco80
    assert coco80[0] == "person" and coco91[1] == "person" and coco91[90] == "toothbrush"
    assert len(load_class_names("coco_keypoints17")) == 17
    with pytest.raises(ModelNotFoundError, match="unknown class list 'nope'"):
        load_class_names("nope")


def test_coco91_matches_official_category_ids(shared_data: Path) -> None:
    data = json.loads((shared_data / "coco_val2017/annotations/instances_val2017.json").read_text())
    coco91 = load_class_names("coco91")
    for category in data["categories"]:
        assert coco91[category["id"]] == category["name"], category


@pytest.mark.parametrize("entry", ALL, ids=[e.name for e in ALL])
def test_entry_is_complete(entry: ModelEntry) -> None:
    assert entry.task in TASKS
    assert entry.backend and entry.file
    for key in entry.extra:  # backend-specific keys are fine; a misspelt standard field is not
        close = difflib.get_close_matches(key, list(ModelEntry.__dataclass_fields__), n=1, cutoff=0.8)
        assert not close, f"catalog key {key!r} looks like a typo of {close[0]!r}"
    assert "/" not in entry.file and "\\" not in entry.file
    if entry.url:
        assert entry.url.startswith("https://")
        assert entry.url.rsplit("/", 1)[-1] == entry.file, "downloaded file name must match `file`"
        assert entry.sha256 or entry.hash_prefix, "a downloadable file must be pinned by a hash"
    else:
        assert entry.source, "a model without a URL must say where its file comes from"
    if entry.sha256:
        assert re.fullmatch(r"[0-9a-f]{64}", entry.sha256)
    if entry.classes:
        assert entry.class_names, f"class list {entry.classes!r} is empty"
    for preset in (entry.defaults, entry.eval):
        for key in ("conf", "iou"):
            if key in preset:
                assert 0.0 <= preset[key] <= 1.0


@pytest.mark.parametrize("entry", ALL, ids=[e.name for e in ALL])
def test_entry_backend_exists_and_knows_its_options(entry: ModelEntry) -> None:
    cls = backend_class(entry.task, entry.backend)
    assert cls.task == entry.task and cls.name == entry.backend
    unknown = (set(entry.defaults) | set(entry.eval)) - set(cls.OPTIONS)
    assert not unknown, f"catalog options the backend does not take: {sorted(unknown)}"


def test_unknown_backend_error_lists_known() -> None:
    with pytest.raises(ModelNotFoundError, match=r"no backend 'nope' for task 'detect' \(known: .*onnx-ssd"):
        backend_class("detect", "nope")


def test_hash_prefix_from_torchvision_names() -> None:
    e = ModelEntry(name="x", task="detect", backend="torchvision", file="ssd300_vgg16_coco-b556d3b4.pth")
    assert e.hash_prefix == "b556d3b4"
    assert ModelEntry(name="y", task="detect", backend="onnx-ssd", file="model.onnx").hash_prefix == ""


def test_to_dict_drops_empty_fields() -> None:
    d = get_entry("yolov5n").to_dict()
    assert d["name"] == "yolov5n" and d["file"] == "yolov5n.onnx"
    assert "url" not in d and "extra" not in d
    json.dumps(d)  # catalog entries are JSON-ready (`visionkit models --json`)


def test_catalog_is_cached_and_immutable() -> None:
    entry = get_entry("yolov5n")
    assert get_entry("yolov5n") is entry
    with pytest.raises(AttributeError):
        entry.file = "other.onnx"  # frozen: nobody can change the catalog at run time
    assert catalog._entries() is catalog._entries()
