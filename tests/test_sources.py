"""visionkit.io.sources / images: every accepted input kind, and a clear one-line SourceError for bad ones."""

from __future__ import annotations

from contextlib import nullcontext as does_not_raise
from pathlib import Path

import cv2
import numpy as np
import pytest
from clip_helpers import make_clip, synthetic_clip, truncated_copy, write_png
from PIL import Image

from visionkit.errors import SourceError
from visionkit.io.images import read_image, to_bgr
from visionkit.io.sources import ArraySource, Frame, MultiSource, VideoSource, open_source


@pytest.fixture(scope="module")
def coco_jpg(shared_data: Path) -> Path:
    return sorted((shared_data / "coco_val2017" / "images").glob("*.jpg"))[0]


@pytest.fixture(scope="module")
def clip(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20-frame 480x360 10 fps clip cut from vtest.avi."""
    return make_clip(shared_data / "tracking/demo/vtest.avi", tmp_path_factory.mktemp("clip") / "clip.avi", 20)


def frames_of(spec, **kwargs) -> list[Frame]:
    return list(open_source(spec, **kwargs))


# -- good inputs ------------------------------------------------------------------------------------------
def test_image_file(coco_jpg: Path) -> None:
    source = open_source(coco_jpg)
    assert len(source) == 1
    (frame,) = list(source)
    expected = cv2.imread(str(coco_jpg))
    np.testing.assert_array_equal(frame.image, expected)
    assert frame.image.dtype == np.uint8 and frame.image.ndim == 3
    assert frame.index == 0 and not frame.is_video and frame.timestamp is None
    assert frame.source == str(coco_jpg) and frame.name == coco_jpg.name


def test_non_ascii_path(tmp_path: Path, coco_jpg: Path) -> None:
    target = tmp_path / "fotos été" / "bild_ü.jpg"
    target.parent.mkdir()
    target.write_bytes(coco_jpg.read_bytes())
    (frame,) = frames_of(str(target))
    assert frame.image.shape == cv2.imread(str(coco_jpg)).shape


@pytest.mark.parametrize(
    ("name", "pixels", "expected_bgr"),
    [
        ("gray.png", np.full((8, 8), 77, np.uint8), (77, 77, 77)),
        ("rgba.png", np.dstack([np.full((9, 7, 3), (10, 20, 30), np.uint8), np.full((9, 7), 128, np.uint8)]),
         (10, 20, 30)),
        ("deep.png", np.full((6, 5, 3), (65535, 0, 32896), np.uint16), (255, 0, 128)),
        ("gray16.png", np.full((4, 4), 65535, np.uint16), (255, 255, 255)),
        ("tiny.png", np.full((8, 8, 3), (1, 2, 3), np.uint8), (1, 2, 3)),
        ("tiny.bmp", np.full((8, 8, 3), (200, 100, 0), np.uint8), (200, 100, 0)),
    ],
)
def test_image_layouts_become_bgr_uint8(tmp_path: Path, name: str, pixels: np.ndarray, expected_bgr) -> None:
    path = write_png(tmp_path / name, pixels)
    (frame,) = frames_of(path)
    assert frame.image.dtype == np.uint8
    assert frame.image.shape == (*pixels.shape[:2], 3)
    np.testing.assert_allclose(frame.image.reshape(-1, 3).mean(0), expected_bgr, atol=1)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    rgb = np.zeros((20, 40, 3), np.uint8)
    rgb[:, :20] = (255, 0, 0)  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rotated.jpg"
    Image.fromarray(rgb).save(path, exif=exif.tobytes(), quality=95)
    image = read_image(path)
    assert image.shape == (40, 20, 3)  # displayed upright: portrait
    assert image[5, 10, 2] > 200 and image[35, 10, 2] < 50  # red (BGR channel 2) is now on top


def test_video_file(clip: Path) -> None:
    source = open_source(clip)
    assert isinstance(source, VideoSource) and not source.live
    assert len(source) == 20 and source.fps == pytest.approx(10.0) and source.size == (480, 360)
    frames = list(source)
    assert len(frames) == 20
    assert [f.index for f in frames] == list(range(20))
    assert all(f.is_video and f.fps == pytest.approx(10.0) and f.image.shape == (360, 480, 3) for f in frames)
    np.testing.assert_allclose([f.timestamp for f in frames], np.arange(20) / 10.0, atol=1e-3)
    assert frames[0].name == "clip.avi"


def test_video_frames_are_decoded_in_order(tmp_path: Path) -> None:
    path = synthetic_clip(tmp_path / "grey.avi", frames=6)
    levels = [int(round(f.image.mean())) for f in frames_of(path)]
    np.testing.assert_allclose(levels, [10 * i for i in range(6)], atol=3)


def test_directory_sorted_mixed_images_and_video(tmp_path: Path, coco_jpg: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    write_png(folder / "b.png", np.full((10, 10, 3), 50, np.uint8))
    (folder / "a.jpg").write_bytes(coco_jpg.read_bytes())
    synthetic_clip(folder / "c.avi", frames=4)
    write_png(folder / "d.png", np.full((12, 10), 99, np.uint8))
    (folder / "notes.txt").write_text("not an input")
    (folder / "sub").mkdir()
    write_png(folder / "sub" / "e.png", np.zeros((4, 4, 3), np.uint8))  # not recursive
    source = open_source(folder)
    assert isinstance(source, MultiSource) and source.name == str(folder)
    assert len(source) == 1 + 1 + 4 + 1
    frames = list(source)
    assert [f.name for f in frames] == ["a.jpg", "b.png"] + ["c.avi"] * 4 + ["d.png"]
    assert [f.is_video for f in frames] == [False, False, True, True, True, True, False]
    assert [f.index for f in frames] == [0, 1, 0, 1, 2, 3, 3]  # stills by sorted position, video by frame
    assert frames[-1].image.shape == (12, 10, 3)


def test_glob(tmp_path: Path) -> None:
    for name in ("x2.png", "x1.png", "y.png"):
        write_png(tmp_path / name, np.zeros((5, 5, 3), np.uint8))
    frames = frames_of(str(tmp_path / "x*.png"))
    assert [f.name for f in frames] == ["x1.png", "x2.png"]
    assert [f.index for f in frames] == [0, 1]


def test_list_of_mixed_inputs(tmp_path: Path, coco_jpg: Path) -> None:
    array = np.full((6, 7, 3), (1, 2, 3), np.uint8)
    pil = Image.new("RGB", (9, 4), (255, 0, 0))
    frames = frames_of([coco_jpg, array, pil, str(coco_jpg)])
    assert len(frames) == 4
    assert frames[0].name == coco_jpg.name and frames[3].name == coco_jpg.name
    np.testing.assert_array_equal(frames[1].image, array)
    assert frames[2].image.shape == (4, 9, 3) and tuple(frames[2].image[0, 0]) == (0, 0, 255)  # RGB -> BGR


def test_numpy_array_is_taken_as_bgr() -> None:
    array = np.random.default_rng(0).integers(0, 255, (10, 12, 3), dtype=np.uint8)
    source = open_source(array)
    assert isinstance(source, ArraySource) and len(source) == 1
    (frame,) = list(source)
    np.testing.assert_array_equal(frame.image, array)
    assert frame.source == "array" and not frame.is_video


@pytest.mark.parametrize(
    ("mode", "fill", "expected"),
    [
        ("RGB", (10, 20, 30), (30, 20, 10)),  # PIL is RGB: it comes out as BGR
        ("L", 90, (90, 90, 90)),
        ("RGBA", (10, 20, 30, 0), (30, 20, 10)),
        ("P", 0, (0, 0, 0)),
        ("I;16", 32896, (128, 128, 128)),  # 16-bit gray (what PIL opens a 16-bit PNG as) scales like numpy's
        ("I", 65535, (255, 255, 255)),
    ],
)
def test_pil_image_modes(mode: str, fill, expected) -> None:
    (frame,) = frames_of(Image.new(mode, (3, 2), fill))
    assert frame.image.shape == (2, 3, 3) and frame.image.dtype == np.uint8
    assert tuple(frame.image[1, 2]) == expected


def test_pil_16bit_png_matches_opencv(tmp_path: Path) -> None:
    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    path = write_png(tmp_path / "ramp16.png", ramp)
    with Image.open(path) as pil:
        via_pil = to_bgr(pil)
    np.testing.assert_allclose(via_pil.astype(int), read_image(path).astype(int), atol=1)
    assert len(np.unique(via_pil)) > 32  # not saturated to white


@pytest.mark.parametrize(
    ("array", "expected", "value"),
    [
        (np.full((4, 5), 33, np.uint8), does_not_raise(), (33, 33, 33)),
        (np.full((4, 5, 1), 33, np.uint8), does_not_raise(), (33, 33, 33)),
        (np.full((4, 5, 4), 200, np.uint8), does_not_raise(), (200, 200, 200)),
        (np.full((4, 5, 3), 65535, np.uint16), does_not_raise(), (255, 255, 255)),
        (np.full((4, 5, 3), 0.5, np.float32), does_not_raise(), (128, 128, 128)),
        (np.full((4, 5, 3), 7.0, np.float64), does_not_raise(), (255, 255, 255)),  # clipped to 1.0
        (np.zeros((0, 5, 3), np.uint8), pytest.raises(SourceError, match=r"expected an \(H, W\)"), None),
        (np.zeros((2, 2, 2, 3), np.uint8), pytest.raises(SourceError, match="got shape"), None),
        (np.zeros((4, 5, 3), np.int32), pytest.raises(SourceError, match="unsupported pixel type int32"), None),
        (np.zeros((4, 5, 5), np.uint8), pytest.raises(SourceError, match="expected 1, 3 or 4 channels, got 5"), None),
        ({"not": "an image"}, pytest.raises(SourceError, match="unsupported input type dict"), None),
    ],
)
def test_in_memory_images(array, expected, value) -> None:
    with expected:
        image = to_bgr(array)
    if value is not None:
        assert image.dtype == np.uint8 and image.shape == (4, 5, 3) and image.flags.c_contiguous
        assert tuple(image[0, 0]) == value
    with expected:
        (frame,) = frames_of(array)  # the same through open_source
    if value is not None:
        np.testing.assert_array_equal(frame.image, image)


def test_unknown_suffix_is_sniffed(tmp_path: Path, clip: Path) -> None:
    image = write_png(tmp_path / "x.png", np.full((5, 6, 3), 40, np.uint8))
    disguised = tmp_path / "picture.data"
    disguised.write_bytes(image.read_bytes())
    (frame,) = frames_of(disguised)
    assert frame.image.shape == (5, 6, 3)
    video = tmp_path / "movie.data"
    video.write_bytes(clip.read_bytes())
    frames = frames_of(video)
    assert len(frames) == 20 and frames[0].is_video


# -- bad inputs -------------------------------------------------------------------------------------------
def _bad_inputs(tmp: Path, coco_jpg: Path, clip: Path) -> dict[str, tuple[str, str]]:
    """name -> (spec, expected message part)."""
    (tmp / "zero.jpg").write_bytes(b"")
    (tmp / "zero.mp4").write_bytes(b"")
    truncated_copy(coco_jpg, tmp / "truncated.jpg", 0.5)
    (tmp / "text.jpg").write_text("hello, I am not a JPEG\n")
    truncated_copy(clip, tmp / "truncated_header.avi", 0.002)
    (tmp / "text.mp4").write_text("not a video")
    (tmp / "empty_dir").mkdir()
    (tmp / "only_text").mkdir()
    (tmp / "only_text" / "readme.txt").write_text("x")
    (tmp / "garbage.data").write_bytes(b"\x00\x01" * 100)
    return {
        "zero-byte image": (tmp / "zero.jpg", "empty file (0 bytes)"),
        "zero-byte video": (tmp / "zero.mp4", "empty file (0 bytes)"),
        "truncated jpeg": (tmp / "truncated.jpg", "not a decodable image"),
        "text named .jpg": (tmp / "text.jpg", "not a decodable image"),
        "truncated video": (tmp / "truncated_header.avi", "cannot be opened as a video"),
        "text named .mp4": (tmp / "text.mp4", "cannot be opened as a video"),
        "missing image": (tmp / "missing.jpg", "no such file"),
        "missing video": (tmp / "missing.mp4", "no such file"),
        "missing folder": (tmp / "missing_dir", "no such file or directory"),
        "empty dir": (tmp / "empty_dir", "directory holds no image or video files"),
        "dir without media": (tmp / "only_text", "directory holds no image or video files"),
        "glob no match": (str(tmp / "nothing-*.jpg"), "glob pattern matches no files"),
        "unknown suffix garbage": (tmp / "garbage.data", "neither an image nor a video"),
    }


BAD = ["zero-byte image", "zero-byte video", "truncated jpeg", "text named .jpg", "truncated video",
       "text named .mp4", "missing image", "missing video", "missing folder", "empty dir", "dir without media",
       "glob no match", "unknown suffix garbage"]


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_source_error(case: str, tmp_path: Path, coco_jpg: Path, clip: Path) -> None:
    spec, part = _bad_inputs(tmp_path, coco_jpg, clip)[case]
    with pytest.raises(SourceError) as info:
        frames_of(spec)  # opening may be lazy (stills): iterating must raise at the latest
    message = str(info.value)
    assert part in message
    assert "\n" not in message
    assert Path(str(spec)).name in message  # names the input
    assert "Traceback" not in message and "cv2.error" not in message


def test_bad_path_through_predictor_helpers(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="is a directory, not an image"):
        read_image(tmp_path)


def test_on_error_collects_and_goes_on(tmp_path: Path, coco_jpg: Path, clip: Path) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    write_png(folder / "1_good.png", np.full((5, 5, 3), 1, np.uint8))
    (folder / "2_zero.jpg").write_bytes(b"")
    truncated_copy(coco_jpg, folder / "3_truncated.jpg", 0.4)
    (folder / "4_zero.mp4").write_bytes(b"")
    synthetic_clip(folder / "5_clip.avi", frames=3)
    write_png(folder / "6_good.png", np.full((5, 5, 3), 6, np.uint8))
    errors: list[SourceError] = []
    source = open_source(folder, on_error=errors.append)
    assert len(source) == 1 + 1 + 1 + 1 + 3 + 1  # an unopenable video counts as one item
    assert errors == []  # inputs open when their turn comes, so errors come in order
    frames = list(source)
    assert [f.name for f in frames] == ["1_good.png", "5_clip.avi", "5_clip.avi", "5_clip.avi", "6_good.png"]
    assert all(isinstance(e, SourceError) for e in errors)
    named = [Path(str(e).split(":")[0]).name for e in errors]
    assert named == ["2_zero.jpg", "3_truncated.jpg", "4_zero.mp4"]

    # without on_error the first bad item raises
    with pytest.raises(SourceError, match="2_zero.jpg: empty file"):
        list(open_source(folder))


def test_on_error_with_a_list(tmp_path: Path) -> None:
    good = write_png(tmp_path / "good.png", np.zeros((3, 3, 3), np.uint8))
    errors: list[SourceError] = []
    frames = frames_of([tmp_path / "missing.png", good, np.zeros((0, 3), np.uint8), good], on_error=errors.append)
    assert [f.name for f in frames] == ["good.png", "good.png"]
    assert len(errors) == 2 and "missing.png" in str(errors[0]) and "got shape (0, 3)" in str(errors[1])


@pytest.mark.parametrize("url", ["rtsp://127.0.0.1:9/stream", "http://127.0.0.1:9/video.mjpg"])
def test_unreachable_stream_fails_fast_with_one_line(url: str, capfd) -> None:
    import time

    start = time.monotonic()
    with pytest.raises(SourceError, match="cannot be opened"):
        open_source(url)
    assert time.monotonic() - start < 15  # a closed port is refused at once; the open timeout caps the rest
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""  # no FFmpeg/OpenCV chatter: the SourceError says it all


def test_video_that_ends_early_is_an_error_after_its_frames(tmp_path: Path, clip: Path) -> None:
    """A truncated file (11 of the 20 frames its header promises): the 11 frames, then one SourceError naming the
    file and the count - through on_error when given (the CLI's exit 1), raised otherwise."""
    cut = truncated_copy(clip, tmp_path / "cut.avi", 0.5)
    errors: list[SourceError] = []
    frames = frames_of(cut, on_error=errors.append)
    assert [f.index for f in frames] == list(range(11))
    assert [str(e) for e in errors] == [f"{cut}: video ended early: 11 of 20 frames decoded (truncated or corrupt "
                                        "file)"]
    source = open_source(cut)
    seen = []
    with pytest.raises(SourceError, match="11 of 20 frames"):
        for frame in source:
            seen.append(frame.index)
    assert seen == list(range(11))
    assert len(frames_of(clip, on_error=errors.append)) == 20 and len(errors) == 1  # a whole file: no error


def test_len_of_many_videos_opens_none_for_good(tmp_path: Path) -> None:
    """len() probes each video's header and releases it; iterating opens one video at a time."""
    import os

    videos = [synthetic_clip(tmp_path / f"v{i}.avi", frames=3) for i in range(40)]
    fds = len(os.listdir("/proc/self/fd"))
    source = open_source(videos)
    assert len(source) == 40 * 3
    assert len(os.listdir("/proc/self/fd")) <= fds + 1
    frames = iter(source)
    next(frames)
    assert len(os.listdir("/proc/self/fd")) <= fds + 3  # the one video being read
    assert sum(1 for _ in frames) == 40 * 3 - 1
