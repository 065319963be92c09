"""`visionkit batch` on a real local Ray cluster (2 CPUs, started once for the module) and on the local engine:
the same records from both, reruns skip committed inputs, bad inputs land in the errors table, the results
schema reads back as typed results from Parquet and JSONL alike."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import visionkit
from visionkit.batch import read_errors, run_batch
from visionkit.batch.engines import BlockRunner
from visionkit.batch.manifest import list_inputs
from visionkit.batch.schema import SCHEMA_VERSION, block_name, result_rows
from visionkit.batch.storage import locate
from visionkit.batch.writer import claim_folder, write_block
from visionkit.cli import main
from visionkit.errors import WeightsError
from visionkit.results import Classification, Detections

ray = pytest.importorskip("ray")
MODEL = "ssd_mobilenet_v1_coco"  # fast on CPU
N_IMAGES = 10


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def mixed(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 COCO photos, a corrupt .jpg and an empty one."""
    folder = tmp_path_factory.mktemp("mixed")
    for photo in sorted((shared_data / "coco_val2017" / "images").glob("*.jpg"))[:N_IMAGES]:
        shutil.copy(photo, folder / photo.name)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * 20)
    (folder / "empty.jpg").write_bytes(b"")
    return folder


def _records(out: Path) -> list[dict]:
    return [r.to_dict() | {"speed": None} for r in visionkit.read_results(out)]


@pytest.fixture(scope="module")
def local_run(mixed: Path, tmp_path_factory: pytest.TempPathFactory, shared_weights: Path) -> Path:
    out = tmp_path_factory.mktemp("local") / "out"
    assert main(["batch", "detect", str(mixed), "--out", str(out), "-m", MODEL, "--batch-size", "4"]) == 1
    return out


def test_ray_engine_equals_local_engine_record_for_record(cluster, mixed: Path, local_run: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ray"
    code = main(["batch", "detect", str(mixed), "--out", str(out), "-m", MODEL, "--engine", "ray",
                 "--concurrency", "2", "--batch-size", "3", "--num-cpus-per-worker", "0.5"])
    assert code == 1  # two inputs failed; the rest were processed
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith(f"batch (ray): {N_IMAGES + 2} inputs (0 already committed), {N_IMAGES} images/frames")
    assert "2 errors" in line and "images/s" in line
    ray_records, local_records = _records(out), _records(local_run)
    assert len(ray_records) == N_IMAGES and sum(len(r["detections"]) for r in ray_records) > 0
    assert ray_records == local_records
    assert read_errors(out) == read_errors(local_run)


def test_errors_table_holds_the_bad_inputs_with_one_line_reasons(local_run: Path, mixed: Path) -> None:
    errors = read_errors(local_run)
    assert [Path(e["source"]).name for e in errors] == ["broken.jpg", "empty.jpg"]
    assert "not a decodable image" in errors[0]["reason"] and "empty file" in errors[1]["reason"]
    assert all("\n" not in e["reason"] and e["schema_version"] == SCHEMA_VERSION for e in errors)


def test_rerun_skips_committed_inputs_and_runs_only_new_ones(cluster, mixed: Path, local_run: Path, tmp_path: Path,
                                                              shared_data: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(local_run, out)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = run_batch("detect", str(mixed), out, MODEL, engine="ray")
    assert (again.skipped, again.frames, again.errors) == (N_IMAGES + 2, 0, 0)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
    extra = sorted((shared_data / "coco_val2017" / "images").glob("*.jpg"))[N_IMAGES]
    manifest = tmp_path / "list.txt"
    manifest.write_text("\n".join([*list_inputs(str(mixed)), str(extra)]))
    grown = run_batch("detect", str(manifest), out, MODEL)
    assert (grown.inputs, grown.skipped, grown.frames) == (N_IMAGES + 3, N_IMAGES + 2, 1)
    assert len(visionkit.read_results(out)) == N_IMAGES + 1


def test_a_block_without_its_commit_marker_is_redone_and_not_read(mixed: Path, local_run: Path,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(local_run, out)
    marker = sorted((out / "_committed").rglob("*.json"))[0]
    lost = len(json.loads(marker.read_text())["inputs"])
    marker.unlink()  # a crash between the block's tables and its marker
    assert len(visionkit.read_results(out)) + len(read_errors(out)) == N_IMAGES + 2 - lost
    summary = run_batch("detect", str(mixed), out, MODEL, batch_size=4)
    assert summary.frames + summary.errors == lost
    assert _records(out) == _records(local_run)
    assert read_errors(out) == read_errors(local_run)


class DiesOnceRunner(BlockRunner):
    """Kills its worker process on the first block of the run (a machine lost mid-run); Ray restarts the actor and
    retries the block."""

    def __call__(self, batch: dict) -> dict:
        flag = Path(self.out.path).parent / "died"
        if not flag.exists():
            flag.touch()
            os._exit(1)
        return super().__call__(batch)


def test_a_killed_worker_is_retried_and_nothing_is_lost_or_duplicated(cluster, mixed: Path, local_run: Path,
                                                                      tmp_path: Path) -> None:
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import tests/
    out = tmp_path / "out"
    summary = run_batch("detect", str(mixed), out, MODEL, engine="ray", batch_size=4, runner_class=DiesOnceRunner)
    assert (tmp_path / "died").exists()
    assert (summary.frames, summary.errors) == (N_IMAGES, 2)
    assert _records(out) == _records(local_run)
    assert read_errors(out) == read_errors(local_run)


def test_manifests_txt_csv_parquet_list_the_same_inputs(mixed: Path, tmp_path: Path) -> None:
    paths = list_inputs(str(mixed))
    assert len(paths) == N_IMAGES + 2
    (tmp_path / "m.txt").write_text("\n".join(paths) + "\n")
    (tmp_path / "m.csv").write_text("path,label\n" + "".join(f"{p},x\n" for p in paths))
    pq.write_table(pa.table({"path": paths}), tmp_path / "m.parquet")
    for name in ("m.txt", "m.csv", "m.parquet"):
        assert list_inputs(str(tmp_path / name)) == paths
    assert list_inputs(str(mixed / "*.jpg")) == paths


def _write_clip(path: Path, images: list[np.ndarray], fps: int = 10) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = images[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for image in images:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode())


def test_track_runs_per_video_on_ray_as_locally_and_refuses_images(cluster, shared_data: Path, shared_weights: Path,
                                                                   tmp_path: Path) -> None:
    folder = tmp_path / "videos"
    folder.mkdir()
    frames = sorted((shared_data / "tracking" / "MOT17-05-FRCNN" / "img1").glob("*.jpg"))[:6]
    _write_clip(folder / "walk.mp4", [cv2.imread(str(f)) for f in frames])
    shutil.copy(frames[0], folder / "still.jpg")
    on_ray = run_batch("track", str(folder), tmp_path / "ray", MODEL, engine="ray")
    run_batch("track", str(folder), tmp_path / "local", MODEL)
    assert (on_ray.frames, on_ray.errors) == (len(visionkit.read_results(tmp_path / "ray")), 1)
    tracked = visionkit.read_results(tmp_path / "ray")
    assert any(r.track_ids is not None and len(r.track_ids) for r in tracked)
    assert _records(tmp_path / "ray") == _records(tmp_path / "local")
    assert "batch track runs on videos" in read_errors(tmp_path / "ray")[0]["reason"]


def test_videos_run_one_per_block_with_timestamps(tmp_path: Path, shared_weights: Path) -> None:
    folder = tmp_path / "videos"
    folder.mkdir()
    _write_clip(folder / "clip.mp4", [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(3)])
    summary = run_batch("detect", str(folder), tmp_path / "out", MODEL)
    assert (summary.inputs, summary.frames, summary.errors) == (1, 3, 0)
    results = visionkit.read_results(tmp_path / "out")
    assert [r.frame_index for r in results] == [0, 1, 2]
    assert [round(r.metadata["timestamp"], 2) for r in results] == [0.0, 0.1, 0.2]


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_read_results_round_trip(tmp_path: Path, fmt: str) -> None:
    tracked = Detections.from_arrays(np.array([[1.5, 2, 30, 40], [5, 6, 7, 8]]), np.array([0.9, 0.25]),
                                     np.array([0, 2]), ["person", "bicycle", "car"], track_ids=np.array([7, 9]),
                                     frame_index=3, image_shape=(48, 64))
    top = Classification.from_probs(np.array([0.1, 0.7, 0.2]), ["cat", "dog", "fox"], top_k=2, image_shape=(10, 20))
    out = locate(str(tmp_path))
    claim_folder(out, fmt)
    for result, source, task in ((tracked, "a.mp4", "track"), (top, "b.jpg", "classify")):
        frame, objects = result_rows(result, source, 0.3 if task == "track" else None, task, "m")
        write_block(out, task, "m", block_name([source]), {"frames": [frame], "objects": objects}, [source], fmt)
    assert [p.suffix for p in sorted((tmp_path / "frames").rglob("part-*"))] == [f".{fmt}"] * 2
    back = visionkit.read_results(tmp_path)[::-1]  # sorted by task: classify first
    assert [type(r) for r in back] == [Detections, Classification]
    for got, want, source in zip(back, (tracked, top), ("a.mp4", "b.jpg")):
        assert got.metadata["source"] == source
        assert got.to_dict() | {"metadata": {}} == want.to_dict() | {"metadata": {}}


def test_a_worker_side_failure_is_the_user_facing_error_not_a_ray_traceback(cluster, mixed: Path,
                                                                           tmp_path: Path) -> None:
    fake = tmp_path / "fake.onnx"
    fake.write_bytes(b"junk")
    with pytest.raises(WeightsError, match="fake.onnx: not a loadable ONNX model"):
        run_batch("detect", str(mixed), tmp_path / "out", str(fake), engine="ray")


def test_results_are_hive_partitioned_and_two_models_share_a_folder(mixed: Path, local_run: Path,
                                                                    tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(local_run, out)
    assert {p.relative_to(out).parent.as_posix() for p in out.rglob("part-*")} == {
        f"{table}/task=detect/model={MODEL}" for table in ("frames", "objects", "errors", "_committed")}
    manifest = tmp_path / "two.txt"
    manifest.write_text("\n".join(list_inputs(str(mixed))[:2]))
    second = run_batch("detect", str(manifest), out, "yolov5n")  # another model's partition: nothing skipped
    assert (second.skipped, second.frames) == (0, 2)
    mine, theirs = visionkit.read_results(out, model=MODEL), visionkit.read_results(out, model="yolov5n")
    assert [r.to_dict() | {"speed": None} for r in mine] == _records(local_run)
    assert len(theirs) == 2 and {r.metadata["model"] for r in theirs} == {"yolov5n"}
    assert len(visionkit.read_results(out, task="detect")) == N_IMAGES + 2
    # pyarrow.dataset reads the layout as it lies, partition columns and filters included
    objects = ds.dataset(out / "objects", format="parquet", partitioning="hive")
    assert objects.count_rows(filter=ds.field("model") == "yolov5n") == sum(len(r) for r in theirs)
    assert objects.count_rows() == sum(len(r) for r in mine + theirs)


def test_ray_data_reads_the_partitioned_tables(cluster, local_run: Path) -> None:
    frames = ray.data.read_parquet(str(local_run / "frames")).filter(expr=f"model == '{MODEL}'").take_all()
    assert {(f["task"], f["model"]) for f in frames} == {("detect", MODEL)}
    assert sorted(f["source"] for f in frames) == [r.metadata["source"] for r in visionkit.read_results(local_run)]
