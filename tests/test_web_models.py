"""Fast models in the web app: listed beside the presets, run through the same job queue,
their results carrying the model's metadata; bad ids and broken files are one line."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image
from synthetic import blob, stripes, tiny_model
from webserver import PacedRun, png_bytes

from painterly.cli import main
from painterly.fast.model_file import MODEL_FORMAT, models_dir
from painterly.image import read_metadata
from painterly.web import Limits

TERMINAL = ("done", "cancelled", "failed")


@pytest.fixture
def folder(tmp_path):
    """A folder of models given to the server (as `painterly serve --models DIR`)."""
    path = tmp_path / "served"
    path.mkdir()
    tiny_model(path / "waves.safetensors", style="waves", seed=1)
    return path


@pytest.fixture
def served(serve, folder):
    """Start servers that also offer the models of ``folder``."""
    return lambda runner=None, **kwargs: serve(runner, models=[folder], **kwargs)


def _photo(server, img=None) -> str:
    status, info = server.upload(png_bytes(img or blob()), "photo.png")
    assert status == 201, info
    return info["id"]


def _model_job(server, photo, model="waves", **options):
    return server.json("POST", "/api/jobs", {"content": photo, "model": model, "options": options})


def test_models_of_the_cache_and_the_served_folders_are_listed(served, folder, tmp_path):
    models_dir().mkdir(parents=True)
    tiny_model(models_dir() / "starry.safetensors", style="starry_night")
    tiny_model(folder / "starry.safetensors", style="other")  # the cache's comes first
    (folder / "junk.safetensors").write_text("not a model")  # not offered
    server = served()
    status, models = server.json("GET", "/api/models")
    assert status == 200
    assert [m["id"] for m in models] == ["starry", "waves"]
    assert models[0] == {
        "id": "starry",
        "styles": ["starry_night"],
        "encoder": "offline",
        "width": 4,
        "iterations": 3,
        "version": models[0]["version"],
        "under_trained": "",
    }
    assert not any(str(tmp_path) in str(m) for m in models)  # no server paths go out
    # A model trained while the server runs shows up at the next request.
    tiny_model(folder / "later.safetensors")
    assert "later" in [m["id"] for m in server.json("GET", "/api/models")[1]]
    # The form knows which of its fields apply to a model.
    _, schema = server.json("GET", "/api/options")
    assert schema["model_fields"] == ["size", "height", "tile", "device", "preserve_color"]
    assert set(schema["model_fields"]) <= {f["name"] for f in schema["fields"]}


def test_a_model_job_paints_the_photo_like_painterly_apply(served, folder, tmp_path):
    server = served()
    photo = _photo(server)
    status, job = _model_job(server, photo, size=None)
    assert status == 201, job
    assert job["model"] == {"id": "waves", "styles": ["waves"]} and job["styles"] == []
    final = server.wait(job["id"], lambda s: s["status"] in TERMINAL)
    assert final["status"] == "done", final
    assert final["metrics"]["model"] == "waves" and final["metrics"]["size"] == [96, 64]
    assert final["metrics"]["seconds"] < 60 and final["history"] == []

    status, headers, body = server.request("GET", f"/api/jobs/{job['id']}/result")
    assert status == 200 and headers["content-type"] == "image/png"
    assert re.search(r'filename="photo-painterly-[0-9a-f]{6}\.png"', headers["content-disposition"])
    web = tmp_path / "web.png"
    web.write_bytes(body)
    # The same pixels and metadata as `painterly apply` on the same photo.
    blob().save(tmp_path / "photo.png")
    cli = tmp_path / "cli.png"
    argv = ["apply", str(folder / "waves.safetensors"), str(tmp_path / "photo.png")]
    assert main([*argv, "-o", str(cli), "--device", "cpu"]) == 0
    assert Image.open(web).tobytes() == Image.open(cli).tobytes()
    meta = read_metadata(web)
    assert meta == read_metadata(cli)
    assert meta["painterly:model"] == "waves.safetensors"
    assert meta["painterly:model:format"] == MODEL_FORMAT
    assert "waves" in meta["painterly:model:styles"]

    assert server.request("GET", f"/api/jobs/{job['id']}/thumb")[0] == 200
    _, recent = server.json("GET", "/api/jobs")
    assert recent[0]["id"] == job["id"] and recent[0]["model"]["id"] == "waves"


def test_size_and_preserve_color_apply_to_a_model(served):
    server = served()
    photo = _photo(server)
    results = {}
    for keep in ("none", "luminance"):
        _, job = _model_job(server, photo, size=48, preserve_color=keep)
        final = server.wait(job["id"], lambda s: s["status"] in TERMINAL)
        assert final["status"] == "done" and final["options"]["size"] == 48
        _, _, body = server.request("GET", f"/api/jobs/{job['id']}/result")
        results[keep] = Image.open(io.BytesIO(body))
        assert results[keep].size == (48, 32)
    assert results["none"].tobytes() != results["luminance"].tobytes()


def test_bad_model_requests_are_one_line(served, folder, tmp_path):
    server = served(limits=Limits(max_side=128))
    photo = _photo(server)
    _, painting = server.upload(png_bytes(stripes()), "painting.png")
    cases = [
        ({"model": "nope"}, "unknown model 'nope'; the models here: waves"),
        ({"model": "waves", "options": {"steps": 10}}, "Steps does not apply to a fast model"),
        ({"model": "waves", "options": {"size": 512}}, "at most 128 px"),
        ({"model": "waves", "options": {"preserve_color": "x"}}, "Preserve color must be one of"),
        ({"model": "waves", "styles": [{"id": painting["id"]}]}, "send no paintings"),
        ({"model": "../waves"}, "unknown model '../waves'"),
        ({}, "add at least one painting, or choose a fast model"),
    ]
    for extra, message in cases:
        status, err = server.json("POST", "/api/jobs", {"content": photo, **extra})
        assert status == 422 and message in err["detail"], (extra, err)
        assert "\n" not in err["detail"]
    # A model file that became corrupt: refused when the job is asked for, by name.
    (folder / "waves.safetensors").write_text("overwritten by mistake")
    status, err = _model_job(server, photo, size=64)
    assert status == 422 and "the model 'waves'" in err["detail"], err
    assert str(folder) not in err["detail"] and "\n" not in err["detail"]


def test_a_model_that_breaks_while_its_job_waits_fails_that_job_only(served, folder):
    server = served(PacedRun(pause=0.05))
    photo = _photo(server)
    _, painting = server.upload(png_bytes(stripes()), "painting.png")
    _, first = server.start(photo, [painting["id"]], size=64, steps=2000)
    server.wait(first["id"], lambda s: s["status"] == "running")
    _, waiting = _model_job(server, photo, size=64)
    assert waiting["status"] == "queued" and waiting["position"] == 1
    model = folder / "waves.safetensors"
    model.write_bytes(model.read_bytes()[:-200])  # truncated on the disk meanwhile
    server.json("POST", f"/api/jobs/{first['id']}/cancel")
    final = server.wait(waiting["id"], lambda s: s["status"] in TERMINAL)
    assert final["status"] == "failed" and "the model 'waves'" in final["error"], final
    assert str(folder) not in final["error"] and "Traceback" not in final["error"]
    assert "\n" not in final["error"]
    tiny_model(model)  # repaired: the next job runs
    _, again = _model_job(server, photo, size=64)
    assert server.wait(again["id"], lambda s: s["status"] in TERMINAL)["status"] == "done"


def test_serve_refuses_a_models_folder_that_is_not_one(tmp_path, capsys):
    missing = tmp_path / "no-such-folder"
    assert main(["serve", "--port", "0", "--models", str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--models" in err and "not a folder" in err
