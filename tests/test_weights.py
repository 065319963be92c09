"""visionkit.weights: explicit path -> $VISIONKIT_WEIGHTS -> cache -> verified download, and its failures.

Downloads are served by a local ``http.server`` on 127.0.0.1 (a thread, random port): no internet needed.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import nullcontext as does_not_raise
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from visionkit import weights
from visionkit.catalog import ModelEntry, get_entry
from visionkit.errors import OptionError, WeightsError

PAYLOAD = b"visionkit test weights \x00\x01\x02" * 5000  # ~150 kB: several read blocks
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


def entry_for(file: str, url: str = "", sha256: str = "", name: str = "tiny") -> ModelEntry:
    return ModelEntry(name=name, task="detect", backend="onnx-ssd", file=file, url=url, sha256=sha256,
                      source="made up by the test")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on 127.0.0.1: (folder, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Downloads allowed, an empty weights folder and a private cache; returns the cache folder."""
    monkeypatch.delenv("VISIONKIT_OFFLINE", raising=False)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("VISIONKIT_WEIGHTS", str(tmp_path / "no-weights-here"))
    cache = tmp_path / "cache"
    monkeypatch.setenv("VISIONKIT_CACHE", str(cache))
    return cache


@pytest.fixture
def weights_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setenv("VISIONKIT_WEIGHTS", str(folder))
    monkeypatch.setenv("VISIONKIT_CACHE", str(tmp_path / "cache"))
    return folder


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


# -- local resolution -------------------------------------------------------------------------------------
def test_sha256_of(tmp_path: Path) -> None:
    f = tmp_path / "x.bin"
    f.write_bytes(PAYLOAD)
    assert weights.sha256_of(f) == PAYLOAD_SHA
    assert weights.sha256_of(f, chunk=7) == PAYLOAD_SHA


def test_explicit_path_wins_and_is_not_hash_checked(tmp_path: Path, weights_dir: Path) -> None:
    mine = tmp_path / "my_finetune.onnx"
    mine.write_bytes(b"not the official file")
    (weights_dir / "tiny.onnx").write_bytes(PAYLOAD)
    entry = entry_for("tiny.onnx", sha256=PAYLOAD_SHA)
    assert weights.resolve(entry, mine) == mine
    assert weights.resolve(entry, str(mine)) == mine


def test_explicit_path_missing(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="weights file not found: .*nope.onnx"):
        weights.resolve(entry_for("tiny.onnx"), tmp_path / "nope.onnx")


@pytest.mark.parametrize("given, error, message", [
    ([1], OptionError, "weights must be the path of a weights file, got [1]"),
    (5, OptionError, "weights must be the path of a weights file, got 5"),
    ("a" * 300 + ".onnx", WeightsError, "File name too long"),
    ("~nosuchuser/w.onnx", WeightsError, "~nosuchuser/w.onnx: no user 'nosuchuser' on this machine"),
])
def test_explicit_weights_that_name_no_file(given: object, error: type[Exception], message: str) -> None:
    """Each once escaped as a TypeError, OSError (ENAMETOOLONG) or RuntimeError (expanduser)."""
    with pytest.raises(error, match=re.escape(message)):
        weights.resolve(entry_for("tiny.onnx"), given)


def test_resolve_from_weights_dirs_in_order(tmp_path: Path, weights_dir: Path, monkeypatch) -> None:
    second = tmp_path / "second"
    second.mkdir()
    (second / "tiny.onnx").write_bytes(PAYLOAD)
    entry = entry_for("tiny.onnx", sha256=PAYLOAD_SHA)
    monkeypatch.setenv("VISIONKIT_WEIGHTS", os.pathsep.join([str(weights_dir), str(second)]))
    assert weights.resolve(entry) == second / "tiny.onnx"
    (weights_dir / "tiny.onnx").write_bytes(PAYLOAD)
    assert weights.resolve(entry) == weights_dir / "tiny.onnx"  # the first folder wins
    assert weights.availability(entry) == "local"


def test_resolve_from_cache(tmp_path: Path, weights_dir: Path) -> None:
    cache = weights.cache_dir()
    assert cache == tmp_path / "cache"
    cache.mkdir()
    (cache / "tiny.onnx").write_bytes(PAYLOAD)
    assert weights.resolve(entry_for("tiny.onnx", sha256=PAYLOAD_SHA)) == cache / "tiny.onnx"


def test_cache_dir_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("VISIONKIT_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert weights.cache_dir() == tmp_path / "xdg" / "visionkit"


def test_real_weights_resolve_and_verify(shared_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISIONKIT_WEIGHTS", str(shared_weights))
    for name in ("yolov5n", "ssd_mobilenet_v1_coco"):
        entry = get_entry(name)
        path = weights.resolve(entry)
        assert path == shared_weights / entry.file
        assert weights.sha256_of(path) == entry.sha256


@pytest.mark.parametrize(
    ("content", "pinned", "expected"),
    [
        (PAYLOAD, PAYLOAD_SHA, does_not_raise()),
        (PAYLOAD, PAYLOAD_SHA[:8], does_not_raise()),  # torchvision-style prefix
        (PAYLOAD, "", does_not_raise()),  # nothing pinned: nothing to check
        (PAYLOAD[:-1], PAYLOAD_SHA, pytest.raises(WeightsError)),  # truncated copy
        (b"garbage", PAYLOAD_SHA, pytest.raises(WeightsError)),
        (b"", PAYLOAD_SHA, pytest.raises(WeightsError)),
    ],
)
def test_verify_in_weights_dir(weights_dir: Path, content: bytes, pinned: str, expected) -> None:
    (weights_dir / "tiny.onnx").write_bytes(content)
    with expected as info:
        weights.resolve(entry_for("tiny.onnx", sha256=pinned))
    if info is not None:
        message = str(info.value)
        assert str(weights_dir / "tiny.onnx") in message and "not the official tiny weights" in message
        assert PAYLOAD_SHA[:16] in message and "delete it" in message


def test_corrupt_copy_of_a_real_catalog_file(shared_weights: Path, weights_dir: Path) -> None:
    entry = get_entry("ssd_mobilenet_v1_coco")
    data = bytearray((shared_weights / entry.file).read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    (weights_dir / entry.file).write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="not the official ssd_mobilenet_v1_coco weights"):
        weights.resolve(entry)


def test_hash_prefix_in_file_name_is_checked(weights_dir: Path) -> None:
    good = entry_for(f"net-{PAYLOAD_SHA[:8]}.pth")
    (weights_dir / good.file).write_bytes(PAYLOAD)
    assert weights.resolve(good) == weights_dir / good.file
    bad = entry_for("net-deadbeef.pth")
    (weights_dir / bad.file).write_bytes(PAYLOAD)
    with pytest.raises(WeightsError, match="deadbeef"):
        weights.resolve(bad)


def test_missing_without_url(weights_dir: Path) -> None:
    with pytest.raises(WeightsError) as info:
        weights.resolve(entry_for("absent.onnx"))
    message = str(info.value)
    assert "absent.onnx" in message and "VISIONKIT_WEIGHTS" in message and str(weights_dir) in message
    assert "no download URL" in message and "made up by the test" in message
    assert weights.availability(entry_for("absent.onnx")) == "missing"


def test_missing_real_model_without_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VISIONKIT_WEIGHTS", str(tmp_path))
    with pytest.raises(WeightsError, match="yolov5n.onnx .*VISIONKIT_WEIGHTS"):
        weights.resolve(get_entry("yolov5n"))


# -- downloads --------------------------------------------------------------------------------------------
def test_download_progress_hash_and_cache(http_root, online: Path, capsys: pytest.CaptureFixture) -> None:
    root, base = http_root
    (root / "tiny.onnx").write_bytes(PAYLOAD)
    entry = entry_for("tiny.onnx", url=f"{base}/tiny.onnx", sha256=PAYLOAD_SHA)
    assert weights.availability(entry) == "download"
    path = weights.resolve(entry)
    assert path == online / "tiny.onnx"
    assert path.read_bytes() == PAYLOAD
    assert sorted(p.name for p in online.iterdir()) == ["tiny.onnx"]  # no partial file left behind
    assert "downloading tiny.onnx" in capsys.readouterr().err  # the progress bar
    assert weights.availability(entry) == "local"
    # cached: the server no longer has it, resolve still works (and re-verifies)
    (root / "tiny.onnx").unlink()
    assert weights.resolve(entry) == path


def test_download_hash_mismatch_leaves_nothing(http_root, online: Path) -> None:
    root, base = http_root
    (root / "tiny.onnx").write_bytes(PAYLOAD + b"tampered")
    entry = entry_for("tiny.onnx", url=f"{base}/tiny.onnx", sha256=PAYLOAD_SHA)
    with pytest.raises(WeightsError, match="not the official tiny weights"):
        weights.resolve(entry)
    assert list(online.iterdir()) == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("{base}/missing.onnx", "not found"),
        ("http://127.0.0.1:{port}/tiny.onnx", "refused"),
    ],
)
def test_download_failures_are_quick_weights_errors(http_root, online: Path, url: str, reason: str) -> None:
    _, base = http_root
    entry = entry_for("tiny.onnx", url=url.format(base=base, port=_closed_port()), sha256=PAYLOAD_SHA)
    start = time.monotonic()
    with pytest.raises(WeightsError) as info:
        weights.resolve(entry)
    assert time.monotonic() - start < 5
    message = str(info.value)
    assert "could not download tiny.onnx" in message and entry.url in message
    assert reason in message.lower()
    assert "VISIONKIT_WEIGHTS" in message
    assert not online.exists() or list(online.iterdir()) == []


def test_offline_never_touches_the_network(http_root, online: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, base = http_root
    (root / "tiny.onnx").write_bytes(PAYLOAD)
    entry = entry_for("tiny.onnx", url=f"{base}/tiny.onnx", sha256=PAYLOAD_SHA)

    def no_network(*args, **kwargs):
        raise AssertionError("the network was used while offline")

    monkeypatch.setattr(weights.urllib.request, "urlopen", no_network)
    for value in ("1", "true", "YES"):
        monkeypatch.setenv("VISIONKIT_OFFLINE", value)
        with pytest.raises(WeightsError, match="tiny.onnx not found locally and VISIONKIT_OFFLINE is set"):
            weights.resolve(entry)
    assert not (online / "tiny.onnx").exists()


def test_unwritable_cache(http_root, online: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root, base = http_root
    (root / "tiny.onnx").write_bytes(PAYLOAD)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("VISIONKIT_CACHE", str(blocker / "cache"))
    with pytest.raises(WeightsError, match="cannot create weights cache"):
        weights.resolve(entry_for("tiny.onnx", url=f"{base}/tiny.onnx", sha256=PAYLOAD_SHA))


def test_cached_file_is_reverified_for_each_entry(http_root, online: Path) -> None:
    """A file downloaded once serves a second entry with the same file name only if the hash still fits."""
    root, base = http_root
    (root / "tiny.onnx").write_bytes(PAYLOAD)
    weights.resolve(entry_for("tiny.onnx", url=f"{base}/tiny.onnx", sha256=PAYLOAD_SHA))
    other = entry_for("tiny.onnx", url=f"{base}/tiny.onnx", sha256="0" * 64, name="other")
    with pytest.raises(WeightsError, match="not the official other weights"):
        weights.resolve(other)


@pytest.mark.parametrize("model", ["~nosuchuser/x.pt", "a" * 300 + ".pt"])
def test_model_path_the_os_cannot_look_up(model: str) -> None:
    """An unknown ~user or a name too long for the OS: a WeightsError naming it, not RuntimeError/OSError."""
    import visionkit

    with pytest.raises(WeightsError, match="no user 'nosuchuser'|File name too long"):
        visionkit.load("detect", model)
