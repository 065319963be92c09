"""Table outputs (issue #15 item 5): ``--csv`` / ``--parquet`` one row per object in the batch schema's columns,
``Result.to_pandas()`` / ``visionkit.results_to_frame``, and JSONL records with one frame field (``frame_index``)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from clip_helpers import make_clip
from fault_harness import Fault, assert_jsonl_valid, check_fault, limit_file_size, run_cli

import visionkit
from visionkit.batch.schema import TABLE
from visionkit.errors import OutputConflictError, SinkError
from visionkit.io.sinks import OutputGuard
from visionkit.io.sources import Frame
from visionkit.io.table_sinks import CsvSink, ParquetSink
from visionkit.results import Classification, Detections, SemanticMask

MODEL = "ssd_mobilenet_v1_coco"


def poses(n: int = 2, **kwargs) -> Detections:
    xyxy = np.array([[10 + i, 20, 50 + i, 90] for i in range(n)], np.float32)
    keypoints = np.stack([np.column_stack([np.arange(17) + i, np.arange(17) * 2.0, np.full(17, 0.5)])
                          for i in range(n)]).astype(np.float32)
    return Detections(xyxy=xyxy, scores=np.linspace(0.9, 0.5, n), class_ids=np.zeros(n), class_names=["person"] * n,
                      keypoints=keypoints, **kwargs)


def video_frame(index: int, source: str = "walk.mp4") -> Frame:
    return Frame(np.zeros((100, 120, 3), np.uint8), source, index, timestamp=index / 10, fps=10.0, is_video=True)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_csv_and_parquet_hold_the_same_rows(tmp_path: Path) -> None:
    csv_path, parquet_path = tmp_path / "o.csv", tmp_path / "o.parquet"
    top = Classification.from_probs(np.array([0.1, 0.7, 0.2]), ["a", "b", "c"], top_k=2)
    with CsvSink(csv_path, task="pose", model="m") as table, ParquetSink(parquet_path, task="pose", model="m") as pq_:
        for frame, result in [(video_frame(0), poses(2, track_ids=[4, 9])), (video_frame(1), Detections.empty()),
                              (video_frame(2), poses(1, track_ids=[4])), (Frame(np.zeros((5, 5, 3)), "x.jpg"), top)]:
            table.write(frame, result)
            pq_.write(frame, result)
        assert len(read_csv(csv_path)) == 5  # flushed per frame, before close
        assert not parquet_path.exists()  # renamed into place on close
    rows = read_csv(csv_path)
    assert list(rows[0]) == TABLE.names
    data = pq.read_table(parquet_path)
    assert data.schema.equals(TABLE) and data.num_rows == 5
    stored = data.to_pylist()
    assert [r["frame_index"] for r in stored] == [0, 0, 2, 0, 0]  # the empty frame has no row
    assert [r["track_id"] for r in stored] == [4, 9, 4, None, None]
    assert [r["object_index"] for r in stored] == [0, 1, 0, 0, 1]  # the classification's rows are its ranks
    assert [r["class_name"] for r in stored[3:]] == ["b", "c"] and stored[3]["x1"] is None
    assert stored[2]["timestamp"] == pytest.approx(0.2) and stored[3]["timestamp"] is None
    assert np.allclose(stored[1]["keypoints"], poses(2).keypoints[1])
    for row, kept in zip(rows, stored):
        assert row["source"] == kept["source"] and row["class_name"] == kept["class_name"]
        assert row["track_id"] == ("" if kept["track_id"] is None else str(kept["track_id"]))
        if kept["x1"] is not None:
            assert float(row["x2"]) == pytest.approx(kept["x2"], abs=0.01)
            assert np.allclose(json.loads(row["keypoints"]), kept["keypoints"], atol=1e-3)
    assert not list(tmp_path.glob("*.tmp"))


def test_a_class_map_is_not_a_table(tmp_path: Path) -> None:
    mask = SemanticMask(class_map=np.zeros((4, 4), np.int64), class_names=["background", "cat"])
    for sink in (CsvSink(tmp_path / "s.csv"), ParquetSink(tmp_path / "s.parquet")):
        with pytest.raises(SinkError, match="not semantic_mask"):
            sink.write(Frame(np.zeros((4, 4, 3), np.uint8), "a.jpg"), mask)
        sink.close()


def test_table_sinks_follow_the_output_guard(tmp_path: Path) -> None:
    existing = tmp_path / "old.parquet"
    existing.write_bytes(b"keep")
    with pytest.raises(OutputConflictError, match="already exists"):
        ParquetSink(existing, OutputGuard(exist_ok=False))
    assert existing.read_bytes() == b"keep"
    with pytest.raises(OutputConflictError, match="is an input"):
        CsvSink(tmp_path / "old.parquet", OutputGuard([existing]))


def test_to_pandas_and_results_to_frame(shared_weights: Path, assets: Path) -> None:
    detector = visionkit.load("detect", MODEL)
    pairs = list(detector.stream([assets / "bus.jpg", assets / "zidane.jpg"]))
    frame = visionkit.results_to_frame(pairs)
    assert list(frame.columns) == TABLE.names
    assert len(frame) == sum(len(r) for _, r in pairs) > 0
    assert set(frame["source"]) == {str(assets / "bus.jpg"), str(assets / "zidane.jpg")}
    one = pairs[0][1].to_pandas()
    assert len(one) == len(pairs[0][1]) and list(one["class_name"]) == list(pairs[0][1].class_names)
    assert np.allclose(one[["x1", "y1", "x2", "y2"]].to_numpy(), pairs[0][1].xyxy)


def test_to_pandas_without_pandas_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # what `import pandas` sees when it is not installed
    with pytest.raises(ImportError, match="pip install pandas"):
        Detections.empty().to_pandas()


def test_old_jsonl_records_with_frame_and_frame_index_still_read() -> None:
    old = {"source": "a.jpg", "frame": 3, "task": "detect", "type": "detections", "frame_index": 3,
           "image_shape": [10, 10], "speed": {}, "detections": [{"box": [1, 2, 3, 4], "score": 0.5, "class_id": 0,
                                                               "class_name": "person"}]}
    result = Detections.from_dict(old)
    assert result.frame_index == 3 and result.xyxy.tolist() == [[1, 2, 3, 4]]


@pytest.fixture(scope="module")
def images(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    for src in sorted((shared_data / "coco_val2017/images").glob("*.jpg"))[:3]:
        (folder / src.name).write_bytes(src.read_bytes())
    return folder


def test_cli_tables_match_the_jsonl(images: Path, tmp_path: Path, shared_weights: Path) -> None:
    out = tmp_path / "out"
    outcome = run_cli("detect", images, "-m", MODEL, "-q", "--csv", out / "o.csv", "--parquet", out / "o.parquet",
                      "--json", out / "o.jsonl", env={"VISIONKIT_WEIGHTS": str(shared_weights)})
    assert outcome.code == 0, outcome.stderr
    records = assert_jsonl_valid(out / "o.jsonl")
    assert all("frame" not in r and "frame_index" in r for r in records)  # one frame field, as in the tables
    rows = read_csv(out / "o.csv")
    table = pq.read_table(out / "o.parquet").to_pylist()
    expected = [(r["source"], r["frame_index"], d["class_name"], d["score"]) for r in records for d in r["detections"]]
    assert len(expected) > 0
    assert [(r["source"], r["frame_index"], r["class_name"], r["score"]) for r in table] == \
        [(s, f, c, pytest.approx(x, abs=1e-5)) for s, f, c, x in expected]
    assert [(r["source"], int(r["frame_index"]), r["class_name"]) for r in rows] == [e[:3] for e in expected]
    assert all(r["task"] == "detect" and r["model"] == MODEL for r in table)


def test_cli_track_table_has_track_ids_and_timestamps(shared_data: Path, tmp_path: Path,
                                                      shared_weights: Path) -> None:
    clip = make_clip(shared_data / "tracking/demo/vtest.avi", tmp_path / "walk.avi", 8)
    env = {"VISIONKIT_WEIGHTS": str(shared_weights)}
    outcome = run_cli("track", clip, "-m", MODEL, "-q", "--conf", "0.2", "--parquet", tmp_path / "t.parquet", env=env)
    assert outcome.code == 0, outcome.stderr
    rows = pq.read_table(tmp_path / "t.parquet").to_pylist()
    assert rows and all(r["track_id"] is not None and r["timestamp"] is not None for r in rows)
    assert {r["frame_index"] for r in rows} <= set(range(8)) and {r["source"] for r in rows} == {str(clip)}
    # several streams (MultiStream): each row names its stream
    other = make_clip(shared_data / "tracking/demo/vtest.avi", tmp_path / "street.avi", 8, start=100)
    outcome = run_cli("track", clip, other, "-m", MODEL, "-q", "--conf", "0.2", "--csv", tmp_path / "t.csv", env=env)
    assert outcome.code == 0, outcome.stderr
    streams = {r["source"] for r in read_csv(tmp_path / "t.csv") if r["track_id"]}
    assert streams == {"walk", "street"}


@pytest.mark.parametrize("case", ["semantic", "over-input", "disk-full"])
def test_table_output_faults(case: str, images: Path, tmp_path: Path, shared_weights: Path) -> None:
    first = sorted(images.iterdir())[0]
    env = {"VISIONKIT_WEIGHTS": str(shared_weights)}
    fault = {
        "semantic": Fault("semantic", ["segment", first, "-m", "deeplabv3_mnv2_257", "-q", "--csv", tmp_path / "s.csv"],
                          1, "not semantic_mask", inputs=[first], env=env),
        "over-input": Fault("over-input", ["detect", images, "-m", MODEL, "-q", "--parquet", first], 2,
                            "is an input of this run", inputs=list(images.iterdir()), env=env),
        "disk-full": Fault("disk-full", ["detect", images, "-m", MODEL, "-q", "--csv", tmp_path / "f.csv"], 1,
                           f"cannot write {tmp_path / 'f.csv'}", inputs=list(images.iterdir()), env=env,
                           preexec=limit_file_size(600)),  # stderr (a file here) fits
    }[case]
    check_fault(fault)
