"""Fault matrix of options: every bad option value is refused - on the command line with exit 2 and one line, in the
API with ``OptionError`` naming the option and the value - before anything is written; options the model itself
rules out (a fixed input size, class ids beyond its class list) are refused as soon as the model is loaded.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from fault_harness import Fault, check_fault, run_cli
from random_models import build_yolo

import visionkit
from visionkit import OptionError

# (id, argv after `visionkit`, what the one error line says); {bus} is a real photo. All exit 2.
CLI_CASES = [
    ("yolo-onnx-fixed-imgsz", ["detect", "{bus}", "-m", "yolov5n", "--imgsz", "320"],
     "imgsz 320: yolov5n has a fixed 640x640 input (yolov5n.onnx)"),
    ("ssd-fixed-imgsz", ["detect", "{bus}", "-m", "ssd_mobilenet_v1_coco", "--imgsz", "320"],
     "ssd_mobilenet_v1_coco has a fixed 300x300 input"),
    ("classify-fixed-imgsz", ["classify", "{bus}", "-m", "mobilenet_v2_quant", "--imgsz", "320"],
     "mobilenet_v2_quant has a fixed 224x224 input"),
    ("movenet-fixed-imgsz", ["pose", "{bus}", "-m", "movenet_lightning", "--imgsz", "256"],
     "movenet_lightning has a fixed 192x192 input"),
    ("deeplab-fixed-imgsz", ["segment", "{bus}", "-m", "deeplabv3_mnv2_257", "--imgsz", "513"],
     "deeplabv3_mnv2_257 has a fixed 257x257 input"),
    ("classes-beyond-80", ["detect", "{bus}", "-m", "yolov5n", "--classes", "0,999"],
     "classes 999: yolov5n has 80 classes (ids 0-79)"),
    ("classes-beyond-ssd-labels", ["detect", "{bus}", "-m", "ssd_mobilenet_v1_coco", "--classes", "500"],
     "classes 500: ssd_mobilenet_v1_coco has"),
    ("track-classes-beyond-80", ["track", "{bus}", "-m", "yolov5n", "--classes", "80"],
     "classes 80: yolov5n has 80 classes"),
    ("negative-imgsz", ["detect", "{bus}", "-m", "yolov5n", "--imgsz", "-5"], "must be a positive integer, got -5"),
    ("conf-not-a-number", ["detect", "{bus}", "-m", "yolov5n", "--conf", "abc"],
     "argument --conf: must be a number between 0 and 1, got abc"),
    ("conf-out-of-range", ["detect", "{bus}", "-m", "yolov5n", "--conf", "1.5"],
     "argument --conf: must be a number between 0 and 1, got 1.5"),
    ("classes-negative-id", ["detect", "{bus}", "-m", "yolov5n", "--classes", "0,-1"],
     "argument --classes: must be a class id or name, or a list of them (ids are integers >= 0), got 0,-1"),
    ("max-det-not-an-int", ["detect", "{bus}", "-m", "yolov5n", "--max-det", "2.5"],
     "argument --max-det: must be a positive integer, got 2.5"),
    ("option-the-model-lacks", ["detect", "{bus}", "-m", "yunet_face", "--classes", "0"],
     "unknown option(s) classes for detect backend 'opencv-yunet'"),
]


@pytest.mark.parametrize(("argv", "says"), [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_cli_refuses_bad_option(argv: list[str], says: str, assets: Path, shared_weights: Path,
                                tmp_path: Path) -> None:
    bus = assets / "bus.jpg"
    out = tmp_path / "out"
    fault = Fault(id="", argv=[a.format(bus=bus) for a in argv] + ["--save", out, "--json", out / "r.jsonl"],
                  code=2, says=says, inputs=[bus])
    check_fault(fault)
    assert not out.exists() or not any(out.iterdir())  # refused before any output was opened


# (task, model, options, what the OptionError says): refused when the Predictor is made, before any weights load.
API_CASES = [
    ("detect", "yolov5n", {"conf": "abc"}, "conf must be a number between 0 and 1, got 'abc'"),
    ("detect", "yolov5n", {"conf": 1.5}, "conf must be a number between 0 and 1, got 1.5"),
    ("detect", "yolov5n", {"iou": -0.1}, "iou must be a number between 0 and 1, got -0.1"),
    ("detect", "yolov5n", {"iou": True}, "iou must be a number between 0 and 1, got True"),
    ("detect", "yolov5n", {"max_det": 0}, "max_det must be a positive integer, got 0"),
    ("detect", "yolov5n", {"max_det": 2.5}, "max_det must be a positive integer, got 2.5"),
    ("detect", "yolov5n", {"imgsz": -5}, "imgsz must be a positive integer or an (h, w) pair of them, got -5"),
    ("detect", "yolov5n", {"imgsz": 0}, "imgsz must be a positive integer or an (h, w) pair of them, got 0"),
    ("detect", "yolov5n", {"imgsz": 3.5}, "got 3.5"),
    ("detect", "yolov5n", {"imgsz": "640"}, "got '640'"),
    ("detect", "yolov5n", {"imgsz": (0, 640)}, "got (0, 640)"),
    ("detect", "yolov5n", {"classes": [-1]}, "classes must be a class id or name, or a list of them"),
    ("detect", "yolov5n", {"classes": ["person", ""]}, "got ['person', '']"),
    ("detect", "yolov5n", {"classes": 2.0}, "got 2.0"),
    ("detect", "yolov5n", {"agnostic": "yes"}, "agnostic must be true or false, got 'yes'"),
    ("detect", "yolov5n", {"batch_size": 0}, "batch_size must be an integer between 1 and 4096, got 0"),
    ("detect", "yolov5n", {"batch_size": "2"}, "batch_size must be an integer between 1 and 4096, got '2'"),
    ("detect", "yolov5n", {"workers": 1.5}, "workers must be an integer between 1 and 256, got 1.5"),
    ("detect", "yunet_face", {"imgsz": -1}, "imgsz must be an integer >= 0 (0 = no limit), got -1"),
    ("detect", "yunet_face", {"imgsz": (320, 320)}, "got (320, 320)"),
    ("classify", "mobilenet_v2_quant", {"top_k": "5"}, "top_k must be a positive integer, got '5'"),
    ("classify", "resnet18", {"imgsz": (224, 224)}, "imgsz must be a positive integer, got (224, 224)"),
    ("segment", "deeplabv3_mnv2_257", {"keep_aspect": 1}, "keep_aspect must be true or false, got 1"),
    ("action", "r3d_18", {"window": 2.5}, "window must be a positive integer, got 2.5"),
    ("action", "r3d_18", {"stride": "4"}, "stride must be a positive integer, got '4'"),
]


@pytest.mark.parametrize(("task", "model", "options", "says"), API_CASES,
                         ids=[f"{m}-{next(iter(o))}={next(iter(o.values()))!r}" for _, m, o, _ in API_CASES])
def test_api_refuses_bad_option_value(task: str, model: str, options: dict[str, Any], says: str) -> None:
    with pytest.raises(OptionError, match=re.escape(says)):
        visionkit.load(task, model, **options)


# Refused once the model is loaded: its file fixes the input size, or its class list is shorter.
LOADED_CASES = [
    ("detect", "yolov5n", {"imgsz": 320}, "imgsz 320: yolov5n has a fixed 640x640 input"),
    ("detect", "yolov5n", {"imgsz": (640, 320)}, "imgsz (640, 320): yolov5n has a fixed 640x640 input"),
    ("detect", "yolov5n", {"classes": [0, 80]}, "classes 80: yolov5n has 80 classes (ids 0-79)"),
    ("detect", "yolov5n", {"classes": ["person", "bycicle"]}, "yolov5n has no class 'bycicle'; did you mean bicycle?"),
    ("detect", "yolov5n", {"classes": "qwertyuiop"}, "its classes: person, bicycle, car, motorcycle, airplane, bus, "
                                                     "train, truck, ... (80 in all)"),
    ("detect", "ssd_mobilenet_v1_coco", {"imgsz": 320}, "has a fixed 300x300 input"),
    ("classify", "mobilenet_v2_quant", {"imgsz": 256}, "has a fixed 224x224 input"),
    ("pose", "movenet_lightning", {"imgsz": 128}, "has a fixed 192x192 input"),
    ("pose", "blazepose_full", {"imgsz": 128}, "blazepose_full has a fixed 256x256 input (pose_landmark_full.tflite)"),
    ("segment", "deeplabv3_mnv2_257", {"imgsz": 300}, "has a fixed 257x257 input"),
    ("segment", "selfie_segmentation", {"imgsz": 300}, "has a fixed 256x256 input"),
]


@pytest.mark.parametrize(("task", "model", "options", "says"), LOADED_CASES,
                         ids=[f"{m}-{next(iter(o))}" for _, m, o, _ in LOADED_CASES])
def test_api_refuses_option_the_model_rules_out(task: str, model: str, options: dict[str, Any], says: str,
                                                shared_weights: Path) -> None:
    predictor = visionkit.load(task, model, device="cpu", **options)
    with pytest.raises(OptionError, match=re.escape(says)):
        predictor.warmup()


@pytest.mark.parametrize(("task", "model", "size"), [("detect", "yolov5n", 640), ("detect", "yolov5n", (640, 640)),
                                                     ("pose", "movenet_lightning", 192)])
def test_imgsz_equal_to_the_fixed_size_is_accepted(task: str, model: str, size: Any, assets: Path,
                                                   shared_weights: Path) -> None:
    image = cv2.imread(str(assets / "bus.jpg"))
    given = visionkit.load(task, model, device="cpu", imgsz=size)(image)
    plain = visionkit.load(task, model, device="cpu")(image)
    assert np.array_equal(given.xyxy, plain.xyxy) and len(plain) > 0


@pytest.fixture(scope="module")
def random_yolo(tmp_path_factory: pytest.TempPathFactory, assets: Path) -> Path:
    calib = [cv2.imread(str(assets / n)) for n in ("bus.jpg", "zidane.jpg")]
    return build_yolo("yolov8n.yaml", tmp_path_factory.mktemp("options") / "yolov8n-random.pt", calib)


def test_imgsz_off_the_stride_is_rounded_up_as_ultralytics_does(random_yolo: Path, assets: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    """ultralytics' predictors round imgsz up to a stride multiple (a YOLO network runs no other size); visionkit
    does the same and says so, rather than failing inside the network or silently running another size."""
    image = cv2.imread(str(assets / "zidane.jpg"))
    with caplog.at_level(logging.WARNING, logger="visionkit"):
        odd = visionkit.load("detect", str(random_yolo), device="cpu", imgsz=500, conf=0.1)(image)
    assert "imgsz 500 is not a multiple of yolov8n-random's stride 32: using 512, as ultralytics does" in caplog.text
    even = visionkit.load("detect", str(random_yolo), device="cpu", imgsz=512, conf=0.1)(image)
    assert len(even) > 0 and np.array_equal(odd.xyxy, even.xyxy) and np.array_equal(odd.scores, even.scores)


def test_classes_beyond_a_checkpoints_own_names_are_refused_once_loaded(random_yolo: Path) -> None:
    predictor = visionkit.load("detect", str(random_yolo), device="cpu", classes=[79, 80])
    with pytest.raises(OptionError, match=re.escape("classes 80: yolov8n-random has 80 classes (ids 0-79)")):
        predictor.warmup()


def test_runtime_onnx_on_an_onnx_model_is_a_no_op_everywhere(shared_weights: Path, assets: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    """The model already runs on ONNX Runtime: load() runs it as is, export hands the file back and says so."""
    image = cv2.imread(str(assets / "bus.jpg"))
    plain = visionkit.load("detect", "yolov5n", device="cpu")(image)
    onnx = visionkit.load("detect", "yolov5n", device="cpu", runtime="onnx")(image)
    assert np.array_equal(plain.xyxy, onnx.xyxy)
    with caplog.at_level(logging.WARNING, logger="visionkit"):
        exported = visionkit.export_onnx("yolov5n")
    assert exported.resolve() == (shared_weights / "yolov5n.onnx").resolve()
    assert "yolov5n.onnx is already an ONNX model: nothing to export" in caplog.text
    cli = run_cli("export", "yolov5n")
    assert cli.code == 0 and Path(cli.stdout.strip()).resolve() == exported.resolve()
    assert "is already an ONNX model: nothing to export" in cli.stderr and "error" not in cli.stderr


def test_every_option_has_one_declared_type_and_the_catalog_fits_it() -> None:
    """Each option a catalog model's backend takes is type-checked (``OPTION_TYPES``), and the catalog's own
    interactive and evaluation settings pass the same check a caller's values do."""
    from visionkit.catalog import list_models
    from visionkit.tasks.base import backend_class

    entries = list_models()
    assert entries
    for entry in entries:
        cls = backend_class(entry.task, entry.backend)
        for name in cls.OPTIONS:
            cls.option_type(name)  # a KeyError here: an option nobody declared a type for
        for name, value in {**entry.defaults, **entry.eval}.items():
            assert name in cls.OPTIONS, f"{entry.name}: catalog setting {name} is not a {cls.name} option"
            cls.option_type(name).check(name, value)
