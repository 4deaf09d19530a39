"""A real painterly web server on a loopback port, for the web tests.

The server runs the real app (uvicorn, real HTTP) in a thread; only the encoder is the
tiny stand-in, and a job can be slowed down so that a test can act while it runs.
"""

from __future__ import annotations

import http.client
import io
import json
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import uvicorn
from PIL import Image
from synthetic import tiny_encoder

import painterly
from painterly.events import Progress
from painterly.web.app import create_app, listen
from painterly.web.limits import server_config


class PacedRun:
    """painterly.run with the tiny encoder, sleeping ``pause`` seconds after each step."""

    def __init__(self, pause: float = 0.0):
        self.encoder = tiny_encoder()
        self.pause = pause

    def __call__(self, content, styles, *, callback, **kwargs):
        def paced(event):
            callback(event)
            if self.pause and isinstance(event, Progress):
                time.sleep(self.pause)

        return painterly.run(content, styles, callback=paced, encoder=self.encoder, **kwargs)


class Server:
    """The app served on 127.0.0.1, any free port; stop() shuts it down cleanly."""

    def __init__(self, data_dir, runner=None, port: int = 0, **app_kwargs):
        self.app = create_app(data_dir, runner=runner or PacedRun(), **app_kwargs)
        sock = listen("127.0.0.1", port)  # 0: any free port
        self.port = sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        config = server_config(
            self.app, self.app.state.limits, log_level="warning", timeout_graceful_shutdown=1
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    # ------------------------------------------------------------------ HTTP

    def request(self, method: str, path: str, body=None, headers=None):
        """(status, headers, body bytes) of one request; never raises on 4xx/5xx.

        A POST carries the page's own Origin, as a browser's fetch() does, unless
        ``headers`` names another (or ``None`` to send none)."""
        headers = dict(headers or {})
        if method not in ("GET", "HEAD") and "Origin" not in headers:
            headers["Origin"] = self.base
        headers = {k: v for k, v in headers.items() if v is not None}
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            # The server may answer before the whole body is in (a 413); it then reads and
            # drops the rest for a while, so that sending it all never fails.
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def json(self, method: str, path: str, data=None):
        """(status, parsed JSON) of a request with an optional JSON body."""
        body = None if data is None else json.dumps(data)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        status, _, raw = self.request(method, path, body, headers)
        return status, json.loads(raw)

    def upload(self, data: bytes, name: str = "image.png"):
        status, _, raw = self.request(
            "POST", f"/api/uploads?name={name}", data, {"Content-Type": "image/png"}
        )
        return status, json.loads(raw)

    def start(self, content_id: str, style_ids: list[str], **options):
        return self.json(
            "POST",
            "/api/jobs",
            {"content": content_id, "styles": [{"id": s} for s in style_ids], "options": options},
        )

    def events(self, job_id: str) -> Iterator[dict]:
        """The job's server-sent events, parsed, until the server ends the stream."""
        url = urlsplit(f"{self.base}/api/jobs/{job_id}/events")
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        try:
            conn.request("GET", url.path)
            resp = conn.getresponse()
            assert resp.status == 200
            assert resp.getheader("content-type").startswith("text/event-stream")
            for line in resp:
                if line.startswith(b"data:"):
                    yield json.loads(line[5:])
        finally:
            conn.close()

    def wait(self, job_id: str, until) -> dict:
        """The first event for which ``until(snapshot)`` is true."""
        for snap in self.events(job_id):
            if until(snap):
                return snap
        raise AssertionError(f"the event stream ended before the condition held: {snap}")


def png_bytes(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()
