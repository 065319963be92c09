"""An http(s) URL of an image is one image, not a video stream (issue #15 item 8): a real ``http.server`` on
127.0.0.1 serves a shared photo by name and from a suffix-less ``/snapshot`` endpoint (image/jpeg), a 404, a page
named like an image, and an MJPEG stream, which stays a live video source."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest
from fault_harness import Fault, assert_jsonl_valid, check_fault, run_cli
from mjpeg_server import MjpegServer

from visionkit.io.http import serves_image
from visionkit.io.sources import UrlImageSource, VideoSource, is_live, open_source


class _Handler(SimpleHTTPRequestHandler):
    """Files of the folder, plus ``/snapshot`` (no suffix) answered as image/jpeg, as IP cameras do."""

    def translate_path(self, path: str) -> str:
        return super().translate_path("/bus.jpg" if path.startswith("/snapshot") else path)

    def guess_type(self, path: str) -> str:
        return "text/html" if path.endswith("page.jpg") else super().guess_type(path)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server(assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("www")
    shutil.copy(assets / "bus.jpg", root)
    (root / "page.jpg").write_text("<html>not an image</html>")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("path", ["/bus.jpg", "/bus.jpg?size=large", "/snapshot"])
def test_an_image_url_is_one_still(server: str, assets: Path, path: str) -> None:
    url = server + path
    source = open_source(url)
    assert isinstance(source, UrlImageSource) and len(source) == 1
    (frame,) = list(source)
    assert np.array_equal(frame.image, cv2.imread(str(assets / "bus.jpg")))
    assert frame.source == url and not frame.is_video and frame.index == 0
    assert not is_live(url) or path == "/snapshot"  # by suffix; the endpoint is known an image only once asked


def test_an_mjpeg_stream_stays_a_video(assets: Path) -> None:
    with MjpegServer([cv2.imread(str(assets / "bus.jpg"))]) as mjpeg:
        live = mjpeg.url.replace("/video.mjpg", "/live")  # no suffix: asked, and it answers multipart
        assert not serves_image(live)
        assert isinstance(open_source(live, reconnect=0), VideoSource)


def test_cli_detects_on_an_image_url(server: str, tmp_path: Path, shared_weights: Path) -> None:
    url = server + "/bus.jpg"
    outcome = run_cli("detect", url, "-m", "ssd_mobilenet_v1_coco", "--json", tmp_path / "r.jsonl",
                      env={"VISIONKIT_WEIGHTS": str(shared_weights)})
    assert outcome.code == 0, outcome.stderr
    (record,) = assert_jsonl_valid(tmp_path / "r.jsonl")
    assert record["source"] == url and record["frame_index"] == 0 and "timestamp" not in record
    assert [d["class_name"] for d in record["detections"]].count("person") >= 3  # as on the file itself


@pytest.mark.parametrize(("path", "says"), [("/missing.jpg", "HTTP 404"),
                                            ("/page.jpg", "not a decodable image (the server sent text/html")])
def test_bad_image_urls_are_one_line(server: str, path: str, says: str, shared_weights: Path) -> None:
    check_fault(Fault(path, ["detect", server + path, "-m", "ssd_mobilenet_v1_coco", "-q"], 1, says,
                      env={"VISIONKIT_WEIGHTS": str(shared_weights)}))


def test_an_unreachable_image_url_is_one_line(shared_weights: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    check_fault(Fault("refused", ["detect", f"http://127.0.0.1:{port}/a.png", "-m", "ssd_mobilenet_v1_coco", "-q"],
                      1, "cannot connect (Connection refused)", env={"VISIONKIT_WEIGHTS": str(shared_weights)}))
