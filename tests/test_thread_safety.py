"""One Predictor called from several threads at once gives every call exactly its single-threaded result, for every
backend with real weights here and a random-weight ultralytics checkpoint; the lazy model build happens once.

Each thread calls the same predictor on a different real photo (different sizes, so per-call state kept on a shared
object - YuNet's input size, a TFLite interpreter's tensors, ultralytics' anchor cache - would show), several rounds,
and a barrier before each round makes the calls overlap.
"""

from __future__ import annotations

import pickle
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from clip_helpers import make_clip
from random_models import build_yolo

import visionkit
from visionkit.composites.person_pose import PersonPose
from visionkit.tasks.base import backend_class

THREADS = 4
ROUNDS = 3
COCO_IMAGES = ("000000000139.jpg", "000000011813.jpg")  # 640x426 landscape, 333x500 portrait
# (task, catalog model, backend): every backend whose real weights are in shared/weights.
REAL_MODELS = [
    ("detect", "yunet_face", "opencv-yunet"),
    ("detect", "yolov5n", "onnx-yolo"),
    ("detect", "ssd_mobilenet_v1_coco", "onnx-ssd"),
    ("classify", "mobilenet_v2_quant", "onnx-classify"),
    ("pose", "movenet_lightning", "onnx-movenet"),
    ("segment", "deeplabv3_mnv2_257", "onnx-deeplab"),
    ("segment", "selfie_segmentation", "tflite-selfie"),
    ("pose", "blazepose_full", "tflite-blazepose"),
]


@pytest.fixture(scope="module")
def photos(assets: Path, shared_data: Path) -> list[np.ndarray]:
    paths = [assets / "bus.jpg", assets / "zidane.jpg",
             *(shared_data / "coco_val2017" / "images" / n for n in COCO_IMAGES)]
    images = [cv2.imread(str(p)) for p in paths]
    assert all(im is not None for im in images) and len({im.shape for im in images}) == len(images)
    return images


@pytest.fixture(scope="module")
def random_yolo(tmp_path_factory: pytest.TempPathFactory, assets: Path) -> Path:
    calib = [cv2.imread(str(assets / n)) for n in ("bus.jpg", "zidane.jpg")]
    return build_yolo("yolov8n.yaml", tmp_path_factory.mktemp("threads") / "yolov8n-random.pt", calib)


def assert_same(a: Any, b: Any) -> None:
    """Two results equal in every field but the timings."""
    assert type(a) is type(b)
    for f in fields(a):
        if f.name == "speed":
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            assert x is not None and y is not None and np.array_equal(x, y), f.name
        else:
            assert x == y, f.name


def count_builds(monkeypatch: pytest.MonkeyPatch, task: str, backend: str) -> list[int]:
    """Counts constructions of a backend class; each is slowed down so that racing builds would overlap."""
    cls = backend_class(task, backend)
    original = cls.__init__
    builds: list[int] = []

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        builds.append(threading.get_ident())
        time.sleep(0.2)
        original(self, *args, **kwargs)

    monkeypatch.setattr(cls, "__init__", counting)
    return builds


def call_from_threads(call: Any, inputs: list[Any]) -> list[list[Any]]:
    """``call`` from THREADS threads at once, ROUNDS times each; thread k's round r gets input (k + r) mod n."""
    barrier = threading.Barrier(THREADS)

    def work(k: int) -> list[Any]:
        out = []
        for r in range(ROUNDS):
            barrier.wait(timeout=60)
            out.append(call(inputs[(k + r) % len(inputs)]))
        return out

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(work, range(THREADS)))


def check_concurrent_equals_serial(predictor: Any, reference: Any, inputs: list[Any]) -> None:
    expected = [reference(x) for x in inputs]
    for k, results in enumerate(call_from_threads(predictor, inputs)):
        for r, result in enumerate(results):
            assert_same(result, expected[(k + r) % len(inputs)])


@pytest.mark.parametrize(("task", "model", "backend"), REAL_MODELS, ids=[m for _, m, _ in REAL_MODELS])
def test_real_backend_from_threads_equals_single_threaded(task: str, model: str, backend: str,
                                                          photos: list[np.ndarray], shared_weights: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    reference = visionkit.load(task, model, device="cpu").warmup()
    builds = count_builds(monkeypatch, task, backend)
    # A pickled round trip first: the locks do not travel, the copy makes its own.
    shared = pickle.loads(pickle.dumps(visionkit.load(task, model, device="cpu")))
    check_concurrent_equals_serial(shared, reference, photos)
    assert len(builds) == 1, f"{model} built {len(builds)} times"


def test_ultralytics_checkpoint_from_threads_equals_single_threaded(random_yolo: Path, photos: list[np.ndarray],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Photos of different sizes give different letterboxed shapes: ultralytics' Detect head caches the anchors of
    the last shape on itself, so a shared module would decode one thread's boxes with another's anchors."""
    reference = visionkit.load("detect", str(random_yolo), device="cpu", conf=0.1).warmup()
    builds = count_builds(monkeypatch, "detect", "ultralytics")
    shared = visionkit.load("detect", str(random_yolo), device="cpu", conf=0.1)
    check_concurrent_equals_serial(shared, reference, photos)
    assert len(builds) == 1
    assert sum(len(reference(p)) for p in photos) >= 20  # the comparison covers real boxes


# (task, torchvision architecture, options): CONCURRENT torch backends, seeded random weights.
TORCHVISION_MODELS = [
    ("classify", "mobilenet_v3_small", {"top_k": 5}),
    ("detect", "ssdlite320_mobilenet_v3_large", {"conf": 0.001, "max_det": 50}),
]


@pytest.mark.parametrize(("task", "arch", "options"), TORCHVISION_MODELS, ids=[a for _, a, _ in TORCHVISION_MODELS])
def test_torchvision_backend_from_threads_equals_single_threaded(task: str, arch: str, options: dict[str, Any],
                                                                 photos: list[np.ndarray], tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import torch
    import torchvision

    torch.manual_seed(0)
    kwargs = {"weights_backbone": None, "num_classes": 91} if task == "detect" else {}
    weights = tmp_path / f"{arch}.pth"
    torch.save(torchvision.models.get_model(arch, weights=None, **kwargs).state_dict(), weights)
    reference = visionkit.load(task, arch, weights=weights, device="cpu", **options).warmup()
    builds = count_builds(monkeypatch, task, "torchvision")
    shared = visionkit.load(task, arch, weights=weights, device="cpu", **options)
    check_concurrent_equals_serial(shared, reference, photos)
    assert len(builds) == 1
    assert all(len(reference(p)) > 0 for p in photos)


def test_person_pose_with_a_tflite_pose_model_from_threads(photos: list[np.ndarray], shared_weights: Path) -> None:
    """PersonPose runs the pose backend's ``predict_in_boxes`` directly: under the pose predictor's lock too."""
    def pipeline() -> PersonPose:
        return PersonPose(visionkit.load("detect", "yolov5n", device="cpu", classes=[0]),
                          visionkit.load("pose", "blazepose_full", device="cpu"))

    check_concurrent_equals_serial(pipeline(), pipeline(), photos[:2])


def test_tracker_streams_from_threads_keep_their_own_state(shared_data: Path, shared_weights: Path,
                                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``stream()`` starts a tracker per call: two threads streaming two clips through one TrackingPredictor get
    the tracks each clip gets alone (ids from 1 in both), and the shared detector is built once."""
    video = shared_data / "tracking/demo/vtest.avi"
    clips = [make_clip(video, tmp_path / f"{k}.avi", frames=12, start=200 * k) for k in range(2)]

    def tracks(tracking: Any, clip: Path) -> list[tuple[int, list[int], np.ndarray]]:
        return [(f.index, t.track_ids.tolist(), t.xyxy) for f, t in tracking.stream(clip)]

    alone = visionkit.load("track", "yolov5n", device="cpu", classes=[0]).warmup()
    expected = [tracks(alone, c) for c in clips]
    assert all(sum(len(ids) for _, ids, _ in e) >= 12 for e in expected)
    builds = count_builds(monkeypatch, "detect", "onnx-yolo")
    shared = visionkit.load("track", "yolov5n", device="cpu", classes=[0])
    barrier = threading.Barrier(len(clips))

    def work(clip: Path) -> list[tuple[int, list[int], np.ndarray]]:
        barrier.wait(timeout=60)
        return tracks(shared, clip)

    with ThreadPoolExecutor(len(clips)) as pool:
        got = list(pool.map(work, clips))
    assert len(builds) == 1
    for g, e in zip(got, expected, strict=True):
        assert [(i, ids) for i, ids, _ in g] == [(i, ids) for i, ids, _ in e]
        assert all(np.array_equal(a, b) for (_, _, a), (_, _, b) in zip(g, e, strict=True))


def test_action_streams_from_threads_keep_their_own_windows(shared_data: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """``ActionPredictor.stream()`` keeps a sliding window per call: two threads streaming two clips through one
    predictor get each clip's own window predictions, and the model is built once."""
    import torch
    import torchvision

    torch.manual_seed(0)
    weights = tmp_path / "r3d_18.pth"
    torch.save(torchvision.models.get_model("r3d_18", weights=None).state_dict(), weights)
    video = shared_data / "action/v_Basketball_g01_c01.avi"
    clips = [make_clip(video, tmp_path / f"{k}.avi", frames=8, start=60 * k) for k in range(2)]

    def labels(predictor: Any, clip: Path) -> list[tuple[int, int, int, np.ndarray]]:
        return [(f.index, p.start_frame, p.end_frame, p.scores) for f, p in predictor.stream(clip)]

    options = {"weights": weights, "device": "cpu", "window": 4, "stride": 2}
    alone = visionkit.load("action", "r3d_18", **options).warmup()
    expected = [labels(alone, c) for c in clips]
    builds = count_builds(monkeypatch, "action", "torchvision")
    shared = visionkit.load("action", "r3d_18", **options)
    barrier = threading.Barrier(len(clips))

    def work(clip: Path) -> list[tuple[int, int, int, np.ndarray]]:
        barrier.wait(timeout=60)
        return labels(shared, clip)

    with ThreadPoolExecutor(len(clips)) as pool:
        got = list(pool.map(work, clips))
    assert len(builds) == 1
    for g, e in zip(got, expected, strict=True):
        assert [row[:3] for row in g] == [row[:3] for row in e] and len(g) == 8
        assert all(np.array_equal(a[3], b[3]) for a, b in zip(g, e, strict=True))
