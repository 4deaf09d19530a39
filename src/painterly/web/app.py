"""The HTTP side of ``painterly serve``: a FastAPI app around :func:`painterly.run`.

Endpoints (JSON unless said otherwise; errors are ``{"detail": "one line"}``):

=====================================  =====================================================
``GET  /``                             the page (``static/index.html``)
``GET  /static/{name}``                its scripts (``js/*.js``), style sheet and icon, by
                                       fixed name
``GET  /api/options``                  the form: :class:`~painterly.config.Options` fields,
                                       presets, the server's limits and the constants the
                                       page shares with it
``POST /api/uploads?name=FILE``        an image as the raw request body -> its id
``GET  /api/uploads/{id}/thumb``       a small JPEG of an upload
``GET  /api/models``                   the fast models on offer, with their metadata
``POST /api/jobs``                     ``{content, styles: [{id, weight}], preset,
                                       options}`` or ``{content, model, options}``
                                       -> the queued job
``GET  /api/jobs``                     recent jobs, newest first
``GET  /api/jobs/{id}``                one job, with its whole loss history
``GET  /api/jobs/{id}/events``         server-sent events: the job each time it changes
``GET  /api/jobs/{id}/preview``        the latest preview (JPEG) while it runs
``GET  /api/jobs/{id}/result``         the result (PNG with the run's settings), to download
``GET  /api/jobs/{id}/thumb``          a small JPEG of the result
``POST /api/jobs/{id}/cancel``         take it out of line, or stop it keeping the latest image
=====================================  =====================================================

Uploads are raw bodies rather than multipart forms so that the size limit holds while the
bytes arrive and nothing is spooled to a temporary file outside the data directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sys
import time
from collections.abc import Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.responses import StreamingResponse

import painterly
from painterly.errors import OptionsError
from painterly.paintings import PAINTINGS
from painterly.paintings import path as painting_path
from painterly.web.config import ServeConfig
from painterly.web.form import options_schema
from painterly.web.jobs import TERMINAL, Job, JobManager, QueueFull, Runner
from painterly.web.limits import LOOPBACK, Guard, Limits, allowed_hosts, server_config
from painterly.web.models import ModelShelf
from painterly.web.requests import JobRequest, job_of
from painterly.web.uploads import (
    UploadRejected,
    UploadStore,
    clean_name,
)

EVENT_POLL_S = 0.1
KEEP_ALIVE_S = 15.0


def _scripts() -> dict[str, str]:
    """The page's ES modules (``static/js/*.js``), by the name the page asks for. Module
    scripts run only when served with a JavaScript MIME type."""
    folder = resources.files("painterly.web") / "static" / "js"
    return {f"js/{p.name}": "text/javascript" for p in folder.iterdir() if p.name.endswith(".js")}


STATIC = {"app.css": "text/css", "icon.svg": "image/svg+xml", **_scripts()}
"""What ``/static/`` serves: a fixed set of names, each with its MIME type."""


def default_data_dir() -> Path:
    """$PAINTERLY_DATA/web, else $XDG_DATA_HOME/painterly/web, else
    ~/.local/share/painterly/web."""
    if os.environ.get("PAINTERLY_DATA"):
        return Path(os.environ["PAINTERLY_DATA"]).expanduser() / "web"
    if os.environ.get("XDG_DATA_HOME"):
        return Path(os.environ["XDG_DATA_HOME"]).expanduser() / "painterly" / "web"
    return Path.home() / ".local" / "share" / "painterly" / "web"


def _static(name: str) -> bytes:
    return (resources.files("painterly.web") / "static" / name).read_bytes()


def _download_name(job: Job) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", job.content["name"].rsplit(".", 1)[0]).strip("-")
    return f"{stem[:40] or 'painterly'}-painterly-{job.id[:6]}.png"


def create_app(
    data_dir: str | os.PathLike,
    *,
    limits: Limits | None = None,
    runner: Runner = painterly.run,
    host: str = "127.0.0.1",
    allowed_host: tuple[str, ...] = (),
    models: Sequence[str | os.PathLike] = (),
) -> FastAPI:
    """The app, keeping everything it writes under ``data_dir``.

    ``runner`` is :func:`painterly.run` or a stand-in with its signature (the tests pass
    one with a tiny encoder). ``host`` is the address it is served on; requests must
    name it, a loopback name or one of ``allowed_host`` in their Host header. The fast
    models offered are the cache's (``painterly models``) and those in ``models``.
    """
    limits = limits or Limits()
    data = Path(data_dir)
    uploads = UploadStore(data / "uploads", limits)
    shelf = ModelShelf(models)
    manager = JobManager(data / "jobs", uploads, limits, runner, shelf)
    uploads.in_use = manager.in_use

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await run_in_threadpool(manager.stop)

    app = FastAPI(title="painterly", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.manager = manager
    app.state.uploads = uploads
    app.state.limits = limits
    app.add_middleware(Guard, hosts=allowed_hosts(host, allowed_host), limits=limits)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"{where}: {first.get('msg', 'invalid')}" if where else "invalid request"
        return JSONResponse({"detail": message}, status_code=422)

    def _job(job_id: str) -> Job:
        try:
            return manager.get(job_id)
        except KeyError:
            raise HTTPException(404, "no such job") from None

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(_static("index.html"), headers={"Cache-Control": "no-cache"})

    @app.get("/static/{name:path}")
    def static(name: str) -> Response:
        if name not in STATIC:
            raise HTTPException(404, "not found")
        return Response(_static(name), media_type=STATIC[name])

    @app.get("/api/options")
    def get_options() -> dict:
        return options_schema(limits)

    # response_model: the schema of the dict it answers with; a Response goes out as it is.
    @app.post("/api/uploads", status_code=201, response_model=dict)
    async def upload(request: Request, name: str = "image") -> dict | Response:
        label = clean_name(name)
        length = request.headers.get("content-length")
        try:
            upload_id, part = await uploads.receive(
                request.stream(), label, int(length) if length and length.isdigit() else None
            )
            return await run_in_threadpool(uploads.accept, upload_id, part, label)
        except UploadRejected as err:
            raise HTTPException(err.status, str(err)) from None
        except ClientDisconnect:  # the page went away mid-upload; the part file is gone
            return Response(status_code=400)

    @app.get("/api/uploads/{upload_id}/thumb")
    def upload_thumb(upload_id: str) -> FileResponse:
        try:
            return FileResponse(uploads.thumb(upload_id), media_type="image/jpeg")
        except KeyError:
            raise HTTPException(404, "no such upload") from None

    @app.get("/api/uploads/{upload_id}/view")
    def upload_view(upload_id: str) -> FileResponse:
        try:
            path, media_type = uploads.view(upload_id)
            return FileResponse(path, media_type=media_type)
        except KeyError:
            raise HTTPException(404, "no such upload") from None

    @app.get("/api/models")
    def get_models() -> list[dict]:
        return shelf.listing()

    @app.get("/api/paintings")
    def get_paintings() -> list[dict]:
        """The paintings that ship with painterly, for the page's gallery."""
        return [
            {"name": p.name, "title": p.title, "artist": p.artist, "year": p.year}
            for p in PAINTINGS
        ]

    @app.get("/api/paintings/{name}/image")
    def painting_image(name: str) -> FileResponse:
        try:
            return FileResponse(painting_path(name), media_type="image/jpeg")
        except KeyError:
            raise HTTPException(404, "no such painting") from None

    @app.post("/api/paintings/{name}", status_code=201)
    async def use_painting(name: str) -> dict:
        """The bundled painting ``name`` as an upload, to paint with like any other."""
        try:
            source = painting_path(name)
        except KeyError:
            raise HTTPException(404, "no such painting") from None
        try:
            return await run_in_threadpool(uploads.copy_in, source, source.name)
        except UploadRejected as err:
            raise HTTPException(err.status, str(err)) from None

    @app.post("/api/jobs", status_code=201)
    def create_job(req: JobRequest) -> dict:
        job = job_of(req, uploads, limits, shelf)
        try:
            manager.submit(job)
        except QueueFull as err:
            raise HTTPException(503, str(err)) from None
        return manager.snapshot(job)

    @app.get("/api/jobs")
    def list_jobs() -> list[dict]:
        return manager.recent()

    @app.get("/api/jobs/{job_id}")
    def get_job(job_id: str) -> dict:
        return manager.snapshot(_job(job_id))

    @app.post("/api/jobs/{job_id}/cancel")
    def cancel_job(job_id: str) -> dict:
        job = _job(job_id)
        manager.cancel(job)
        return manager.snapshot(job)

    @app.get("/api/jobs/{job_id}/events")
    async def job_events(job_id: str, request: Request) -> StreamingResponse:
        job = _job(job_id)

        async def stream():
            yield "retry: 1500\n\n"
            sent, history_sent, beat = None, 0, time.monotonic()
            while True:
                mark = manager.mark(job)
                if mark != sent:
                    sent = mark
                    snap = manager.snapshot(job, history_from=history_sent)
                    history_sent += len(snap["history"])
                    yield f"data: {json.dumps(snap)}\n\n"
                    beat = time.monotonic()
                    if snap["status"] in TERMINAL:
                        return
                elif time.monotonic() - beat > KEEP_ALIVE_S:
                    yield ": still here\n\n"
                    beat = time.monotonic()
                if await request.is_disconnected():
                    return
                await asyncio.sleep(EVENT_POLL_S)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get("/api/jobs/{job_id}/preview")
    def job_preview(job_id: str) -> Response:
        data = _job(job_id).preview
        if data is None:
            raise HTTPException(404, "no preview yet")
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.get("/api/jobs/{job_id}/result")
    def job_result(job_id: str) -> FileResponse:
        job = _job(job_id)
        if not job.has_result:
            raise HTTPException(404, "this job has no result yet")
        return FileResponse(
            manager.result_path(job), media_type="image/png", filename=_download_name(job)
        )

    @app.get("/api/jobs/{job_id}/thumb")
    def job_thumb(job_id: str) -> FileResponse:
        job = _job(job_id)
        if not job.has_result:
            raise HTTPException(404, "this job has no result yet")
        return FileResponse(manager.thumb_path(job), media_type="image/jpeg")

    return app


# --------------------------------------------------------------------------- serving


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (0: any free port), or OptionsError."""
    if not 0 <= port <= 65535:
        raise OptionsError(f"--port {port} is out of range; use 1 to 65535 (0: any free port)")
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as err:
        raise OptionsError(f"--host {host} is not an address here ({err.strerror})") from None
    sock = socket.socket(info[0], socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(info[4])
        sock.listen(128)
    except OSError as err:
        sock.close()
        raise OptionsError(
            f"cannot listen on {host}:{port} ({err.strerror}); choose another --port"
        ) from None
    return sock


def serve(settings: ServeConfig | None = None) -> None:
    """Serve the page until Ctrl-C. Binds ``127.0.0.1`` unless told otherwise; offers
    the cache's fast models and those in the folders ``settings.models``."""
    settings = settings or ServeConfig()
    host, port, allowed_host = settings.host, settings.port, settings.allowed_host
    data = Path(settings.data_dir).expanduser() if settings.data_dir else default_data_dir()
    folders = [Path(m).expanduser() for m in settings.models]
    for folder in folders:
        if not folder.is_dir():
            raise OptionsError(f"--models {folder} is not a folder of fast models")
    sock = listen(host, port)
    try:
        data.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        sock.close()
        raise OptionsError(
            f"cannot use {data} for the web app's files ({err.strerror}); choose --data-dir"
        ) from None
    limits = Limits(return_memory_after_jobs=True)
    app = create_app(data, host=host, limits=limits, allowed_host=allowed_host, models=folders)
    shown = f"[{host}]" if ":" in host else host
    print(
        f"painterly: serving http://{shown}:{sock.getsockname()[1]}/ "
        f"(files in {data}); press Ctrl-C to stop",
        file=sys.stderr,
    )
    if host.strip("[]") not in LOOPBACK:
        names = ", ".join(sorted(allowed_hosts(host, allowed_host)))
        print(
            f"painterly: warning: listening on {host}: anyone who can reach this machine can "
            f"use the page and see its pictures. Requests must name one of these hosts: "
            f"{names} (add the names people use with --allowed-host NAME)",
            file=sys.stderr,
        )
    config = server_config(
        app, limits, log_level="warning", access_log=False, timeout_graceful_shutdown=3
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn passes Ctrl-C on once it has shut down cleanly
        pass
    finally:
        sock.close()
