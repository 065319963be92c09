"""Property-based fuzzing of everything a user hands visionkit: files (random, truncated or corrupted bytes under
image, video and model suffixes), numpy arrays of any shape and dtype, PIL images of every mode, option values of
any type, result dicts, source strings, and CLI argument lists.

The property is the project's error contract: the API either returns a result or raises a ``VisionkitError``
whose message is one line; the CLI exits 0, 1 or 2 (argparse's own usage errors are ``SystemExit(2)``) and never
prints "internal error" or a traceback. Real models (the fastest of ../shared/weights) are built once per module.

CI runs derandomized, without an example database and with modest example counts, so a run is reproducible and
quick; ``HYPOTHESIS_PROFILE=long`` runs 20 times more examples from random seeds (and keeps a database of the
failures) for local digging. Known bugs in code other areas own are pinned below as ``xfail(strict=True)``
tests: each flips to a failure (and is then to be turned into a plain test) once it is fixed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import os
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, assume, event, example, given, settings
from hypothesis import strategies as st
from PIL import Image

import visionkit
from visionkit import catalog
from visionkit.cli import main as cli_main
from visionkit.errors import VisionkitError
from visionkit.results import Detections

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
_FACTOR = 20 if PROFILE == "long" else 1
_BASE = settings(deadline=None, derandomize=PROFILE != "long", print_blob=PROFILE == "long",
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                        HealthCheck.function_scoped_fixture])
if PROFILE != "long":
    _BASE = settings(_BASE, database=None)


def fuzz(examples: int) -> settings:
    """The module's settings with ``examples`` examples (times 20 under HYPOTHESIS_PROFILE=long)."""
    return settings(_BASE, max_examples=examples * _FACTOR)


MODELS = {"ssd": ("detect", "ssd_mobilenet_v1_coco"), "yolo": ("detect", "yolov5n"),
          "cls": ("classify", "mobilenet_v2_quant"), "track": ("track", "ssd_mobilenet_v1_coco")}
IMAGE_SUFFIXES = (".jpg", ".png")
VIDEO_SUFFIXES = (".mp4", ".avi")
MODEL_SUFFIXES = (".pt", ".onnx", ".tflite", ".json")


# -- the contract ------------------------------------------------------------------------------------------
def user_facing(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(...)``'s value, or the ``VisionkitError`` it raised (checked to be one non-empty line); any other
    exception propagates and fails the property."""
    try:
        return fn(*args, **kwargs)
    except VisionkitError as e:
        message = str(e).strip()
        assert message and "\n" not in message, f"not a one-line message: {message!r}"
        return e


@dataclass(frozen=True)
class KnownBug:
    """A crash the fuzzer found in code another area owns, told apart by the innermost visionkit frame it is
    raised from (file and function); each is pinned by its own ``xfail(strict=True)`` test below."""

    file: str
    function: str
    what: str


# Open crashes in code other areas own, let through by the properties so they keep looking for new ones. None is
# open now: a new find goes here, pinned by its own test (``@pinned(KnownBug(...))`` with the failing ``@example``s),
# which flips to a failure once the bug is fixed; its examples then stay as a ``@regression`` test.
KNOWN_BUGS: list[KnownBug] = []


def known_bug(error: BaseException) -> KnownBug | None:
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f"{os.sep}visionkit{os.sep}" in f.filename]
    if not frames:
        return None
    where = (Path(frames[-1].filename).name, frames[-1].name)
    return next((bug for bug in KNOWN_BUGS if (bug.file, bug.function) == where), None)


def tolerating_known(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``user_facing``, letting the known bugs through (their own xfail tests pin them), so the property keeps
    looking for new ones."""
    try:
        return user_facing(fn, *args, **kwargs)
    except Exception as e:
        if known_bug(e) is None:
            raise
        return e


def first_frames(spec: Any, n: int = 3) -> list[Any]:
    """Open ``spec`` as a source and decode up to ``n`` frames (a live source is not waited on)."""
    source = visionkit.open_source(spec)
    if source.live:
        return []
    return [frame.image.shape for frame in itertools.islice(iter(source), n)]


def first_results(predictor: Any, spec: Any, n: int = 3) -> list[Any]:
    """The first ``n`` results of ``predictor.stream(spec)``, the stream closed after them."""
    with contextlib.closing(predictor.stream(spec)) as results:
        return [result for _, result in itertools.islice(results, n)]


def run_cli(argv: list[str]) -> tuple[int, str]:
    """``visionkit argv...`` in this process: (exit code, stderr); argparse's SystemExit counts as its code."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli_main(argv)
        except SystemExit as e:  # sys.exit semantics: None is 0, a message is 1
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return code, err.getvalue()


def assert_cli_contract(argv: list[str]) -> None:
    """Exit 0, 1 or 2, no internal error, no traceback; an internal error that is a known bug is let through."""
    code, stderr = run_cli(argv)
    event(f"exit {code}")
    if "internal error" in stderr:
        quiet = contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO())
        try:  # --debug re-raises the internal error: is it one of the known bugs?
            with quiet[0], quiet[1]:
                cli_main(["--debug", *argv])
        except Exception as e:
            if known_bug(e) is not None:
                return
    assert code in (0, 1, 2), f"exit {code} for {argv}: {stderr}"
    assert "internal error" not in stderr and "Traceback" not in stderr, f"{argv}:\n{stderr}"


# -- fixtures ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def models(shared_weights: Path) -> dict[str, Any]:
    """The fastest real models, loaded once; the first call builds each backend."""
    loaded = {key: visionkit.load(task, name, device="cpu") for key, (task, name) in MODELS.items()}
    for predictor in loaded.values():
        predictor.warmup()
    return loaded


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory, shared_weights: Path, shared_data: Path,
            assets: Path) -> dict[str, Path]:
    """Small real inputs to truncate and corrupt, and to hand the CLI: a photo, a PNG, a 6-frame clip."""
    folder = tmp_path_factory.mktemp("fuzz-samples")
    photo = cv2.resize(cv2.imread(str(assets / "bus.jpg")), (81, 108))
    cv2.imwrite(str(folder / "small.jpg"), photo)
    cv2.imwrite(str(folder / "small.png"), photo)
    cap = cv2.VideoCapture(str(shared_data / "tracking" / "demo" / "vtest.avi"))
    writer = cv2.VideoWriter(str(folder / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
    for _ in range(6):
        writer.write(cv2.resize(cap.read()[1], (160, 120)))
    writer.release()
    cap.release()
    return {".jpg": folder / "small.jpg", ".png": folder / "small.png", ".mp4": folder / "clip.mp4",
            ".avi": shared_data / "tracking" / "demo" / "vtest.avi",
            ".onnx": shared_weights / "ssd_mobilenet_v1_coco_quant.onnx", ".pt": shared_weights / "yolov5n.pt",
            ".tflite": shared_weights / "mobilenet_v2_1.0_224_quant.tflite"}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-files")


def write_unique(folder: Path, data: bytes, suffix: str) -> Path:
    """``data`` in a file named by its hash: loaders that cache by path (ONNX output names) see each once."""
    path = folder / f"{hashlib.sha256(data).hexdigest()[:16]}{suffix}"
    path.write_bytes(data)
    return path


# -- strategies --------------------------------------------------------------------------------------------
DTYPES = [np.uint8, np.uint16, np.int8, np.int16, np.int32, np.int64, np.float16, np.float32, np.float64, np.bool_,
          np.complex64, object, np.str_]
SHAPES = st.one_of(
    st.lists(st.integers(0, 6), min_size=0, max_size=5).map(tuple),  # 0-d .. 5-d, empty axes
    st.tuples(st.integers(1, 300), st.integers(1, 300)),
    st.tuples(st.integers(1, 300), st.integers(1, 300), st.sampled_from([1, 2, 3, 4, 5])),
    st.tuples(st.integers(1, 4), st.integers(1, 64), st.integers(1, 64), st.integers(1, 4)),  # a 4-d batch
    st.sampled_from([(1, 20000, 3), (20000, 1), (3, 1, 1), (1, 1, 3), (1200, 1800, 3), (0, 10, 3), (10, 0),
                     (2, 2, 3, 3, 3)]),  # extreme aspect, huge but bounded, empty
)


@st.composite
def arrays(draw: st.DrawFn) -> np.ndarray:
    """Any numpy array an API user might pass as an image, including wrong ones and odd memory layouts."""
    shape, dtype = draw(SHAPES), draw(st.sampled_from(DTYPES))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    fill = draw(st.sampled_from(["zeros", "random", "extremes", "nan", "inf"]))
    if dtype is object:
        array = np.empty(shape, object)
        array[...] = draw(st.sampled_from([None, 1, "x", 0.5]))
    elif fill == "random" or dtype in (np.str_, np.bool_):
        array = (rng.random(shape) * draw(st.sampled_from([1.0, 255.0, 65535.0, 1e30]))).astype(dtype)
    elif fill == "extremes" and np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        array = rng.choice(np.array([info.min, info.max], dtype), shape)
    elif fill in ("nan", "inf") and np.dtype(dtype).kind in "fc":
        array = np.full(shape, np.nan if fill == "nan" else draw(st.sampled_from([np.inf, -np.inf])), dtype)
    else:
        array = np.zeros(shape, dtype)
    layout = draw(st.sampled_from(["c", "fortran", "reversed", "strided", "readonly"]))
    if layout == "fortran":
        array = np.asfortranarray(array)
    elif layout == "reversed" and array.ndim:
        array = array[::-1]
    elif layout == "strided" and array.ndim:
        array = array[::2]
    elif layout == "readonly":
        array.setflags(write=False)
    return array


PIL_MODES = ["1", "L", "P", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "I", "F", "I;16", "I;16B", "I;16L",
             "I;16N", "LA", "La", "PA", "RGBX", "RGBa"]


@st.composite
def pil_images(draw: st.DrawFn) -> Image.Image:
    mode = draw(st.sampled_from(PIL_MODES))
    size = draw(st.one_of(st.tuples(st.integers(0, 64), st.integers(0, 64)), st.sampled_from([(1, 5000), (5000, 1)])))
    try:
        blank = Image.new(mode, size)
        if draw(st.booleans()):
            blank = Image.frombytes(mode, size, np.random.default_rng(0).bytes(len(blank.tobytes())))
    except (ValueError, OSError):  # a mode PIL cannot create this way: not an input anyone can pass
        assume(False)
    return blank


@st.composite
def file_bytes(draw: st.DrawFn, real: bytes) -> bytes:
    """Random bytes, or ``real`` (a valid file of the suffix) truncated, or with bytes overwritten."""
    kind = draw(st.sampled_from(["random", "truncated", "corrupted", "empty"]))
    if kind == "random":
        return draw(st.binary(max_size=4096))
    if kind == "empty":
        return b""
    if kind == "truncated":
        return real[:draw(st.integers(0, len(real) - 1))]
    data = bytearray(real)
    for _ in range(draw(st.integers(1, 16))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


OPTION_NAMES = ["conf", "iou", "imgsz", "max_det", "classes", "top_k", "batch_size", "workers", "device", "runtime",
                "tracker", "tracker_params", "weights", "evaluate", "agnostic", "multi_label", "rect", "window",
                "stride", "bogus"]
WEIRD = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.sampled_from([0, -1, 2**31, 2**63, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([float("nan"), float("inf"), -float("inf")]),
    st.text(max_size=8), st.sampled_from(["0.5", "abc", "", "cpu", "cuda", "onnx", "botsort", "1,2"]),
    st.lists(st.one_of(st.integers(-5, 100), st.text(max_size=3), st.none()), max_size=4),
    st.dictionaries(st.text(max_size=6), st.integers(-5, 5), max_size=3), st.tuples(st.integers(-5, 700)),
    st.just(object()),
)
OPTIONS = st.dictionaries(st.sampled_from(OPTION_NAMES), WEIRD, max_size=4)

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
                    max_leaves=12)


def maybe(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the right kind of value, sometimes any JSON value."""
    return st.one_of(good, good, good, JSON)


DETECTION = st.fixed_dictionaries(
    {"box": maybe(st.lists(st.floats(-1e4, 1e4), min_size=4, max_size=4)), "score": maybe(st.floats(0, 1)),
     "class_id": maybe(st.integers(-1, 90)), "class_name": maybe(st.text(max_size=8))},
    optional={"track_id": maybe(st.integers(0, 10**6)),
              "keypoints": maybe(st.lists(st.lists(st.floats(-10, 1000), min_size=3, max_size=3), max_size=3)),
              "mask": maybe(st.fixed_dictionaries({"size": maybe(st.lists(st.integers(0, 8), min_size=2, max_size=2)),
                                                   "counts": maybe(st.text(max_size=8))})),
              "bogus": JSON})
RESULT_DICTS = st.one_of(
    JSON,
    st.fixed_dictionaries({"detections": maybe(st.lists(maybe(DETECTION), max_size=4))},
                          optional={"type": maybe(st.just("detections")), "frame_index": maybe(st.integers(0, 10**6)),
                                    "image_shape": maybe(st.lists(st.integers(0, 4000), min_size=2, max_size=2)),
                                    "speed": maybe(st.fixed_dictionaries({}, optional={
                                        k: maybe(st.floats(0, 1e3)) for k in ("preprocess", "inference",
                                                                              "postprocess")})),
                                    "metadata": JSON}),
)

SOURCE_TEXT = st.one_of(st.text(max_size=24), st.sampled_from(
    ["", " ", "0", "-1", "99999999999999999999", "1e3", "~", ".", "/", "/dev/null", "/proc/self/fd", "*", "**/*.jpg",
     "[", "nope.mp4", "nope.jpg", "x\x00y.jpg", "a" * 300, "./small.jpg", "small.*", "clip.mp4", "file:///etc/passwd",
     "~nosuchuser/x.jpg", "two\nlines.jpg", "\u00b3", "\u0663"]))


# -- API properties ----------------------------------------------------------------------------------------
@fuzz(150)
@example(image=np.full((8, 8, 3), np.nan, np.float32), key="yolo")  # was silently black (and a RuntimeWarning)
@given(image=arrays(), key=st.sampled_from(sorted(MODELS)))
def test_any_numpy_array(models: dict[str, Any], image: np.ndarray, key: str) -> None:
    result = user_facing(models[key], image)
    if image.dtype.kind == "f" and image.size and np.isnan(image).any():
        assert isinstance(result, VisionkitError), "NaN pixels must not pass as black"
    if not isinstance(result, VisionkitError):
        assert result.image_shape == image.shape[:2]


@fuzz(80)
@example(image=Image.new("RGB", (0, 18)), key="yolo")  # was ZeroDivisionError in the letterbox
@example(image=Image.new("1", (0, 0)), key="cls")  # was cv2.error in cvtColor
@example(image=Image.new("La", (5, 1)), key="ssd")  # was ValueError: conversion from La to RGB not supported
@given(image=pil_images(), key=st.sampled_from(sorted(MODELS)))
def test_any_pil_image(models: dict[str, Any], image: Image.Image, key: str) -> None:
    result = user_facing(models[key], image)
    if not isinstance(result, VisionkitError):
        assert result.image_shape == (image.height, image.width)


@fuzz(80)
@given(data=st.data(), suffix=st.sampled_from(IMAGE_SUFFIXES + VIDEO_SUFFIXES), key=st.sampled_from(sorted(MODELS)))
def test_image_and_video_files(models: dict[str, Any], samples: dict[str, Path], scratch: Path, data: st.DataObject,
                               suffix: str, key: str) -> None:
    real = samples[suffix].read_bytes()[:40_000]  # vtest.avi: its header and first frames are enough to corrupt
    path = write_unique(scratch, data.draw(file_bytes(real)), suffix)
    user_facing(first_frames, path)
    user_facing(first_results, models[key], path)
    if suffix in IMAGE_SUFFIXES:
        user_facing(models[key], path)


@fuzz(80)
@given(data=st.data(), suffix=st.sampled_from(MODEL_SUFFIXES),
       task=st.sampled_from(["detect", "classify", "pose", "segment", "track"]))
def test_model_files(samples: dict[str, Path], scratch: Path, data: st.DataObject, suffix: str, task: str) -> None:
    real = samples[suffix].read_bytes() if suffix != ".json" else b'{"model": "yolov5n", "task": "detect"}'
    path = write_unique(scratch, data.draw(file_bytes(real)), suffix)
    predictor = tolerating_known(visionkit.load, task, str(path), device="cpu")
    if not isinstance(predictor, Exception):
        tolerating_known(predictor.warmup)


def check_options(models: dict[str, Any], samples: dict[str, Path], key: str, options: dict[str, Any], call: str,
                  contract: Callable[..., Any] = tolerating_known) -> None:
    """Load ``key``'s model with ``options`` and run it on a photo, a list or a clip; everything through
    ``contract``."""
    task, name = MODELS[key]
    predictor = contract(visionkit.load, task, name, **{"device": "cpu", **options})
    if isinstance(predictor, Exception):
        return
    image = cv2.imread(str(samples[".jpg"]))
    if call == "one":
        contract(predictor, image)
    elif call == "list":
        contract(predictor, [image, image, samples[".png"]])
    else:
        contract(first_results, predictor, samples[".mp4"], 6)


@fuzz(150)
@example(key="track", options={"tracker_params": 5}, call="one")  # each was a TypeError, ValueError or
@example(key="track", options={"tracker_params": ["", "-q"]}, call="one")  # AttributeError from a bare conversion
@example(key="ssd", options={"device": float("nan")}, call="one")
@example(key="ssd", options={"device": 1}, call="one")
@example(key="ssd", options={"weights": [1]}, call="one")
@example(key="ssd", options={"weights": 5}, call="one")
@given(key=st.sampled_from(sorted(MODELS)), options=OPTIONS, call=st.sampled_from(["one", "list", "stream"]))
def test_option_values(models: dict[str, Any], samples: dict[str, Path], key: str, options: dict[str, Any],
                       call: str) -> None:
    check_options(models, samples, key, options, call)


@fuzz(150)
@given(task=st.one_of(st.sampled_from(["detect", "track", "classify", "pose", "segment", "action", "", "_runtime",
                                       "base", "../tasks", "tasks.detect"]), st.text(max_size=8), WEIRD),
       model=st.one_of(st.sampled_from(["ssd_mobilenet_v1_coco", "yolov5n", "mobilenet_v2_quant", "yolov5n.onnx",
                                        "nope", "nope.pt", ""]), WEIRD))
def test_load_any_task_and_model(task: Any, model: Any) -> None:
    user_facing(visionkit.load, task, model, device="cpu")
    user_facing(visionkit.available_models, task)
    user_facing(visionkit.list_models, task, model if isinstance(model, str) else None)


@fuzz(100)
@example(value=5)  # each was a bare AttributeError or TypeError from a lookup
@example(value=[1])
@example(value=b"x")
@given(value=st.one_of(WEIRD, st.binary(max_size=4), st.sampled_from(["*", "[", "yolo*", "detect", "pose"])))
def test_catalog_lookups(value: Any) -> None:
    user_facing(catalog.get_entry, value)
    user_facing(catalog.default_model, value)
    user_facing(visionkit.list_models, pattern=value)
    user_facing(visionkit.available_models, value)


@fuzz(150)
@example(data=None)  # each was a bare AttributeError, TypeError, KeyError or ValueError from the arrays
@example(data={"detections": [None]})
@example(data={"detections": [{"box": None, "score": 0.0, "class_id": 0, "class_name": ""}]})
@example(data={"detections": [{"box": [0, 0, 1, 1], "score": 1, "class_id": 0, "class_name": "a", "track_id": 1},
                              {"box": [0, 0, 1, 1], "score": 1, "class_id": 0, "class_name": "a"}]})
@example(data={"image_shape": [1, 2, 3]})
@example(data={"speed": [1]})
@given(data=RESULT_DICTS)
def test_detections_from_any_dict(data: Any) -> None:
    result = user_facing(Detections.from_dict, data)
    if isinstance(result, Detections):
        again = Detections.from_dict(result.to_dict())
        assert again.to_dict() == result.to_dict()


@fuzz(60)
@given(n=st.integers(0, 5), seed=st.integers(0, 2**32 - 1), tracked=st.booleans(), with_keypoints=st.booleans(),
       with_masks=st.booleans())
def test_detections_round_trip(n: int, seed: int, tracked: bool, with_keypoints: bool, with_masks: bool) -> None:
    """Whatever ``to_dict`` writes, ``from_dict`` reads back to the same record."""
    rng = np.random.default_rng(seed)
    xy = rng.random((n, 2)) * 100
    det = Detections(xyxy=np.hstack([xy, xy + rng.random((n, 2)) * 50]), scores=rng.random(n),
                     class_ids=rng.integers(0, 80, n), class_names=[f"c{i}" for i in range(n)],
                     track_ids=rng.integers(1, 99, n) if tracked else None,
                     keypoints=rng.random((n, 17, 3)) * 100 if with_keypoints else None,
                     masks=rng.random((n, 12, 16)) > 0.5 if with_masks else None, image_shape=(12, 16), frame_index=3)
    assert Detections.from_dict(det.to_dict()).to_dict() == det.to_dict()


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def check_source(samples: dict[str, Path], spec: str, contract: Callable[..., Any] = tolerating_known) -> None:
    with working_directory(samples[".jpg"].parent):  # relative specs and globs resolve among the small samples
        contract(first_frames, spec)


@fuzz(150)
@example(spec="a" * 300)  # OSError ENAMETOOLONG from is_dir()
@example(spec="~nosuchuser/x.jpg")  # RuntimeError from expanduser()
@example(spec="99999999999999999999")  # cv2.error: a camera index beyond a C int
@example(spec="\u00b3")  # '³' passed str.isdigit(), then int() raised ValueError
@example(spec="two\nlines.jpg")  # a two-line message
@given(spec=SOURCE_TEXT)
def test_open_source_any_string(samples: dict[str, Path], spec: str) -> None:
    check_source(samples, spec)


# -- CLI property ------------------------------------------------------------------------------------------
NUMBERS = st.sampled_from(["0", "1", "-1", "0.5", "2", "640", "nan", "inf", "-inf", "1e309", "abc", "", "0,1", ",",
                           "1,,2", "3.7", "99999999999999999999", "0x10", "--", "-"])
FLAGS = {  # option -> strategy of its value (None: a flag without a value)
    "--model": st.sampled_from(["ssd_mobilenet_v1_coco", "yolov5n", "mobilenet_v2_quant", "nope", "nope.onnx"]),
    "--weights": st.sampled_from(["nope.pth", "/dev/null"]), "--device": st.sampled_from(["cpu", "auto", "cuda",
                                                                                          "cuda:9", "tpu", ""]),
    "--runtime": st.sampled_from(["torch", "onnx", "tflite"]), "--batch": NUMBERS, "--workers": NUMBERS,
    "--conf": NUMBERS, "--iou": NUMBERS, "--imgsz": NUMBERS, "--max-det": NUMBERS, "--classes": NUMBERS,
    "--topk": NUMBERS, "--window": NUMBERS, "--stride": NUMBERS, "--tracker": st.sampled_from(["bytetrack",
                                                                                             "botsort", "sort"]),
    "--track-buffer": NUMBERS, "--trails": NUMBERS, "--quiet": None, "--task": st.sampled_from(
        ["detect", "pose", "nope"]), "--json": st.sampled_from(["OUT/r.jsonl", "OUT", "/proc/nope/r.json"]),
    "--save": st.sampled_from(["OUT/save", "/proc/nope"]), "--coco": st.just("OUT/coco.json"),
    "--mot": st.just("OUT/mot.txt"), "--output": st.just("OUT/model.onnx"), "--images": st.just("IN"),
    "--annotations": st.sampled_from(["IN/small.jpg", "nope.json"]), "--labels": st.just("nope.csv"),
    "--gt": st.just("IN"), "--camvid": st.just("IN"), "--detector": st.sampled_from(["yolov5n", "nope"]),
}
COMMANDS = [["detect"], ["track"], ["classify"], ["pose"], ["segment"], ["action"], ["models"], ["export"],
            ["eval", "detect"], ["eval", "classify"], ["eval", "pose"], ["eval", "segment"], ["eval", "track"],
            ["nope"], []]
SOURCES = st.sampled_from(["IN/small.jpg", "IN/small.png", "IN/clip.mp4", "IN", "IN/*.jpg", "nope.jpg",
                           "IN/garbage.jpg", "IN/garbage.mp4", "ssd_mobilenet_v1_coco", "yolov5n", "", "³",
                           "99999999999999999999", "a" * 300])


PLAUSIBLE = {"detect": ["ssd_mobilenet_v1_coco", "yolov5n"], "track": ["ssd_mobilenet_v1_coco", "yolov5n"],
             "classify": ["mobilenet_v2_quant"]}


@st.composite
def cli_argvs(draw: st.DrawFn, inputs: Path, outputs: Path) -> list[str]:
    """Half the time a run that gets going (a task, a model it takes, a real input) and then odd options; else any
    command, source and options; now and then all of it shuffled."""
    if draw(st.booleans()):
        task = draw(st.sampled_from(sorted(PLAUSIBLE)))
        argv = [task, draw(st.sampled_from(["IN/small.jpg", "IN/clip.mp4", "IN"])), "--model",
                draw(st.sampled_from(PLAUSIBLE[task])), "--device", "cpu", "--quiet"]
    else:
        argv = list(draw(st.sampled_from(COMMANDS)))
        if draw(st.booleans()):
            argv.append(draw(SOURCES))
    for flag in draw(st.lists(st.sampled_from(sorted(FLAGS)), max_size=4, unique=True)):
        values = FLAGS[flag]
        argv += [flag] if values is None else [flag, draw(values)]
    argv = [a.replace("IN", str(inputs)).replace("OUT", str(outputs)) for a in argv]
    return draw(st.permutations(argv)) if draw(st.integers(0, 9)) == 0 else argv


@pytest.fixture(scope="module")
def cli_inputs(samples: dict[str, Path]) -> Path:
    folder = samples[".jpg"].parent
    (folder / "garbage.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (folder / "garbage.mp4").write_bytes(os.urandom(512))
    return folder


@fuzz(80)
@given(data=st.data())
def test_cli_argument_lists(cli_inputs: Path, scratch: Path, data: st.DataObject) -> None:
    outputs = scratch / f"cli-{data.draw(st.integers(0, 10**9))}"
    assert_cli_contract(data.draw(cli_argvs(cli_inputs, outputs)))


# -- known bugs are pinned by xfail(strict) tests until fixed (XPASS is an error), then kept as regressions --
def pinned(bug: KnownBug) -> Callable[[Callable[..., Any]], Any]:
    """Run only the ``@example``s of a test and expect it to fail with ``bug``."""
    def wrap(test: Callable[..., Any]) -> Any:
        explicit = settings(_BASE, phases=[Phase.explicit], max_examples=1)(test)
        return pytest.mark.xfail(strict=True, reason=f"{bug.file} {bug.function}: {bug.what}")(explicit)
    return wrap


# Bugs the fuzzer found and that are fixed: their examples stay as plain regression tests.
regression = settings(_BASE, phases=[Phase.explicit], max_examples=1)


def strict(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return user_facing(fn, *args, **kwargs)


@regression
@example(options={"batch_size": ""})
@example(options={"batch_size": None})
@example(options={"batch_size": float("inf")})
@given(options=OPTIONS)
def test_regression_batch_size_type(models: dict[str, Any], samples: dict[str, Path], options: dict[str, Any]) -> None:
    check_options(models, samples, "ssd", options, "one", strict)


@regression
@example(options={"batch_size": 2**63})
@given(options=OPTIONS)
def test_regression_batch_size_range(models: dict[str, Any], samples: dict[str, Path], options: dict[str, Any]) -> None:
    check_options(models, samples, "ssd", options, "stream", strict)


@regression
@example(options={"workers": "abc"})
@example(options={"workers": {}})
@example(options={"workers": float("inf")})
@given(options=OPTIONS)
def test_regression_workers_type(models: dict[str, Any], samples: dict[str, Path], options: dict[str, Any]) -> None:
    check_options(models, samples, "yolo", options, "one", strict)


@regression
@example(options={"conf": "abc"})
@example(options={"iou": {}})
@given(options=OPTIONS)
def test_regression_threshold_type(models: dict[str, Any], samples: dict[str, Path], options: dict[str, Any]) -> None:
    check_options(models, samples, "yolo", options, "one", strict)


@regression
@example(options={"multi_label": ""})
@example(options={"max_det": "10"})
@given(options=OPTIONS)
def test_regression_unchecked_option_types(models: dict[str, Any], samples: dict[str, Path],
                                          options: dict[str, Any]) -> None:
    check_options(models, samples, "yolo", options, "one", strict)


@regression
@example(options={"conf": "0"})
@given(options=OPTIONS)
def test_regression_threshold_as_string(models: dict[str, Any], samples: dict[str, Path],
                                       options: dict[str, Any]) -> None:
    check_options(models, samples, "ssd", options, "one", strict)
