"""visionkit.results: Detections validation, indexing, serialisation, supervision interop and drawing."""

from __future__ import annotations

import json
from contextlib import nullcontext as does_not_raise

import numpy as np
import pytest

from visionkit.results import Detections, Speed


def make_detections(n: int = 3, *, track_ids: bool = False, masks: bool = False, keypoints: bool = False,
                    hw: tuple[int, int] = (40, 60), **kwargs) -> Detections:
    """``n`` distinct boxes with values that survive to_dict's rounding exactly."""
    rng = np.random.default_rng(n)
    xyxy = np.array([[2 + 4 * i, 3 + 2 * i, 20 + 4 * i, 25 + 2 * i] for i in range(n)], np.float32)
    extra = {}
    if track_ids:
        extra["track_ids"] = np.arange(n) + 100
    if masks:
        m = np.zeros((n, *hw), bool)
        for i in range(n):
            m[i, 3 + i:10 + i, 5:15 + 2 * i] = True
        extra["masks"] = m
    if keypoints:
        extra["keypoints"] = np.round(rng.uniform(0, 30, (n, 17, 3)), 2).astype(np.float32)
    return Detections(xyxy=xyxy, scores=np.array([0.25, 0.5, 0.75, 0.875, 0.125][:n] + [0.5] * max(n - 5, 0)),
                      class_ids=np.arange(n) % 3, class_names=np.array(["person", "car", "dog"] * n)[:n],
                      image_shape=hw, **extra, **kwargs)


# -- validation -------------------------------------------------------------------------------------------
GOOD = dict(xyxy=np.zeros((3, 4)), scores=np.zeros(3), class_ids=np.zeros(3), class_names=["a"] * 3)


@pytest.mark.parametrize(
    ("changes", "expected", "message_parts"),
    [
        ({}, does_not_raise(), ()),
        ({"xyxy": [[0, 0, 1, 1]] * 3}, does_not_raise(), ()),  # lists are accepted and converted
        ({"xyxy": np.zeros((4, 5))}, pytest.raises(ValueError), ("xyxy", "(n, 4)", "(4, 5)")),
        ({"xyxy": np.zeros((2, 5))}, pytest.raises(ValueError), ("xyxy", "(n, 4)", "(2, 5)")),
        ({"xyxy": np.zeros((3, 4, 1))}, pytest.raises(ValueError), ("xyxy", "(3, 4, 1)")),
        ({"scores": np.zeros(2)}, pytest.raises(ValueError), ("scores", "n=3", "(2,)")),
        ({"class_ids": np.zeros(4)}, pytest.raises(ValueError), ("class_ids", "n=3", "(4,)")),
        ({"class_names": ["a"]}, pytest.raises(ValueError), ("class_names", "n=3", "(1,)")),
        ({"track_ids": [1, 2]}, pytest.raises(ValueError), ("track_ids", "n=3", "(2,)")),
        ({"masks": np.zeros((3, 8), bool)}, pytest.raises(ValueError), ("masks", "(n, _, _)", "(3, 8)")),
        ({"masks": np.zeros((2, 8, 8), bool)}, pytest.raises(ValueError), ("masks", "n=3", "(2, 8, 8)")),
        ({"masks": [[[True]]] * 3}, pytest.raises(TypeError), ("masks", "numpy array", "list")),
        ({"keypoints": np.zeros((3, 17, 2))}, pytest.raises(ValueError), ("keypoints", "(n, _, 3)", "(3, 17, 2)")),
        ({"keypoints": np.zeros((3, 17))}, pytest.raises(ValueError), ("keypoints", "(3, 17)")),
        ({"keypoints": np.zeros((1, 17, 3))}, pytest.raises(ValueError), ("keypoints", "n=3", "(1, 17, 3)")),
    ],
)
def test_detections_validation(changes, expected, message_parts) -> None:
    with expected as info:
        d = Detections(**{**GOOD, **changes})
    if info is None:
        assert len(d) == 3 and d.xyxy.dtype == np.float32 and d.class_ids.dtype == np.int64
        assert d.scores.dtype == np.float32 and d.class_names.dtype == object
    else:
        message = str(info.value)
        assert "\n" not in message
        for part in message_parts:
            assert part in message, f"{part!r} not in {message!r}"


def test_empty() -> None:
    d = Detections.empty(frame_index=7, image_shape=(10, 20))
    assert len(d) == 0
    assert d.xyxy.shape == (0, 4) and d.scores.shape == (0,) and d.class_ids.shape == (0,)
    assert d.frame_index == 7 and d.image_shape == (10, 20)
    assert d.track_ids is None and d.masks is None and d.keypoints is None
    assert d.areas.shape == (0,)
    assert len(d[d.scores > 0.5]) == 0
    assert d.to_dict()["detections"] == []
    # An empty array of any layout is accepted as "no boxes".
    assert len(Detections(xyxy=[], scores=[], class_ids=[], class_names=[])) == 0


def test_from_arrays_names_and_unknown_ids() -> None:
    d = Detections.from_arrays(np.zeros((3, 4)), [0.1, 0.2, 0.3], [0, 2, 9], ["a", "b", "c"])
    assert d.class_names.tolist() == ["a", "c", "9"]


def test_areas() -> None:
    d = Detections(xyxy=[[0, 0, 10, 5], [1, 1, 2, 3]], scores=[1, 1], class_ids=[0, 0], class_names=["a", "a"])
    np.testing.assert_allclose(d.areas, [50, 2])


# -- indexing ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("index", "expected_rows", "expected"),
    [
        (0, [0], does_not_raise()),
        (np.int64(2), [2], does_not_raise()),
        (-1, [4], does_not_raise()),
        (slice(1, 3), [1, 2], does_not_raise()),
        (slice(None, None, 2), [0, 2, 4], does_not_raise()),
        ([3, 0], [3, 0], does_not_raise()),
        (np.array([4, 4]), [4, 4], does_not_raise()),
        (np.array([True, False, True, False, True]), [0, 2, 4], does_not_raise()),
        (np.zeros(5, bool), [], does_not_raise()),
        ([], [], does_not_raise()),
        (5, None, pytest.raises(IndexError)),
        (np.array([True, False]), None, pytest.raises(IndexError)),
    ],
)
def test_indexing(index, expected_rows, expected) -> None:
    d = make_detections(5, track_ids=True, masks=True, keypoints=True, frame_index=4, metadata={"k": 1})
    with expected:
        sub = d[index]
    if expected_rows is None:
        return
    rows = np.array(expected_rows, dtype=np.int64)
    assert isinstance(sub, Detections) and len(sub) == len(rows)
    np.testing.assert_array_equal(sub.xyxy, d.xyxy[rows].reshape(-1, 4))
    np.testing.assert_array_equal(sub.scores, d.scores[rows])
    np.testing.assert_array_equal(sub.class_ids, d.class_ids[rows])
    assert sub.class_names.tolist() == d.class_names[rows].tolist()
    np.testing.assert_array_equal(sub.track_ids, d.track_ids[rows])
    assert sub.masks.shape == (len(rows), *d.masks.shape[1:])
    np.testing.assert_array_equal(sub.masks, d.masks[rows])
    np.testing.assert_array_equal(sub.keypoints, d.keypoints[rows])
    # frame facts ride along, metadata is a copy
    assert sub.frame_index == 4 and sub.image_shape == d.image_shape
    assert sub.metadata == {"k": 1} and sub.metadata is not d.metadata


def test_boolean_filter_by_score() -> None:
    d = make_detections(5)
    kept = d[d.scores > 0.4]
    assert kept.scores.tolist() == [0.5, 0.75, 0.875]
    assert len(d) == 5  # the original is untouched


# -- with_ ------------------------------------------------------------------------------------------------
def test_with_does_not_mutate_original() -> None:
    d = make_detections(3, metadata={"camera": "a"})
    xyxy_before, scores_before = d.xyxy.copy(), d.scores.copy()
    tracked = d.with_(track_ids=[7, 8, 9], xyxy=d.xyxy + 1)
    assert tracked is not d
    assert tracked.track_ids.tolist() == [7, 8, 9] and tracked.track_ids.dtype == np.int64
    np.testing.assert_array_equal(tracked.xyxy, xyxy_before + 1)
    assert d.track_ids is None
    np.testing.assert_array_equal(d.xyxy, xyxy_before)
    np.testing.assert_array_equal(d.scores, scores_before)
    tracked.metadata["extra"] = True
    assert d.metadata == {"camera": "a"}


def test_with_validates() -> None:
    d = make_detections(3)
    with pytest.raises(ValueError, match="track_ids must have shape"):
        d.with_(track_ids=[1, 2])


# -- serialisation ----------------------------------------------------------------------------------------
def assert_same(a: Detections, b: Detections) -> None:
    assert len(a) == len(b)
    np.testing.assert_allclose(a.xyxy, b.xyxy, atol=0.01)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
    np.testing.assert_array_equal(a.class_ids, b.class_ids)
    assert a.class_names.tolist() == b.class_names.tolist()
    for name in ("track_ids", "masks"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            np.testing.assert_array_equal(x, y)
    if a.keypoints is None:
        assert b.keypoints is None
    else:
        np.testing.assert_allclose(a.keypoints, b.keypoints, atol=1e-3)


@pytest.mark.parametrize(
    "extras",
    [
        {},
        {"track_ids": True},
        {"masks": True},
        {"keypoints": True},
        {"track_ids": True, "masks": True, "keypoints": True},
    ],
)
def test_dict_json_round_trip(extras) -> None:
    d = make_detections(3, **extras, frame_index=12, speed=Speed(1.5, 2.25, 0.5), metadata={"source": "x.jpg"})
    data = d.to_dict()
    assert data["type"] == "detections" and data["frame_index"] == 12 and data["image_shape"] == [40, 60]
    assert data["speed"] == {"preprocess": 1.5, "inference": 2.25, "postprocess": 0.5}
    assert data["metadata"] == {"source": "x.jpg"}
    item = data["detections"][0]
    assert item["box"] == [2.0, 3.0, 20.0, 25.0] and item["score"] == 0.25
    assert item["class_id"] == 0 and item["class_name"] == "person"
    assert ("track_id" in item) == bool(extras.get("track_ids"))
    assert ("mask" in item) == bool(extras.get("masks"))
    assert ("keypoints" in item) == bool(extras.get("keypoints"))
    if "mask" in item:  # COCO RLE: size [h, w] and an ASCII counts string
        assert item["mask"]["size"] == [40, 60] and isinstance(item["mask"]["counts"], str)
    # every value is plain JSON
    text = d.to_json()
    assert json.loads(text) == data
    back = Detections.from_dict(json.loads(text))
    assert_same(d, back)
    assert back.frame_index == 12 and tuple(back.image_shape) == (40, 60)
    assert back.speed == Speed(1.5, 2.25, 0.5) and back.metadata == {"source": "x.jpg"}
    if back.masks is not None:
        assert back.masks.dtype == bool
    if back.track_ids is not None:
        assert back.track_ids.dtype == np.int64


def test_from_dict_empty_keeps_frame_facts() -> None:
    data = Detections.empty(frame_index=5, image_shape=(3, 4)).to_dict()
    back = Detections.from_dict(data)
    assert len(back) == 0 and back.frame_index == 5 and tuple(back.image_shape) == (3, 4)


def test_to_json_kwargs() -> None:
    assert "\n" in make_detections(1).to_json(indent=2)


# -- supervision ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("extras", [{}, {"track_ids": True, "masks": True}])
def test_supervision_round_trip(extras) -> None:
    sv = pytest.importorskip("supervision")
    d = make_detections(4, **extras)
    s = d.to_supervision()
    assert isinstance(s, sv.Detections) and len(s) == 4
    np.testing.assert_array_equal(s.xyxy, d.xyxy)
    np.testing.assert_array_equal(s.confidence, d.scores)
    np.testing.assert_array_equal(s.class_id, d.class_ids)
    assert list(s.data["class_name"]) == d.class_names.tolist()
    assert (s.tracker_id is None) == (d.track_ids is None)
    # supervision's own filtering works on the converted object
    assert len(s[s.confidence > 0.4]) == int((d.scores > 0.4).sum())
    # the conversion copies: changing supervision's arrays leaves ours alone
    s.xyxy[:] = -1
    assert (d.xyxy >= 0).all()
    back = Detections.from_supervision(d.to_supervision(), frame_index=3)
    assert_same(d, back)
    assert back.frame_index == 3


def test_from_supervision_names_and_defaults() -> None:
    sv = pytest.importorskip("supervision")
    s = sv.Detections(xyxy=np.array([[0, 0, 5, 5], [1, 1, 4, 4]], np.float32), class_id=np.array([1, 0]))
    d = Detections.from_supervision(s, names=["cat", "dog"])
    assert d.class_names.tolist() == ["dog", "cat"]
    np.testing.assert_array_equal(d.scores, [1.0, 1.0])  # no confidence -> 1
    assert len(Detections.from_supervision(sv.Detections.empty())) == 0


# -- plot -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("extras", [{}, {"masks": True, "keypoints": True, "track_ids": True}])
def test_plot_returns_annotated_copy(extras) -> None:
    image = np.full((40, 60, 3), 128, np.uint8)
    before = image.copy()
    d = make_detections(2, **extras)
    out = d.plot(image)
    assert out is not image and out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(image, before)  # input untouched
    changed = np.any(out != before, axis=2)
    assert changed.sum() > 50
    # the first box's left edge is drawn; a far corner outside every box is not
    x1, y1, x2, y2 = d.xyxy[0].astype(int)
    assert changed[y1 + 5:y2 - 1, x1].any()
    assert not changed[38:, 58:].any()


def test_plot_empty_is_identical_copy() -> None:
    image = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    out = Detections.empty().plot(image)
    assert out is not image
    np.testing.assert_array_equal(out, image)


@pytest.mark.parametrize("record, field", [
    ([], "must be a dict"),
    ({"detections": "boxes"}, "'detections' must be a list of dicts"),
    ({"frame_index": "3"}, "bad frame_index: expected an integer"),
    ({"image_shape": [10]}, "bad image_shape"),
    ({"speed": {"inference": "fast"}}, "bad speed: expected a number"),
    ({"detections": [{"box": [0, 0, 1], "score": 0.5, "class_id": 0, "class_name": "a"}]}, "bad detections[0].box"),
    ({"detections": [{"box": [0, 0, 1, 1], "score": float("nan"), "class_id": 0, "class_name": "a"}]},
     "bad detections[0].score: expected finite numbers"),
    ({"detections": [{"box": [0, 0, 1, 1], "score": 0.5, "class_id": 0, "class_name": "a", "track_id": 1},
                     {"box": [0, 0, 1, 1], "score": 0.5, "class_id": 0, "class_name": "a"}]},
     "bad detections[1].track_id: missing"),
    ({"detections": [{"box": [0, 0, 1, 1], "score": 0.5, "class_id": 0, "class_name": "a",
                      "mask": {"size": [2], "counts": "x"}}]}, "bad detections[0].mask"),
])
def test_from_dict_names_the_bad_field(record: object, field: str) -> None:
    """A malformed record (e.g. a hand-edited JSONL line) is one ResultFormatError naming the field, not a bare
    KeyError/TypeError from deep inside numpy."""
    from visionkit.errors import ResultFormatError, VisionkitError

    with pytest.raises(ResultFormatError) as info:
        Detections.from_dict(record)
    assert field in str(info.value) and "\n" not in str(info.value)
    assert str(info.value).count("detections record") == 1, str(info.value)
    assert isinstance(info.value, VisionkitError) and isinstance(info.value, ValueError)
