"""Every runtime against PyTorch, per model family: the same architecture (seeded random weights made
image-dependent, tests/random_models.py) through visionkit on torch, ONNX Runtime and OpenVINO; the ONNX files of
the catalog on OpenVINO against ONNX Runtime; precision that means what it says; ``runtime="auto"``; bad inputs."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from random_models import build_yolo

import visionkit
from visionkit.errors import OptionError, WeightsError

IMGSZ = 320  # small: the parity of the pipelines does not depend on the size, the test time does
YOLO_TASKS = {"detect": "yolov8n.yaml", "pose": "yolov8n-pose.yaml", "segment": "yolov8n-seg.yaml",
              "classify": "yolov8n-cls.yaml"}


@pytest.fixture(scope="module")
def photos(assets: Path) -> list[np.ndarray]:
    return [cv2.imread(str(assets / name)) for name in ("bus.jpg", "zidane.jpg")]


@pytest.fixture(scope="module")
def detector(photos: list[np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_yolo("yolov8n.yaml", tmp_path_factory.mktemp("det") / "yolov8n-random.pt", photos)


@pytest.fixture(scope="module", params=list(YOLO_TASKS))
def yolo(request: pytest.FixtureRequest, photos: list[np.ndarray],
         tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    task = request.param
    yaml = YOLO_TASKS[task]
    return task, build_yolo(yaml, tmp_path_factory.mktemp(task) / yaml.replace(".yaml", "-random.pt"), photos)


def _load(task: str, model: Path | str, runtime: str | None, **options: object) -> visionkit.Predictor:
    extra = {"detector": "none"} if task == "pose" else {}
    size = {} if task == "classify" else {"imgsz": IMGSZ, "conf": 0.05}
    return visionkit.load(task, str(model), device="cpu", runtime=runtime, **size, **extra, **options)


def _pair(got: visionkit.Detections, ref: visionkit.Detections, atol: float) -> list[tuple[int, int]]:
    """Boxes of ``got`` paired 1:1 with ``ref``'s of the same class within ``atol`` px (kernel float noise can
    reorder equal scores or tip a box over the conf threshold: at most 2 % may go unpaired)."""
    used = np.zeros(len(ref), bool)
    pairs = []
    for i in range(len(got)):
        d = np.abs(ref.xyxy - got.xyxy[i]).max(1) if len(ref) else np.zeros(0)
        d[used | (ref.class_ids != got.class_ids[i])] = np.inf
        j = int(np.argmin(d)) if len(d) else -1
        if j >= 0 and d[j] <= atol:
            used[j] = True
            pairs.append((i, j))
    assert len(ref) >= 5, "too few boxes for the comparison to prove anything"
    assert len(pairs) >= 0.98 * max(len(got), len(ref)), f"{len(pairs)} paired of {len(got)} / {len(ref)}"
    return pairs


@pytest.mark.parametrize("runtime", ["onnx", "openvino"])
def test_every_yolo_task_runs_on_every_runtime_as_on_pytorch(yolo: tuple[str, Path], runtime: str,
                                                             photos: list[np.ndarray]) -> None:
    task, pt = yolo
    torch_side, other = _load(task, pt, "torch"), _load(task, pt, runtime)
    assert other.backend.session.runtime == runtime and other.backend.session.precision == "fp32"
    assert other.class_names == torch_side.class_names
    for image in photos:
        ref, got = torch_side(image), other(image)
        if task == "classify":
            np.testing.assert_array_equal(got.class_ids, ref.class_ids)
            np.testing.assert_allclose(got.scores, ref.scores, atol=1e-4)
            continue
        pairs = _pair(got, ref, atol=0.05)
        i, j = (np.array(side) for side in zip(*pairs, strict=True))
        np.testing.assert_allclose(got.scores[i], ref.scores[j], atol=1e-3)
        if task == "pose":
            np.testing.assert_allclose(got.keypoints[i], ref.keypoints[j], atol=0.1)
        if task == "segment":
            inter = (got.masks[i] & ref.masks[j]).sum((1, 2))
            union = np.maximum((got.masks[i] | ref.masks[j]).sum((1, 2)), 1)
            assert np.median(inter / union) > 0.99


def test_a_torchvision_classifier_exports_and_runs_on_every_runtime(photos: list[np.ndarray], tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.onnx's export of the same network, preprocessed by torchvision's own transforms on every runtime."""
    import torch
    import torchvision

    torch.manual_seed(0)
    weights = tmp_path / "mobilenet_v3_small.pth"
    torch.save(torchvision.models.get_model("mobilenet_v3_small", weights=None).state_dict(), weights)
    results = {rt: visionkit.load("classify", "mobilenet_v3_small", weights=weights, device="cpu", runtime=rt)
               for rt in ("torch", "onnx", "openvino")}
    for image in photos:
        ref = results["torch"](image)
        for runtime in ("onnx", "openvino"):
            got = results[runtime](image)
            np.testing.assert_array_equal(got.class_ids, ref.class_ids)
            np.testing.assert_allclose(got.scores, ref.scores, atol=1e-4)


@pytest.mark.needs_shared
@pytest.mark.parametrize("task, model", [("detect", "yolov5n"), ("detect", "ssd_mobilenet_v1_coco"),
                                         ("classify", "mobilenet_v2_quant"), ("segment", "deeplabv3_mnv2_257"),
                                         ("pose", "movenet_lightning")])
def test_catalog_onnx_files_run_on_openvino_as_on_onnx_runtime(task: str, model: str, photos: list[np.ndarray],
                                                               shared_weights: Path) -> None:
    """OpenVINO reads the catalog's ONNX files directly. Float models agree to float noise; the int8 (QDQ) ones to
    what two int8 kernel sets give (the manifest's own ONNX Runtime vs TFLite figures are of the same order)."""
    extra = {"detector": "none"} if task == "pose" else {}
    ort = visionkit.load(task, model, device="cpu", **extra)
    ov = visionkit.load(task, model, device="cpu", runtime="openvino", **extra)
    for image in photos:
        ref, got = ort(image), ov(image)
        if task == "classify":
            assert got.class_ids[0] == ref.class_ids[0]
        elif task == "segment":
            assert (got.class_map == ref.class_map).mean() > 0.99
        elif task == "pose":
            # In the model's 192-pixel input, as the manifest measures ONNX Runtime against TFLite (median 2.2 px).
            seen = ref.keypoints[0, :, 2] > 0.3
            scale = max(image.shape[:2]) / 192
            assert np.median(np.abs(got.keypoints[0, seen, :2] - ref.keypoints[0, seen, :2])) / scale < 2.5
        else:
            assert len(got) == len(ref) and np.abs(got.xyxy - ref.xyxy).max() < (0.5 if model == "yolov5n" else 8)


@pytest.mark.needs_shared
def test_openvino_fp32_is_forced_and_bf16_only_when_asked(shared_weights: Path, photos: list[np.ndarray]) -> None:
    from visionkit.runtimes.openvino import OpenVinoRuntime

    fp32 = visionkit.load("detect", "yolov5n", device="cpu", runtime="openvino").warmup()
    session = fp32.backend.session
    pool = next(iter(session._compiled.values()))  # noqa: SLF001  (the compiled model is the proof)
    with pool.borrow() as request:
        assert str(request.get_compiled_model().get_property("INFERENCE_PRECISION_HINT")) == "<Type: 'float32'>"
    ort = visionkit.load("detect", "yolov5n", device="cpu")
    np.testing.assert_allclose(fp32(photos[0]).xyxy, ort(photos[0]).xyxy, atol=0.05)
    if "bf16" in OpenVinoRuntime.precisions(fp32.device):
        bf16 = visionkit.load("detect", "yolov5n", device="cpu", runtime="openvino", precision="bf16")
        assert bf16.backend.session.precision == "bf16" and bf16.backend.describe() == "OpenVINO CPU bf16"


def test_auto_measures_once_and_remembers(detector: Path, photos: list[np.ndarray]) -> None:
    task, pt = "detect", detector
    auto = _load(task, pt, "auto").warmup()
    store = Path(os.environ["VISIONKIT_CACHE"]) / "auto-runtime.json"
    entries = json.loads(store.read_text())
    [entry] = [v for k, v in entries.items() if k.split("|")[2] == "ultralytics" and str(IMGSZ) in k]
    assert set(entry["ms"]) == {"torch", "onnx", "openvino"} and auto.runtime == entry["runtime"]
    assert entry["runtime"] == min(entry["ms"], key=entry["ms"].get)
    stamp = store.stat().st_mtime_ns
    again = _load(task, pt, "auto").warmup()
    assert again.runtime == auto.runtime and store.stat().st_mtime_ns == stamp  # remembered, not measured again
    assert len(again(photos[0])) > 0


def test_an_openvino_ir_without_its_bin_is_one_line(detector: Path, tmp_path: Path) -> None:
    pt = detector
    from visionkit.export import export

    ir = export(str(pt), format="openvino", output=tmp_path / "ir" / "model.xml").path
    assert visionkit.load("detect", str(ir), device="cpu", imgsz=IMGSZ).backend.describe() == "OpenVINO CPU fp32"
    ir.with_suffix(".bin").unlink()
    with pytest.raises(WeightsError, match=r"model.xml: its weights file model.bin is missing"):
        visionkit.load("detect", str(ir), device="cpu").warmup()


def test_a_runtime_not_installed_names_its_extra(monkeypatch: pytest.MonkeyPatch, shared_weights: Path) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # what an environment without the package gives import
    with pytest.raises(OptionError, match=r"runtime openvino needs OpenVINO, which is not installed: "
                                          r"pip install 'visionkit\[openvino\]'"):
        visionkit.load("detect", "yolov5n", device="cpu", runtime="openvino")


@pytest.mark.needs_shared
@pytest.mark.parametrize("runtime, precision, message", [
    ("onnx", "fp16", "precision fp16: ONNX Runtime runs fp32, int8 on cpu"),
    ("onnx", "int8", "precision int8: yolov5n.onnx is not quantized"),
    ("openvino", "int8", "precision int8: yolov5n.onnx is not quantized"),
])
def test_precisions_a_runtime_cannot_honour_are_refused(runtime: str, precision: str, message: str,
                                                        shared_weights: Path) -> None:
    with pytest.raises(OptionError, match=message):
        visionkit.load("detect", "yolov5n", device="cpu", runtime=runtime, precision=precision).warmup()


@pytest.mark.needs_shared
def test_a_quantized_file_runs_at_int8_only(shared_weights: Path) -> None:
    quant = visionkit.load("classify", "mobilenet_v2_quant", device="cpu").warmup()
    assert quant.backend.session.precision == "int8"
    with pytest.raises(OptionError, match="mobilenet_v2_1.0_224_quant.onnx is quantized"):
        visionkit.load("classify", "mobilenet_v2_quant", device="cpu", precision="fp32").warmup()
