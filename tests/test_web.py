"""`painterly serve`: the web app's endpoints over real HTTP on loopback.

Jobs run the real painterly.run with the tiny stand-in encoder on small synthetic images,
so each takes well under a second of compute; a paced runner keeps one going while a
test cancels it or queues others behind it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict

import pytest
from PIL import Image
from synthetic import blob, default_sigint, stripes, tiny_encoder
from webserver import PacedRun, png_bytes

import painterly
from painterly.cli import build_parser
from painterly.cli.common import given_settings
from painterly.config import PRESETS, option_fields
from painterly.encoders.cache import cache_dir
from painterly.encoders.registry import REGISTRY
from painterly.errors import OptionsError
from painterly.events import Progress, Stop
from painterly.web import Limits, jobs, uploads
from painterly.web.app import STATIC, listen
from painterly.web.config import ServeConfig
from painterly.web.models import MODEL_FIELDS

TERMINAL = ("done", "cancelled", "failed")
FAST = {"size": 64, "steps": 5}


@pytest.fixture
def images(serve):
    """A server with a photo and a painting already uploaded: (server, photo id, style id)."""

    def make(runner=None, **kwargs):
        server = serve(runner, **kwargs)
        status, photo = server.upload(png_bytes(blob()), "photo.png")
        assert status == 201, photo
        status, painting = server.upload(png_bytes(stripes()), "painting.png")
        assert status == 201, painting
        return server, photo["id"], painting["id"]

    return make


def files_under(path) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), path) for d, _, fs in os.walk(path) for f in fs}


# --------------------------------------------------------------------------- the form


def test_options_form_is_built_from_the_options_dataclass(serve, monkeypatch):
    server = serve()
    status, schema = server.json("GET", "/api/options")
    assert status == 200
    fields = {f["name"]: f for f in schema["fields"]}
    for f in option_fields():
        if f.name in fields:
            assert fields[f.name]["help"] == f.metadata["help"]
        else:  # a text field is offered only with a menu of values that are not paths
            not_offered = ("str", "str | None", "tuple[str, ...]", "tuple[float, ...]")
            not_offered += ("tuple[int, ...]",)  # free-form lists: --scale-steps
            assert f.name == "preset" or str(f.type) in not_offered, f.name
    assert {"init", "weights", "style_layers", "optimizer", "height", "time_limit"} <= set(fields)
    # what people reach for at once; the loss weights are for those who open "More"
    main = {name for name, f in fields.items() if f["main"]}
    assert {"size", "steps", "strength", "style_loss", "preserve_color", "seed"} <= main
    assert not {"style_weight", "content_weight", "tv_weight"} & main
    assert [name for name, f in fields.items() if f["slider"]] == ["strength"]
    assert schema["presets"] == json.loads(
        json.dumps({name: asdict(p) for name, p in PRESETS.items()})
    )
    # String options reach the core only as menu choices, never as file paths.
    assert "offline" in fields["weights"]["choices"]
    assert fields["init"]["choices"] == ["content", "noise", "style-colors"]
    assert "mask" not in fields and "protect" not in fields  # paths
    assert fields["size"]["max"] == schema["limits"]["max_side"]
    # The form opens on the preset that will run: `offline` while no pretrained weights
    # are cached (the run would fall back to that encoder), `default` once they are.
    assert schema["default_preset"] == "offline"
    cached = cache_dir() / "weights" / REGISTRY["vgg19"].filename
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(b"stands in for the weights file")
    # not the published file: a run would not use it
    assert server.json("GET", "/api/options")[1]["default_preset"] == "offline"
    stand_in = hashlib.md5(cached.read_bytes()).hexdigest()
    monkeypatch.setitem(REGISTRY, "vgg19", dataclasses.replace(REGISTRY["vgg19"], md5=stand_in))
    assert server.json("GET", "/api/options")[1]["default_preset"] == "default"


def test_the_schema_serves_the_constants_the_page_shares_with_the_server(serve):
    """The page reads these from /api/options instead of keeping copies of its own."""
    server = serve()
    status, schema = server.json("GET", "/api/options")
    assert status == 200
    assert schema["terminal_statuses"] == list(jobs.TERMINAL)
    assert schema["loss_parts"] == list(jobs.CURVES)
    assert schema["id_pattern"] == uploads.ID_RE.pattern
    assert re.fullmatch(schema["id_pattern"], uploads.new_id())
    assert schema["formats"] == list(uploads.ACCEPTED_FORMATS.values())
    assert schema["accept"] == uploads.ACCEPT_MIME
    assert schema["model_fields"] == list(MODEL_FIELDS)
    assert schema["limits"] == json.loads(json.dumps(asdict(server.app.state.limits)))


# --------------------------------------------------------------------------- a whole run


def test_upload_start_follow_and_download(images):
    server, photo, painting = images()
    status, job = server.start(photo, [painting], **FAST, seed=3)
    assert status == 201, job
    assert job["status"] in ("queued", "running") and job["total_steps"] == 5

    seen, steps, history = [], [], []
    for snap in server.events(job["id"]):
        seen.append(snap["status"])
        steps.append(snap["step"])
        assert snap["history_from"] == len(history)  # each event sends only new points
        history += snap["history"]
    assert seen[-1] == "done" and "running" in seen
    assert steps == sorted(steps) and steps[-1] == 5
    assert len(history) == 5 and set(history[0]) == {"total", "content", "style", "tv"}

    status, headers, body = server.request("GET", f"/api/jobs/{job['id']}/result")
    assert status == 200 and headers["content-type"] == "image/png"
    assert re.search(
        r'attachment; filename="photo-painterly-[0-9a-f]{6}\.png"', headers["content-disposition"]
    )
    img = Image.open(io.BytesIO(body))
    assert img.size == (64, 43)
    settings = json.loads(img.text["painterly:settings"])
    assert settings["seed"] == 3 and settings["steps"] == 5

    status, full = server.json("GET", f"/api/jobs/{job['id']}")
    assert full["status"] == "done" and len(full["history"]) == 5
    assert full["metrics"]["size"] == [64, 43]
    status, recent = server.json("GET", "/api/jobs")
    assert recent[0]["id"] == job["id"] and recent[0]["has_result"]
    status, headers, _ = server.request("GET", f"/api/jobs/{job['id']}/thumb")
    assert status == 200 and headers["content-type"] == "image/jpeg"


def test_previews_while_running_then_cancel_keeps_the_latest_image(images):
    server, photo, painting = images(PacedRun(pause=0.05))
    _, job = server.start(photo, [painting], size=64, steps=2000)
    snap = server.wait(job["id"], lambda s: s["preview_version"] >= 1 and s["step"] >= 3)
    status, headers, body = server.request("GET", f"/api/jobs/{job['id']}/preview")
    assert status == 200 and headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(body)).size == (64, 43)
    assert snap["status"] == "running"

    status, after = server.json("POST", f"/api/jobs/{job['id']}/cancel")
    assert status == 200
    final = server.wait(job["id"], lambda s: s["status"] in TERMINAL)
    assert final["status"] == "cancelled" and final["has_result"]
    assert 3 <= final["step"] < 2000
    status, _, body = server.request("GET", f"/api/jobs/{job['id']}/result")
    assert status == 200 and Image.open(io.BytesIO(body)).size == (64, 43)


def test_a_slow_disk_holds_up_the_worker_never_the_server(images, monkeypatch):
    """When a job ends, the worker writes its job.json (with fsync). A disk that takes its
    time (here: a write that waits until the test lets it go) may delay the worker only:
    the event stream still tells of the end, and other requests are answered. With the
    state lock held across the write, the event loop waited for the disk."""
    from painterly.web import jobs

    server, photo, painting = images(PacedRun(pause=0.05))
    _, job = server.start(photo, [painting], size=64, steps=2000)
    server.wait(job["id"], lambda s: s["step"] >= 2)
    writing, release = threading.Event(), threading.Event()
    real_write = jobs.write_json

    def slow_write(path, data):
        if data["status"] in TERMINAL:
            writing.set()
            release.wait(120)
        real_write(path, data)

    monkeypatch.setattr(jobs, "write_json", slow_write)
    try:
        assert server.json("POST", f"/api/jobs/{job['id']}/cancel")[0] == 200
        assert writing.wait(60), "the job did not end"
        # The worker is inside the write now, and stays there until released.
        final = server.wait(job["id"], lambda s: s["status"] in TERMINAL)
        assert final["status"] == "cancelled" and final["has_result"]
        assert server.json("GET", f"/api/jobs/{job['id']}")[1]["status"] == "cancelled"
        assert server.request("GET", "/api/options")[0] == 200
        stored = server.app.state.manager.root / job["id"] / "job.json"
        assert json.loads(stored.read_text())["status"] == "running"  # still being written
    finally:
        release.set()


def test_an_event_stream_outlives_the_connection_timeouts(images):
    """A queued job's stream stays open, quiet but for keep-alive comments, while the
    job ahead runs: the header and keep-alive timers, which close idle connections,
    must not close it, and it delivers every change through to the end."""
    limits = Limits(header_timeout_s=0.5, keep_alive_s=1.0)
    server, photo, painting = images(PacedRun(pause=0.05), limits=limits)
    _, first = server.start(photo, [painting], size=64, steps=40)
    _, second = server.start(photo, [painting], **FAST)
    opened = time.monotonic()
    snaps = list(server.events(second["id"]))
    assert time.monotonic() - opened > 2 * limits.keep_alive_s  # the stream lasted
    assert snaps[0]["status"] == "queued" and snaps[0]["position"] == 1
    assert snaps[-1]["status"] == "done"
    steps = [s["step"] for s in snaps if s["status"] == "running"]
    assert steps == sorted(steps) and 1 <= len(steps)
    assert sum(len(s["history"]) for s in snaps) == FAST["steps"]  # each point once


def test_one_job_at_a_time_with_queue_positions(images):
    server, photo, painting = images(PacedRun(pause=0.05))
    _, first = server.start(photo, [painting], size=64, steps=2000)
    server.wait(first["id"], lambda s: s["status"] == "running")
    _, second = server.start(photo, [painting], **FAST)
    _, third = server.start(photo, [painting], **FAST)
    assert (second["status"], second["position"]) == ("queued", 1)
    assert (third["status"], third["position"]) == ("queued", 2)

    _, cancelled = server.json("POST", f"/api/jobs/{second['id']}/cancel")
    assert cancelled["status"] == "cancelled" and not cancelled["has_result"]
    assert server.request("GET", f"/api/jobs/{second['id']}/result")[0] == 404
    assert server.json("GET", f"/api/jobs/{third['id']}")[1]["position"] == 1

    server.json("POST", f"/api/jobs/{first['id']}/cancel")
    final = server.wait(third["id"], lambda s: s["status"] in TERMINAL)
    assert final["status"] == "done"
    _, first_now = server.json("GET", f"/api/jobs/{first['id']}")
    assert first_now["status"] == "cancelled"
    assert first_now["finished"] <= final["started"]  # never two at once


def test_a_job_outlives_its_client_and_the_server(images, data_dir, serve):
    server, photo, painting = images(PacedRun(pause=0.02))
    _, job = server.start(photo, [painting], size=64, steps=15)
    # A client that reads one event and hangs up must not disturb the run.
    stream = server.events(job["id"])
    next(stream)
    stream.close()
    final = server.wait(job["id"], lambda s: s["status"] in TERMINAL)
    assert final["status"] == "done"
    # A page that reloads asks for the job by id and gets its whole history.
    _, again = server.json("GET", f"/api/jobs/{job['id']}")
    assert again["history_from"] == 0 and len(again["history"]) == 15
    server.stop()

    restarted = serve()
    _, recent = restarted.json("GET", "/api/jobs")
    assert [j["id"] for j in recent] == [job["id"]] and recent[0]["status"] == "done"
    assert restarted.request("GET", f"/api/jobs/{job['id']}/result")[0] == 200
    _, loaded = restarted.json("GET", f"/api/jobs/{job['id']}")
    assert len(loaded["history"]) == 15


def test_a_failing_job_reports_why_and_the_worker_goes_on(images):
    def broken(*args, callback, **kwargs):
        raise OptionsError("unknown layer 'block9_conv9'")

    server, photo, painting = images(broken)
    _, job = server.start(photo, [painting], **FAST)
    final = server.wait(job["id"], lambda s: s["status"] in TERMINAL)
    assert final["status"] == "failed" and "block9_conv9" in final["error"]
    _, second = server.start(photo, [painting], **FAST)
    assert server.wait(second["id"], lambda s: s["status"] in TERMINAL)["status"] == "failed"


# --------------------------------------------------------------------------- bad input


def test_bad_uploads_are_refused_with_a_clear_message(serve, data_dir):
    server = serve(limits=Limits(max_upload_bytes=60_000, max_pixels=40_000))
    noise = Image.effect_noise((200, 200), 80).convert("RGB")  # about 120 kB as PNG
    cases = [
        (b"just some text\n", "notes.txt", 422, "notes.txt is not an image Pillow can read"),
        (png_bytes(noise), "huge.png", 413, "huge.png is larger than the 59 KB"),
        (
            png_bytes(Image.new("RGB", (250, 200))),
            "wide.png",
            413,
            "wide.png is 250x200 px (50,000 pixels); this page takes at most 40,000 pixels",
        ),
        (png_bytes(Image.new("RGB", (64, 64)), "PPM"), "raw.ppm", 415, "raw.ppm is a PPM"),
        (png_bytes(blob())[:300], "cut.png", 422, "cut.png is truncated or corrupt"),
        (png_bytes(Image.new("RGB", (8, 8))), "dot.png", 422, "needs at least 32 px"),
        (b"", "empty.png", 422, "empty.png is empty"),
    ]
    for data, name, expected, message in cases:
        status, err = server.upload(data, name)
        assert status == expected, (name, err)
        assert message in err["detail"], (name, err)
        assert str(data_dir) not in err["detail"]  # our copy's path is not the user's business
    assert "use a PNG, JPEG, WebP, TIFF, BMP or GIF file" in server.upload(b"x", "x")[1]["detail"]
    assert not files_under(data_dir / "uploads")  # nothing refused is kept
    # The formats the CLI reads, GIF among them (its first frame).
    status, info = server.upload(png_bytes(blob().convert("P"), "GIF"), "anim.gif")
    assert status == 201 and info["format"] == "GIF"


def test_an_oversized_body_is_cut_off_while_it_arrives(serve, data_dir):
    server = serve(limits=Limits(max_upload_bytes=10_000))

    def chunks():
        for _ in range(100):
            yield b"\0" * 1000

    # No Content-Length (chunked), so the server can only count as the bytes arrive.
    status, _, raw = server.request("POST", "/api/uploads?name=stream.png", chunks())
    assert status == 413 and "stream.png is larger than" in json.loads(raw)["detail"]
    assert not files_under(data_dir / "uploads")


def test_bad_job_requests(images):
    server, photo, painting = images(limits=Limits(max_side=128))
    cases = [
        ({"size": 512}, "Size"),
        ({"steps": 0}, "Steps 0 is out of range; use 1 to"),
        ({"steps": True}, "Steps must be a number"),
        ({"style_weight": "lots"}, "Style weight must be a number"),
        ({"no_such_option": 1}, "unknown option 'no_such_option'"),
        ({"optimizer": "sgd"}, "Optimizer must be one of lbfgs, adam"),
        # The numbers are checked by config, as for the CLI, and shown compactly.
        ({"seed": 2**64}, "Seed 18446744073709551616 is out of range; use 0 to"),
        ({"size": 1e308}, "Size 1e+308 is out of range; use 32 to"),
        ({"style_weight": 1e300}, "Style weight 1e+300 is out of range; use 0 to 1e+12"),
    ]
    for options, message in cases:
        status, err = server.start(photo, [painting], **options)
        assert status == 422, (options, err)
        assert message in err["detail"] and "0000000" not in err["detail"], (options, err)
    status, err = server.json(
        "POST", "/api/jobs", {"content": photo, "styles": [{"id": painting}], "preset": "nope"}
    )
    assert status == 422 and "unknown preset 'nope'" in err["detail"]
    status, err = server.json(
        "POST", "/api/jobs", {"content": photo, "styles": [{"id": painting, "weight": 0}]}
    )
    assert status == 422 and "weight above 0" in err["detail"]
    status, err = server.json("POST", "/api/jobs", {"content": photo, "styles": []})
    assert status == 422


def test_the_output_size_is_limited(serve):
    server = serve(limits=Limits(max_side=80))
    _, photo = server.upload(png_bytes(blob(120, 90)))
    _, painting = server.upload(png_bytes(stripes()))
    status, err = server.start(photo["id"], [painting["id"]], size=None, steps=2)
    assert status == 422
    assert "the result would be 120x90 px" in err["detail"] and "at most 80 px" in err["detail"]


def test_no_path_from_a_request_reaches_the_file_system(images, data_dir, tmp_path):
    secret = tmp_path / "secret.png"
    blob().save(secret)
    server, photo, painting = images()
    before = files_under(tmp_path)

    for path in [
        "/api/jobs/..%2F..%2Fsecret.png/result",
        "/api/jobs/../../secret.png",
        f"/api/jobs/{photo}/result",  # an upload id is not a job id
        "/api/jobs/0123456789ABCDEF",
        "/api/uploads/..%2F..%2Fsecret.png/thumb",
        "/api/uploads/%2e%2e/thumb",
        "/static/..%2F__init__.py",
        "/static/app.py",
        "/static/%2e%2e%2fapp.py",
    ]:
        status, _, body = server.request("GET", path)
        assert status == 404, (path, status, body[:200])

    for bad in ["../../secret.png", str(secret), "0" * 16]:
        status, err = server.start(bad, [painting], **FAST)
        assert status == 404 and "uploaded image is gone" in err["detail"]
        status, err = server.start(photo, [bad], **FAST)
        assert status == 404

    for options in ({"init": str(secret)}, {"weights": str(secret)}, {"weights": "../x.pth"}):
        status, err = server.start(photo, [painting], **FAST, **options)
        assert status == 422 and "must be one of" in err["detail"], err

    status, info = server.upload(png_bytes(blob()), "..%2F..%2Fevil.png")
    assert status == 201 and info["name"] == "evil.png"
    assert re.fullmatch(r"[0-9a-f]{16}", info["id"])
    after = files_under(tmp_path)
    assert {f for f in after - before if not f.startswith("data/")} == set()


def test_requests_for_other_host_names_and_cross_site_posts_are_refused(images):
    server, photo, painting = images()
    status, _, body = server.request("GET", "/", headers={"Host": "attacker.example"})
    assert status == 400
    status, _, _ = server.request("GET", "/", headers={"Host": f"localhost:{server.port}"})
    assert status == 200
    body = json.dumps({"content": photo, "styles": [{"id": painting}]})
    status, _, _ = server.request(
        "POST",
        "/api/jobs",
        body,
        {"Content-Type": "application/json", "Origin": "http://attacker.example"},
    )
    assert status == 403
    status, headers, page = server.request("GET", "/")
    assert "default-src 'self'" in headers["content-security-policy"]
    # The page loads nothing from elsewhere, and its ES modules are served as JavaScript
    # (a browser runs a module script only with a JavaScript MIME type).
    scripts = [f"/static/{name}" for name in STATIC if name.endswith(".js")]
    assert "/static/js/main.js" in scripts and 'src="/static/js/main.js"' in page.decode()
    for name in ("/", "/static/app.css", *scripts):
        status, headers, body = server.request("GET", name)
        assert status == 200, name
        if name.endswith(".js"):
            assert headers["content-type"].startswith("text/javascript"), name
        text = body.decode()
        assert not re.search(r"(src|href)=\"(https?:)?//|url\((https?:)?//|https?://", text)
        # Imports name only sibling modules, each one that is served.
        for imported in re.findall(r'^import .* from "\./([\w.]+)";$', text, re.M):
            assert f"/static/js/{imported}" in scripts, (name, imported)


# --------------------------------------------------------------------------- serving


def test_serve_binds_loopback_by_default_and_stops_on_ctrl_c(tmp_path):
    args = build_parser().parse_args(["serve"])
    settings = ServeConfig(**given_settings(args, ServeConfig))
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)

    proc = subprocess.Popen(
        [sys.executable, "-m", "painterly", "serve", "--port", "0", "--data-dir", tmp_path],
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    try:
        line = proc.stderr.readline()
        match = re.search(r"serving http://(127\.0\.0\.1):(\d+)/", line)
        assert match, line
        conn = http.client.HTTPConnection("127.0.0.1", int(match.group(2)), timeout=30)
        conn.request("GET", "/")
        assert conn.getresponse().status == 200
        conn.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_busy_port_is_a_usage_error():
    busy = listen("127.0.0.1", 0)
    try:
        with pytest.raises(OptionsError, match="choose another --port"):
            listen("127.0.0.1", busy.getsockname()[1])
    finally:
        busy.close()


# --------------------------------------------------------------------------- the core hook


def test_a_callback_can_stop_a_run_and_keep_the_latest_image():
    """events.Stop, raised by a callback, ends the run like Ctrl-C: the image is kept."""
    seen = []

    def stop_at_three(event):
        if isinstance(event, Progress):
            seen.append(event.step)
            if event.step == 3:
                raise Stop

    result = painterly.run(
        blob(), stripes(), encoder=tiny_encoder(), size=64, steps=50, callback=stop_at_three
    )
    assert result.interrupted and result.metrics["steps"] == 3 and seen == [1, 2, 3]
    assert result.image.size == (64, 43)
