"""A real MJPEG-over-HTTP server on 127.0.0.1 (``multipart/x-mixed-replace`` of JPEG frames, as IP cameras serve
them) that a test can stop and restart on the same port, to make a network stream drop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

BOUNDARY = "visionkitframe"


class MjpegServer:
    """Serves ``images`` in a loop at ``fps``, continuing where it was after a restart; stops itself after
    ``max_seconds`` at the latest. ``sent`` counts the frames written so far."""

    def __init__(self, images: list[np.ndarray], fps: float = 20.0, max_seconds: float = 120.0):
        self.jpegs = [cv2.imencode(".jpg", image)[1].tobytes() for image in images]
        self.fps = fps
        self.sent = 0
        self.port = 0
        self._deadline = time.monotonic() + max_seconds
        self._running = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/video.mjpg"

    def start(self) -> MjpegServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.end_headers()
                try:
                    while server._running.is_set() and time.monotonic() < server._deadline:
                        jpeg = server.jpegs[server.sent % len(server.jpegs)]
                        self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}"
                                         "\r\n\r\n".encode() + jpeg + b"\r\n")
                        self.wfile.flush()
                        server.sent += 1
                        time.sleep(1.0 / server.fps)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._running.set()
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        """Drop every client and stop listening (connections are refused until ``start``)."""
        self._running.clear()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        time.sleep(2.0 / self.fps)  # handlers see the flag and close their connections

    def stop_after(self, frames: int, then: Callable[[], None] | None = None) -> None:
        """Stop once ``frames`` frames have been sent in all (then call ``then``), from a watcher thread."""
        def watch() -> None:
            while self.sent < frames and time.monotonic() < self._deadline:
                time.sleep(0.01)
            self.stop()
            if then is not None:
                then()

        threading.Thread(target=watch, daemon=True).start()

    def __enter__(self) -> MjpegServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
