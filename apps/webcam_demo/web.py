"""Browser mode: a starlette app serving a page, the live annotated stream (MJPEG) and JSON controls.

A processing thread runs the capture -> engine loop and publishes the newest JPEG; every viewer gets the
newest frame when it is ready (viewers never queue frames either). Bound to 127.0.0.1 unless told otherwise;
only the page it serves may change its state (guard.py).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import cv2

import visionkit
from visionkit.interrupts import stop_gracefully

try:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.datastructures import Headers
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
    from starlette.routing import Route
    from starlette.types import ASGIApp, Receive, Scope, Send
except ModuleNotFoundError as e:  # --serve on an install without the extra: say what to install
    raise visionkit.VisionkitError(f"--serve needs the web extra ({e.name} is not installed): "
                                   "pip install 'visionkit[web]'") from None

from .capture import Captured
from .engine import TASKS, DemoEngine
from .guard import Guard, Refused, check_content_type, check_fields, read_object
from .modes import save_snapshot

JPEG_QUALITY = 80
CONTROL_FIELDS = {"task": str, "model": str, "paused": bool}  # POST /control: each optional, nothing else


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


def create_app(engine: DemoEngine, latest: LatestJpeg, snapshots: Path, guard: Guard) -> Starlette:
    """The demo's routes: GETs only read; the two POSTs follow ``guard``'s rules (see guard.py)."""
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

    async def control(body: dict[str, Any]) -> JSONResponse:
        task = body.get("task", engine.task)
        if task not in TASKS:
            raise Refused(400, f"unknown task {task!r}: expected one of {', '.join(TASKS)}")
        model = body.get("model")
        if model is not None and not engine.accepts_model(task, model):
            raise Refused(400, f"model {model!r} is neither a catalog model for {task} (see `visionkit models`) "
                               "nor the --model file the demo was started with")
        if "task" in body or "model" in body:
            try:
                await asyncio.to_thread(engine.set_task, task, model)
            except visionkit.VisionkitError as e:  # weights missing here or unloadable: tell the page
                raise Refused(400, str(e).splitlines()[0]) from None
        if "paused" in body:
            engine.paused = body["paused"]
        return JSONResponse(engine.snapshot())

    async def snapshot(body: dict[str, Any]) -> JSONResponse:
        if latest.image is None:
            raise Refused(409, "no frame yet")
        try:
            path = await asyncio.to_thread(save_snapshot, latest.image, snapshots)
        except visionkit.SinkError as e:  # the server's disk, not the request: still one line, no traceback
            return error_response(500, str(e))
        return JSONResponse({"saved": str(path)})

    def command(act: Callable[[dict[str, Any]], Awaitable[JSONResponse]],
                fields: dict[str, type]) -> Callable[[Request], Awaitable[JSONResponse]]:
        """A state-changing POST endpoint: the request passes the guard, then ``act`` gets its checked body."""

        async def endpoint(request: Request) -> JSONResponse:
            try:
                guard.check_origin(request.headers, request.scope.get("server"))
                check_content_type(request.headers)
                body = await read_object(request.headers, request.stream())
                check_fields(body, fields)
                return await act(body)
            except Refused as e:
                return error_response(e.status, e.reason)
            except ClientDisconnect:
                return error_response(400, "the client went away before sending its request")

        return endpoint

    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:  # 404, 405 (with Allow) as JSON
        return error_response(exc.status_code, exc.detail, exc.headers)

    routes = [Route("/", index), Route("/stream.mjpg", stream), Route("/frame.jpg", frame), Route("/stats", stats),
              Route("/control", command(control, CONTROL_FIELDS), methods=["POST"]),
              Route("/snapshot", command(snapshot, {}), methods=["POST"])]
    return Starlette(routes=routes, middleware=[Middleware(HostCheck, guard=guard)],
                     exception_handlers={HTTPException: http_error})


def error_response(status: int, reason: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status, headers=headers)


class HostCheck:
    """ASGI middleware: any request whose ``Host`` is not the served address gets a 403 before routing, so a
    DNS-rebinding page can neither read the stream nor reach the controls."""

    def __init__(self, app: ASGIApp, guard: Guard):
        self.app, self.guard = app, guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:
                self.guard.check_host(Headers(scope=scope), scope.get("server"))
            except Refused as e:
                await error_response(e.status, e.reason)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def serve(engine: DemoEngine, frames: Iterator[Captured], host: str, port: int, snapshots: Path,
          log: Any) -> None:
    latest = LatestJpeg()
    processor = Processor(engine, frames, latest)
    processor.start()
    app = create_app(engine, latest, snapshots, Guard(host))
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    shown = f"[{host}]" if ":" in host else host
    log(f"serving the live view on http://{shown}:{port}/ (Ctrl-C stops)")

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
