"""A real RTSP server on 127.0.0.1 for the reconnect tests: GStreamer's RTSP server (Debian's python3-gi and
gir1.2-gst-rtsp-server-1.0) serving a live 10 fps test pattern as RTP/JPEG at rtsp://127.0.0.1:PORT/test.

The server runs under the system Python that has ``gi`` (not the project's venv), as
``python3 rtsp_server.py PORT [SECONDS]``: it prints ``ready`` once it listens and stops itself after SECONDS
(default 60). ``RtspServer`` starts it from a test, kills it to make the stream drop and starts it again on the
same port.
"""

from __future__ import annotations

import socket
import subprocess
import sys

SYSTEM_PYTHON = "/usr/bin/python3"  # where Debian's python3-gi installs gi
PIPELINE = ("( videotestsrc is-live=true pattern=ball ! video/x-raw,format=I420,width=320,height=240,framerate=10/1"
            " ! jpegenc ! rtpjpegpay name=pay0 pt=26 )")
PROBE = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"


def available() -> bool:
    """Whether the system Python can run the server (GStreamer's RTSP server and its Python bindings)."""
    try:
        return subprocess.run([SYSTEM_PYTHON, "-c", PROBE], capture_output=True, timeout=30).returncode == 0
    except OSError:
        return False


class RtspServer:
    """The server as a child process on a fixed free port; ``stop`` kills it (clients see the stream drop)."""

    def __init__(self, seconds: float = 60.0):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.seconds = seconds
        self._proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/test"

    def start(self) -> RtspServer:
        self._proc = subprocess.Popen([SYSTEM_PYTHON, __file__, str(self.port), str(self.seconds)],
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        ready = self._proc.stdout.readline().strip() if self._proc.stdout else ""
        assert ready == "ready", f"RTSP server did not start (said {ready!r})"
        return self

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)


def main(port: str, seconds: float) -> None:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(PIPELINE)
    factory.set_shared(True)
    server.get_mount_points().add_factory("/test", factory)
    server.attach(None)
    loop = GLib.MainLoop()
    GLib.timeout_add(int(seconds * 1000), loop.quit)
    print("ready", flush=True)
    loop.run()


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 60.0)
