"""Browser mode: a starlette app serving a page, the live annotated stream (MJPEG) and JSON controls.

A processing thread runs the capture -> engine loop and publishes the newest JPEG; every viewer gets the
newest frame when it is ready (viewers never queue frames either). Bound to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import cv2

from visionkit.interrupts import stop_gracefully

from .capture import Captured
from .engine import DemoEngine
from .modes import save_snapshot

JPEG_QUALITY = 80


class LatestJpeg:
    """The newest encoded frame and a sequence number viewers wait on."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.seq = 0
        self.jpeg = b""
        self.image: Any = None
        self.closed = False

    def publish(self, image: Any) -> None:
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            return
        with self._cond:
            self.seq += 1
            self.jpeg, self.image = buf.tobytes(), image
            self._cond.notify_all()

    def wait_newer(self, seq: int, timeout: float = 1.0) -> tuple[int, bytes]:
        with self._cond:
            self._cond.wait_for(lambda: self.seq > seq or self.closed, timeout=timeout)
            return self.seq, self.jpeg

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


class Processor(threading.Thread):
    """capture -> engine -> LatestJpeg, until the frames end or ``stop()``."""

    def __init__(self, engine: DemoEngine, frames: Iterator[Captured], latest: LatestJpeg):
        super().__init__(name="visionkit-demo-processor", daemon=True)
        self.engine, self.frames, self.latest = engine, frames, latest
        self.error: BaseException | None = None
        self._stopping = threading.Event()  # not _stop: that is a threading.Thread method

    def run(self) -> None:
        try:
            for item in self.frames:
                if self._stopping.is_set():
                    break
                if not self.engine.paused:
                    annotated, _ = self.engine.process(item.frame.image, item.captured_at)
                    self.latest.publish(annotated)
        except BaseException as e:  # reported by the server loop
            self.error = e
        finally:
            self.latest.close()

    def stop(self) -> None:
        self._stopping.set()


def create_app(engine: DemoEngine, latest: LatestJpeg, snapshots: Path) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    page = resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(page)

    async def stream(request: Request) -> StreamingResponse:
        async def parts() -> AsyncIterator[bytes]:
            seq = 0
            while not latest.closed and not await request.is_disconnected():
                seq, jpeg = await asyncio.to_thread(latest.wait_newer, seq)
                if jpeg:
                    yield (b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " + str(len(jpeg)).encode()
                           + b"\r\n\r\n" + jpeg + b"\r\n")

        return StreamingResponse(parts(), media_type="multipart/x-mixed-replace; boundary=frame",
                                 headers={"Cache-Control": "no-store"})

    async def frame(request: Request) -> Response:
        return Response(latest.jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse(engine.snapshot())

    async def control(request: Request) -> JSONResponse:
        body = await request.json()
        try:
            if "task" in body or "model" in body:
                await asyncio.to_thread(engine.set_task, body.get("task", engine.task), body.get("model"))
            if "paused" in body:
                engine.paused = bool(body["paused"])
        except Exception as e:  # a bad task/model name, or weights that cannot load: tell the page
            return JSONResponse({"error": str(e).splitlines()[0], **engine.snapshot()}, status_code=400)
        return JSONResponse(engine.snapshot())

    async def snapshot(request: Request) -> JSONResponse:
        if latest.image is None:
            return JSONResponse({"error": "no frame yet"}, status_code=409)
        path = save_snapshot(latest.image, snapshots)
        return JSONResponse({"saved": str(path)})

    return Starlette(routes=[Route("/", index), Route("/stream.mjpg", stream), Route("/frame.jpg", frame),
                             Route("/stats", stats), Route("/control", control, methods=["POST"]),
                             Route("/snapshot", snapshot, methods=["POST"])])


def serve(engine: DemoEngine, frames: Iterator[Captured], host: str, port: int, snapshots: Path,
          log: Any) -> None:
    import uvicorn

    latest = LatestJpeg()
    processor = Processor(engine, frames, latest)
    processor.start()
    config = uvicorn.Config(create_app(engine, latest, snapshots), host=host, port=port, log_level="warning")
    server = uvicorn.Server(config)
    log(f"serving the live view on http://{host}:{port}/ (Ctrl-C stops)")

    async def run() -> None:
        task = asyncio.create_task(server.serve())
        while not task.done():  # stop the server when the source ends
            if not processor.is_alive():
                server.should_exit = True
            await asyncio.sleep(0.2)
        await task

    def shut_down() -> None:
        server.should_exit = True

    try:
        # uvicorn shuts down on SIGINT/SIGTERM by itself, then re-raises the signal; SIGHUP has it shut down too.
        # The stop is raised after the event loop has ended, so the demo exits as the other commands do.
        with stop_gracefully(shut_down):
            asyncio.run(run())
    finally:
        processor.stop()
        latest.close()
        processor.join(timeout=5)
    if processor.error is not None:
        raise processor.error
