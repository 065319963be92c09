"""Heat maps of track-centre occupancy (visionkit.heatmap): counts on PETS09-S2L1's ground-truth tracks checked
against a histogram computed here, rendering and blending, refusals, the sink's one-or-many PNG outputs.

Data: ../shared/data/tracking (PETS09-S2L1 gt and img1).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from test_track import PETS, _gt, _gt_detections, _shape

from visionkit.errors import OptionError, SinkError
from visionkit.heatmap import Heatmap, HeatmapSink
from visionkit.io.sinks import OutputGuard
from visionkit.io.sources import Frame


def _gt_tracks(gt: np.ndarray, frame: int, shape: tuple[int, int]):
    detections = _gt_detections(gt, frame, shape)
    return detections.with_(track_ids=gt[gt[:, 0] == frame][:, 1].astype(np.int64))


@pytest.mark.parametrize("cell, anchor", [(4, "center"), (8, "bottom"), (1, "center")])
def test_counts_ground_truth_occupancy(shared_data: Path, cell: int, anchor: str) -> None:
    """PETS09-S2L1's 300 frames of ground-truth tracks: each cell holds the number of track-frames whose anchor
    lies in it (a 2-D histogram of the anchors computed here), so the total is the number of gt boxes."""
    seq = shared_data / "tracking" / PETS
    gt, shape = _gt(seq, 300), _shape(seq)
    heat = Heatmap(cell=cell, anchor=anchor)
    for frame in range(1, 301):
        heat.update(_gt_tracks(gt, frame, shape), shape)
    x = gt[:, 2] + gt[:, 4] / 2
    y = gt[:, 3] + (gt[:, 5] if anchor == "bottom" else gt[:, 5] / 2)
    rows = np.clip((y // cell).astype(int), 0, heat.counts.shape[0] - 1)
    cols = np.clip((x // cell).astype(int), 0, heat.counts.shape[1] - 1)
    expected = np.zeros_like(heat.counts)
    np.add.at(expected, (rows, cols), 1)
    assert heat.frames == 300 and heat.counts.sum() == len(gt) > 1000
    np.testing.assert_array_equal(heat.counts, expected)
    density = heat.density()
    assert density.shape == shape and density.max() == pytest.approx(1.0)
    hot = np.unravel_index(np.argmax(density), shape)
    assert heat.counts[hot[0] // cell, hot[1] // cell] > 0 or cell == 1  # the peak sits where tracks were


def test_render_and_annotate(shared_data: Path) -> None:
    """The colour map is frame-sized; blending leaves pixels far from every track as they were and tints the
    busiest place; a heat map with no tracks yet draws nothing."""
    seq = shared_data / "tracking" / PETS
    gt, shape = _gt(seq, 50), _shape(seq)
    image = cv2.imread(str(seq / "img1" / "000050.jpg"))
    heat = Heatmap()
    heat.update(_gt_tracks(gt, 1, shape)[:0], shape)
    assert np.array_equal(heat.annotate(image.copy()), image)
    for frame in range(1, 51):
        heat.update(_gt_tracks(gt, frame, shape), shape)
    assert heat.render().shape == (*shape, 3)
    drawn = heat.annotate(image.copy())
    cold = heat.density() == 0
    assert cold.mean() > 0.5 and np.array_equal(drawn[cold], image[cold])
    peak = np.unravel_index(np.argmax(heat.density()), shape)
    assert not np.array_equal(drawn[peak], image[peak])


def test_refusals(shared_data: Path) -> None:
    seq = shared_data / "tracking" / PETS
    gt, shape = _gt(seq, 2), _shape(seq)
    heat = Heatmap()
    with pytest.raises(OptionError, match="need track ids"):
        heat.update(_gt_detections(gt, 1, shape), shape)
    heat.update(_gt_tracks(gt, 1, shape), shape)
    with pytest.raises(ValueError, match="one stream: frame size 480x360 after 768x576"):
        heat.update(_gt_tracks(gt, 2, (360, 480)), (360, 480))
    with pytest.raises(ValueError, match="anchor must be one of"):
        Heatmap(anchor="top")
    with pytest.raises(ValueError, match="the heat map has seen no frame"):
        Heatmap().render()


def test_sink_file_and_folder(shared_data: Path, tmp_path: Path) -> None:
    """A .png path is one sequence (a second one is a SinkError naming the fix); a folder gets <stream>.png per
    video, each the heat map over that stream's last frame."""
    seq = shared_data / "tracking" / PETS
    gt, shape = _gt(seq, 5), _shape(seq)
    image = cv2.imread(str(seq / "img1" / "000005.jpg"))

    def frames(name: str):
        return [(Frame(image, name, i, is_video=True), _gt_tracks(gt, i + 1, shape)) for i in range(5)]

    folder = HeatmapSink(tmp_path / "heat", OutputGuard())
    for frame, tracked in frames("a.mp4") + frames("b.mp4"):
        folder.write(frame, tracked)
    folder.close()
    assert sorted(p.name for p in (tmp_path / "heat").iterdir()) == ["a.png", "b.png"]
    written = cv2.imread(str(tmp_path / "heat" / "a.png"))
    assert written.shape == image.shape and not np.array_equal(written, image)
    single = HeatmapSink(tmp_path / "one.png", OutputGuard())
    for frame, tracked in frames("a.mp4"):
        single.write(frame, tracked)
    with pytest.raises(SinkError, match="give a folder"):
        single.write(*frames("b.mp4")[0])
    single.close()
    assert cv2.imread(str(tmp_path / "one.png")).shape == image.shape


def test_heatmap_of_a_tracked_stream(shared_data: Path, tmp_path: Path) -> None:
    """``visionkit.heatmap_of(tracking.stream(...))``: a real tracker on 12 PETS09 frames; the counts total the
    tracked boxes it yielded, and ``save`` writes them over the last frame."""
    import visionkit

    images = sorted((shared_data / "tracking" / PETS / "img1").iterdir())[:12]
    tracking = visionkit.load("track", "ssd_mobilenet_v1_coco", device="cpu", classes=[1])
    seen: list[int] = []

    def counted():
        for frame, tracked in tracking.stream(images):
            seen.append(len(tracked))
            yield frame, tracked

    heat = visionkit.heatmap_of(counted(), cell=8)
    assert heat.frames == 12 and heat.counts.sum() == sum(seen) > 0
    written = cv2.imread(str(heat.save(tmp_path / "heat.png")))
    assert written.shape == cv2.imread(str(images[-1])).shape


def test_cli_one_source(shared_data: Path, tmp_path: Path) -> None:
    """`visionkit track CLIP --heatmap heat.png --save out`: the PNG is written, frame-sized, and the annotated video
    shows the heat (its last frame differs from the same run without --heatmap)."""
    from test_multistream import _clip

    from visionkit.cli import main

    clip = _clip(shared_data / "tracking", tmp_path / "hall.avi", frames=12)
    run = ["track", str(clip), "--model", "ssd_mobilenet_v1_coco", "--classes", "1", "--quiet"]
    assert main([*run, "--save", str(tmp_path / "plain")]) == 0
    assert main([*run, "--save", str(tmp_path / "heat"), "--heatmap", str(tmp_path / "heat.png")]) == 0
    assert cv2.imread(str(tmp_path / "heat.png")).shape == (360, 480, 3)

    def last(path: Path) -> np.ndarray:
        cap = cv2.VideoCapture(str(path))
        frames = [image for ok, image in iter(cap.read, (False, None)) if ok]
        return frames[-1]

    assert not np.array_equal(last(tmp_path / "plain" / "hall.mp4"), last(tmp_path / "heat" / "hall.mp4"))
