"""Action recognition: torchvision video classifiers over a sliding window, proven by parity and on a real clip.

No official Kinetics-400 weights exist here, so each architecture is built by torchvision with seeded random weights
(the classifier re-initialised wider, so top-k scores are well apart) and visionkit must give exactly what
``softmax(model(weights_enum.transforms()(clip)))`` gives on the same frames. The real UCF101 clip
(shared/data/action, 141 frames, 320x240) goes end to end through the CLI.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
import torchvision
from random_models import random_video_classifier as random_weights

import visionkit
from visionkit import catalog
from visionkit.cli import main
from visionkit.composites.action import ActionPredictor
from visionkit.errors import OptionError, WeightsError

ENTRIES = catalog.list_models("action")
CLIP = "action/v_Basketball_g01_c01.avi"
CLIP_FRAMES = 141
KINETICS = catalog.load_class_names("kinetics400")


def reference(arch: str, weights: Path, frames: list[np.ndarray], top_k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """torchvision's own pipeline: RGB (T, C, H, W) uint8 -> weights_enum.transforms() -> model -> softmax -> top-k."""
    enum_member = torchvision.models.get_weight(catalog.get_entry(arch).extra["weights_enum"])
    model = torchvision.models.get_model(arch, weights=None)
    model.load_state_dict(torch.load(weights, weights_only=True))
    clip = torch.from_numpy(np.stack([f[..., ::-1] for f in frames]).copy()).permute(0, 3, 1, 2)
    with torch.inference_mode():
        probs = model.eval()(enum_member.transforms()(clip)[None]).softmax(1)[0].numpy()
    order = np.argsort(-probs)[:top_k]
    return order, probs[order]


@pytest.fixture(scope="module")
def clip_path(shared_data: Path) -> Path:
    return shared_data / CLIP


@pytest.fixture(scope="module")
def frames(clip_path: Path) -> list[np.ndarray]:
    """The first 24 frames of the real clip, BGR."""
    cap = cv2.VideoCapture(str(clip_path))
    out = [cap.read()[1] for _ in range(24)]
    cap.release()
    assert all(f is not None and f.shape == (240, 320, 3) for f in out)
    return out


@pytest.fixture(scope="module")
def r3d_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_weights("r3d_18", tmp_path_factory.mktemp("action") / "r3d_18_random.pth")


@pytest.fixture(scope="module")
def r3d(r3d_weights: Path) -> ActionPredictor:
    return visionkit.load("action", "r3d_18", weights=r3d_weights, device="cpu")


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_catalog_matches_the_torchvision_enum(entry: catalog.ModelEntry) -> None:
    enum_member = torchvision.models.get_weight(entry.extra["weights_enum"])
    assert entry.url == enum_member.url and entry.file == enum_member.url.rsplit("/", 1)[-1]
    published = enum_member.meta["_metrics"]["Kinetics-400"]
    assert entry.metrics["Kinetics-400-val"] == {"top1": published["acc@1"], "top5": published["acc@5"]}
    clip_len = int(re.search(r"clip_len=(\d+)", enum_member.meta["_docs"]).group(1))
    assert entry.defaults["window"] == clip_len, "the default window is the clip length the accuracy was measured at"
    assert entry.input_size == enum_member.transforms().crop_size[0]
    assert entry.class_names == list(enum_member.meta["categories"])


def test_default_model_and_load_returns_an_action_predictor() -> None:
    predictor = visionkit.load("action")
    assert isinstance(predictor, ActionPredictor)
    assert predictor.entry.name == catalog.default_model("action").name == "r2plus1d_18"
    assert (predictor.window, predictor.stride, predictor.options["top_k"]) == (16, 8, 5)
    copy = pickle.loads(pickle.dumps(predictor))  # picklable before the model is built, like every Predictor
    assert (copy.window, copy.stride) == (16, 8)


@pytest.mark.parametrize(
    ("arch", "n_frames", "options", "windows"),
    [
        ("r3d_18", 24, {"window": 16, "stride": 8}, [(0, 15), (8, 23)]),  # overlapping windows: frames reused
        ("s3d", 10, {"window": 16}, [(0, 9)]),  # shorter than the window: frames repeated evenly up to 16
        ("mvit_v2_s", 20, {"window": 20}, [(0, 19)]),  # MViT takes exactly 16 frames: 20 sampled evenly down to 16
    ],
)
def test_parity_with_torchvision(arch: str, n_frames: int, options: dict[str, int], windows: list[tuple[int, int]],
                                 frames: list[np.ndarray], tmp_path: Path) -> None:
    weights = random_weights(arch, tmp_path / f"{arch}.pth")
    predictor = visionkit.load("action", arch, weights=weights, device="cpu", **options)
    predictions = predictor(frames[:n_frames])
    assert [(p.start_frame, p.end_frame) for p in predictions] == windows
    length = 16 if arch == "mvit_v2_s" else max(options["window"], 14 if arch == "s3d" else 1)
    for p in predictions:
        window = frames[p.start_frame:p.end_frame + 1]
        sampled = [window[i] for i in np.linspace(0, len(window) - 1, length).round().astype(int)]
        ids, scores = reference(arch, weights, sampled)
        assert np.array_equal(p.class_ids, ids), (p.class_names, [KINETICS[i] for i in ids])
        np.testing.assert_allclose(p.scores, scores, rtol=1e-5, atol=1e-7)
        assert np.all(np.diff(scores) < -1e-6), "top-k scores must be apart beyond float noise for ids to be compared"
        assert p.speed.inference > 0 and p.image_shape == (240, 320)


def test_cli_end_to_end_on_the_ucf101_clip(clip_path: Path, r3d_weights: Path, tmp_path: Path) -> None:
    out, jsonl = tmp_path / "out", tmp_path / "actions.jsonl"
    code = main(["action", str(clip_path), "--model", "r3d_18", "--weights", str(r3d_weights), "--device", "cpu",
                 "--stride", "16", "--save", str(out), "--json", str(jsonl), "--quiet"])
    assert code == 0
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["frame_index"] for r in records] == list(range(CLIP_FRAMES))
    # window 16 (r3d_18's clip length), stride 16: 8 windows ending at 15, 31, ..., 127; each frame shows the latest
    # one ended at or before it, the first 15 frames the first one, frames 128-140 the last one
    ends = list(range(15, CLIP_FRAMES, 16))
    assert len(ends) == 1 + (CLIP_FRAMES - 16) // 16
    for r in records:
        expected_end = max([e for e in ends if e <= r["frame_index"]], default=ends[0])
        assert (r["start_frame"], r["end_frame"]) == (expected_end - 15, expected_end), r["frame_index"]
        assert r["type"] == "action" and r["model"] == "r3d_18" and len(r["top"]) == 5
        assert all(t["class_name"] == KINETICS[t["class_id"]] for t in r["top"])
    timed = [r["frame_index"] for r in records if r["speed"]["inference"] > 0]
    assert timed == ends, "only the frame completing a window carries its timings"

    cap = cv2.VideoCapture(str(out / "v_Basketball_g01_c01.mp4"))
    source = cv2.VideoCapture(str(clip_path))
    annotated = 0
    while True:
        ok, image = cap.read()
        ok_src, original = source.read()
        if not ok:
            break
        assert ok_src and image.shape == original.shape
        # the label panel (darkened, white text) changes the top-left corner of every frame; the rest is the video
        # as it was, up to the codec's noise (measured: ~38 grey levels on the panel, ~2 elsewhere)
        diff = np.abs(image.astype(np.int16) - original.astype(np.int16))
        assert diff[:60, :100].mean() > 15 and diff[120:, 160:].mean() < 6
        annotated += 1
    assert annotated == CLIP_FRAMES


def test_a_clip_shorter_than_the_window_is_padded(r3d: ActionPredictor, frames: list[np.ndarray]) -> None:
    (only,) = r3d(frames[:5])
    assert (only.start_frame, only.end_frame) == (0, 4)
    streamed = list(r3d.stream(frames[:5]))
    assert [f.index for f, _ in streamed] == [0, 1, 2, 3, 4]
    assert all((p.start_frame, p.end_frame) == (0, 4) and p.class_ids.tolist() == only.class_ids.tolist()
               for _, p in streamed)
    assert [p.speed.inference > 0 for _, p in streamed] == [False] * 4 + [True]
    assert [p.frame_index for _, p in streamed] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("shape", [(8, 8, 3), (6000, 8000, 3), (240, 320)])
def test_extreme_and_odd_images_are_one_frame_clips(r3d: ActionPredictor, shape: tuple[int, ...]) -> None:
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    (prediction,) = r3d(image)
    assert (prediction.start_frame, prediction.end_frame) == (0, 0) and len(prediction) == 5
    assert prediction.image_shape == shape[:2]


@pytest.mark.parametrize(
    ("window", "stride", "n_frames", "ends"),
    [
        (8, 3, 20, [7, 10, 13, 16, 19]),  # 1 + (20 - 8) // 3 runs
        (4, 6, 20, [3, 9, 15]),  # stride longer than the window: frames in between are never classified
        (None, None, 20, [15]),  # the model's clip length (16) and half of it: one window fits
    ],
)
def test_window_and_stride_set_the_model_runs(r3d_weights: Path, frames: list[np.ndarray], window: int | None,
                                              stride: int | None, n_frames: int, ends: list[int],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    predictor = visionkit.load("action", "r3d_18", weights=r3d_weights, device="cpu", window=window, stride=stride)
    forward = predictor.backend.forward
    lengths: list[int] = []

    def counting(batch: Any) -> Any:
        lengths.append(batch.shape[2])
        return forward(batch)

    monkeypatch.setattr(predictor.backend, "forward", counting)
    labelled = list(predictor.stream(frames[:n_frames]))
    assert len(lengths) == len(ends) and set(lengths) == {window or 16}
    assert sorted({p.end_frame for _, p in labelled}) == ends
    assert all(p.end_frame - p.start_frame + 1 == (window or 16) for _, p in labelled)
    assert len(labelled) == n_frames


def test_each_video_starts_its_own_window(r3d: ActionPredictor, frames: list[np.ndarray], tmp_path: Path) -> None:
    videos = []
    for name, part in (("a", frames[:6]), ("b", frames[6:13])):
        path = tmp_path / f"{name}.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (320, 240))
        for f in part:
            writer.write(f)
        writer.release()
        videos.append(str(path))
    labelled = [(Path(f.source).stem, f.index, p.start_frame, p.end_frame) for f, p in r3d.stream(videos)]
    assert labelled == [("a", i, 0, 5) for i in range(6)] + [("b", i, 0, 6) for i in range(7)]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"window": 0}, "window must be a positive integer, got 0"),
        ({"stride": -2}, "stride must be a positive integer, got -2"),
        ({"top_k": 0}, "top_k must be a positive integer, got 0"),
        ({"batch_size": 2}, "one clip per forward pass: batch size must be 1, got 2"),
        ({"conf": 0.5}, "unknown option"),
    ],
)
def test_bad_options_raise_before_loading(options: dict[str, Any], message: str) -> None:
    with pytest.raises(OptionError, match=re.escape(message)):
        visionkit.load("action", "r3d_18", **options)


def test_stream_takes_the_predictor_reconnect_setting(r3d_weights: Path, caplog: pytest.LogCaptureFixture) -> None:
    """``load("action", ..., reconnect=0)``: a stream that drops ends with a warning (not 5 reopen attempts over
    15 s and then a SourceError, as when the setting did not reach ``open_source``)."""
    from mjpeg_server import MjpegServer

    predictor = visionkit.load("action", "r3d_18", weights=r3d_weights, device="cpu", window=4, reconnect=0)
    with MjpegServer([np.full((48, 64, 3), 50, np.uint8)], fps=20) as server:
        server.stop_after(6)
        with caplog.at_level("WARNING", logger="visionkit"):
            labelled = list(predictor.stream(server.url))
    assert 1 <= len(labelled) <= 6  # a live source keeps only the newest frame: some may be skipped
    messages = [r.getMessage() for r in caplog.records]
    ended = rf"{re.escape(server.url)}: stream ended after \d frames"
    assert len(messages) == 1 and re.fullmatch(ended, messages[0]), messages


def test_missing_weights_offline_is_a_clear_error(frames: list[np.ndarray]) -> None:
    with pytest.raises(WeightsError, match=r"r3d_18-b3b3357e\.pth not found locally and VISIONKIT_OFFLINE is set"):
        visionkit.load("action", "r3d_18", device="cpu")(frames[:2])
