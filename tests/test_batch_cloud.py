"""`visionkit batch` with inputs and results on a real S3-compatible server (moto's, on 127.0.0.1, started as a
subprocess): a manifest of s3:// URIs through both engines into s3://, read back with read_results and
pyarrow.dataset; resume and the per-block commit where there is no rename (a lost marker, an orphan block)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest
from clip_helpers import synthetic_clip

import visionkit
from visionkit.batch import dataset, read_errors, run_batch
from visionkit.batch.manifest import list_inputs
from visionkit.errors import SourceError

pytest.importorskip("moto")
ray = pytest.importorskip("ray")
MODEL = "ssd_mobilenet_v1_coco"
N_IMAGES = 6
BUCKET = "vk-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[pafs.S3FileSystem]:
    """moto's S3 server with a bucket holding photos/ (6 COCO photos and a corrupt one), a clip and a manifest of
    s3:// URIs; the AWS_* variables point pyarrow (and the Ray workers, started after this) at it."""
    port = _free_port()
    log = open(tmp_path_factory.mktemp("moto") / "server.log", "wb")  # noqa: SIM115 (closed below)
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            assert server.poll() is None and time.monotonic() < deadline, "moto's server did not start"
            time.sleep(0.1)
    endpoint = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as env:
        for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint}.items():
            env.setenv(key, value)
        fs = pafs.S3FileSystem(endpoint_override=endpoint, allow_bucket_creation=True)
        fs.create_dir(BUCKET)
        photos = sorted((shared_data / "coco_val2017" / "images").glob("*.jpg"))[:N_IMAGES]
        for photo in photos:
            _put(fs, f"photos/{photo.name}", photo.read_bytes())
        _put(fs, "photos/broken.jpg", b"\xff\xd8\xff\xe0 not really a jpeg" * 20)
        _put(fs, "videos/clip.avi", synthetic_clip(tmp_path_factory.mktemp("clip") / "clip.avi", frames=3).read_bytes())
        # absolute URIs, a relative entry (beside the manifest) and an object that does not exist
        lines = [f"s3://{BUCKET}/photos/{p.name}" for p in photos[:-1]] + [f"photos/{photos[-1].name}",
                                                                           "photos/broken.jpg", "photos/gone.jpg"]
        _put(fs, "list.txt", "\n".join(lines).encode())
        yield fs
    server.terminate()
    server.wait(10)
    log.close()


def _put(fs: pafs.S3FileSystem, key: str, data: bytes) -> None:
    with fs.open_output_stream(f"{BUCKET}/{key}") as f:
        f.write(data)


def _keys(fs: pafs.S3FileSystem, prefix: str) -> list[str]:
    infos = fs.get_file_info(pafs.FileSelector(f"{BUCKET}/{prefix}", recursive=True, allow_not_found=True))
    return sorted(i.path.split("/", 1)[1] for i in infos if i.type == pafs.FileType.File)


@pytest.fixture(scope="module")
def cluster(s3: pafs.S3FileSystem) -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # after s3: the workers get its AWS_* env
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def local_s3_run(s3: pafs.S3FileSystem, shared_weights: Path) -> str:
    out = f"s3://{BUCKET}/runs/local"
    summary = run_batch("detect", f"s3://{BUCKET}/list.txt", out, MODEL, batch_size=4)
    assert (summary.inputs, summary.frames, summary.errors) == (N_IMAGES + 2, N_IMAGES, 2)
    return out


def _records(out: str) -> list[dict]:
    return [r.to_dict() | {"speed": None} for r in visionkit.read_results(out)]


def test_inputs_listed_from_s3_folders_globs_and_manifests(s3: pafs.S3FileSystem) -> None:
    folder = list_inputs(f"s3://{BUCKET}/photos/")
    assert len(folder) == N_IMAGES + 1 and all(p.startswith(f"s3://{BUCKET}/photos/") for p in folder)
    assert list_inputs(f"s3://{BUCKET}/photos/*.jpg") == folder
    assert list_inputs(f"s3://{BUCKET}/**/*.avi") == [f"s3://{BUCKET}/videos/clip.avi"]
    with pytest.raises(SourceError, match="the glob matches no image or video file"):
        list_inputs(f"s3://{BUCKET}/*.jpg")  # '*' stays within one level: only list.txt is at the top
    manifest = list_inputs(f"s3://{BUCKET}/list.txt")
    assert manifest[:N_IMAGES] == [p for p in folder if not p.endswith("broken.jpg")]
    assert manifest[N_IMAGES:] == [f"s3://{BUCKET}/photos/broken.jpg", f"s3://{BUCKET}/photos/gone.jpg"]


def test_ray_and_local_engines_write_the_same_records_to_s3(cluster, s3: pafs.S3FileSystem, local_s3_run: str,
                                                              tmp_path: Path) -> None:
    out = f"s3://{BUCKET}/runs/ray"
    summary = run_batch("detect", f"s3://{BUCKET}/list.txt", out, MODEL, engine="ray", concurrency=2, batch_size=3,
                        num_cpus_per_worker=0.5)
    assert (summary.frames, summary.errors, summary.out) == (N_IMAGES, 2, out)
    records = _records(out)
    assert len(records) == N_IMAGES and sum(len(r["detections"]) for r in records) > 0
    assert records == _records(local_s3_run)
    assert all(r["metadata"]["source"].startswith(f"s3://{BUCKET}/photos/") for r in records)
    errors = {e["source"].rsplit("/", 1)[1]: e["reason"] for e in read_errors(out)}
    assert "not a decodable image" in errors["broken.jpg"] and "no such file" in errors["gone.jpg"]
    # nothing but whole, committed objects: no temporary names, one marker per table file's block
    keys = _keys(s3, "runs/ray")
    assert not [k for k in keys if ".tmp" in k]
    blocks = {k.rsplit("/", 1)[1].split(".")[0] for k in keys if k.startswith("runs/ray/_committed/")}
    tables = {k.rsplit("/", 1)[1].split(".")[0] for k in keys if k.startswith("runs/ray/frames/task=detect/")}
    assert tables and tables <= blocks
    # the same inputs into a results folder on disk: the same records
    on_disk = tmp_path / "on-disk"
    run_batch("detect", f"s3://{BUCKET}/list.txt", on_disk, MODEL, batch_size=4)
    assert _records(str(on_disk)) == records


def test_a_lost_marker_on_s3_is_redone_and_an_orphan_block_swept(s3: pafs.S3FileSystem, local_s3_run: str) -> None:
    out, prefix = f"s3://{BUCKET}/runs/resume", "runs/resume"
    for key in _keys(s3, "runs/local"):  # a copy of the finished run (object stores copy server-side)
        s3.copy_file(f"{BUCKET}/{key}", f"{BUCKET}/{prefix}/{key.split('/', 2)[2]}")
    again = run_batch("detect", f"s3://{BUCKET}/list.txt", out, MODEL, batch_size=4)
    assert (again.skipped, again.frames, again.errors) == (N_IMAGES + 2, 0, 0)
    markers = [k for k in _keys(s3, prefix) if "/_committed/" in k]
    s3.delete_file(f"{BUCKET}/{markers[0]}")  # a worker lost between its block's tables and its marker
    partition = markers[0].split("/_committed/")[1].rsplit("/", 1)[0]
    _put(s3, f"{prefix}/frames/{partition}/part-00000000000000000000.parquet", b"half a block")  # another's
    assert len(visionkit.read_results(out)) + len(read_errors(out)) < N_IMAGES + 2  # only committed blocks count
    redo = run_batch("detect", f"s3://{BUCKET}/list.txt", out, MODEL, batch_size=4)
    assert 0 < redo.frames + redo.errors < N_IMAGES + 2
    assert not [k for k in _keys(s3, prefix) if "part-0000000000" in k]
    assert _records(out) == _records(local_s3_run)
    # a finished run's tables are all committed, so pyarrow.dataset reads the partitioned layout on S3 directly
    frames = ds.dataset(f"{BUCKET}/{prefix}/frames", filesystem=s3, partitioning="hive").to_table()
    assert frames.num_rows == N_IMAGES == dataset(out, "frames").count_rows()
    assert set(frames.column("model").to_pylist()) == {MODEL}


def test_a_video_on_s3_runs_from_a_local_copy_named_by_its_uri(s3: pafs.S3FileSystem, shared_weights: Path) -> None:
    out = f"s3://{BUCKET}/runs/video"
    summary = run_batch("detect", f"s3://{BUCKET}/videos/", out, MODEL)
    assert (summary.inputs, summary.frames, summary.errors) == (1, 3, 0)
    results = visionkit.read_results(out)
    assert [r.frame_index for r in results] == [0, 1, 2]
    assert {r.metadata["source"] for r in results} == {f"s3://{BUCKET}/videos/clip.avi"}


def test_a_bad_uri_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="nosuch://x/photos: cannot open this filesystem URI"):
        run_batch("detect", "nosuch://x/photos", tmp_path / "out", MODEL)
    assert not os.listdir(tmp_path)
