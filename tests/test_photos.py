"""Named photo sets (``painterly train --images coco``): downloaded from a loopback server
holding a small archive laid out like COCO's val2017.zip, resumed after a dropped
connection, checked against its md5 and unpacked; then trained on."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import zipfile

import pytest
from fake_weights import assert_one_line_error, files_under
from loopback import serving
from synthetic import blob, stripes

from painterly import download
from painterly.cli import main
from painterly.fast import photos
from painterly.fast.photos import PHOTO_SETS, PhotoSetError, fetch_photo_set, resolve_images

NAMES = ["000000000139.jpg", "000000000285.jpg", "000000000632.jpg", "000000000724.jpg"]


def kept(cache):
    """The files in the cache, less the locks that claim what a run writes."""
    return [p for p in files_under(cache) if p.parent.name != "locks"]


def coco_like_zip(extra: dict[str, bytes] | None = None) -> bytes:
    """A zip as COCO publishes it: one ``val2017/`` folder of JPEG files."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("val2017/", b"")
        for i, name in enumerate(NAMES):
            img = (blob() if i % 2 else stripes()).rotate(90 * i, expand=True)
            jpeg = io.BytesIO()
            img.save(jpeg, "JPEG", quality=90)
            zf.writestr(f"val2017/{name}", jpeg.getvalue())
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``files``; honours ``Range`` unless the path ends in ``/norange``; ``/drop``
    promises the whole file and hangs up halfway. Every request's Range is logged."""

    files: dict[str, bytes] = {}
    ranges: list[str | None] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        route, _, name = self.path.rpartition("/")
        body = self.files.get(name)
        if body is None:
            self.send_error(404)
            return
        asked = self.headers.get("Range")
        self.ranges.append(asked)
        start = 0
        if asked and route != "/norange":
            start = int(asked.removeprefix("bytes=").split("-")[0])
        if start:
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if route == "/drop":
            self.wfile.write(body[start : start + (len(body) - start) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def archive():
    return coco_like_zip()


@pytest.fixture(scope="module")
def server(archive):
    Handler.files = {"val2017.zip": archive, "evil.zip": coco_like_zip({"../../evil.jpg": b"x"})}
    with serving(Handler) as url:
        yield url


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("PAINTERLY_CACHE", str(root))
    Handler.ranges = []
    return root


@pytest.fixture
def fake_coco(archive, server, monkeypatch):
    """The registry's coco entry, pointed at the loopback server, with the fake's md5."""
    ps = dataclasses.replace(
        PHOTO_SETS["coco"],
        urls=(f"{server}/zips/val2017.zip",),
        size=len(archive),
        md5=hashlib.md5(archive).hexdigest(),
        photos=len(NAMES),
    )
    monkeypatch.setitem(PHOTO_SETS, "coco", ps)
    return ps


def test_a_set_is_downloaded_unpacked_flat_and_the_archive_removed(fake_coco, cache, server):
    notices = []
    folder = resolve_images("coco", callback=notices.append, progress=False)
    assert folder == cache / "photos" / "coco"
    assert sorted(p.name for p in folder.iterdir()) == NAMES
    assert kept(cache) == sorted(folder / n for n in NAMES)  # no archive, no .part
    said = " ".join(n.message for n in notices)
    assert "downloading the coco photo set" in said and str(cache / "photos") in said
    assert "Creative Commons" in said  # the licence, before a byte is fetched
    # Unpacked once: the next use asks the server nothing.
    assert resolve_images("coco", progress=False) == folder
    assert Handler.ranges == [None]


def test_a_folder_of_that_name_is_used_as_it_is(fake_coco, tmp_path, monkeypatch):
    (tmp_path / "coco").mkdir()
    monkeypatch.chdir(tmp_path)
    assert resolve_images("coco", progress=False).resolve() == tmp_path / "coco"
    assert Handler.ranges == []


def test_a_dropped_download_resumes_where_it_stopped(fake_coco, cache, server, archive):
    dropping = dataclasses.replace(fake_coco, urls=(f"{server}/drop/val2017.zip",))
    with pytest.raises(PhotoSetError) as excinfo:
        fetch_photo_set(dropping, progress=False, timeout=5)
    assert_one_line_error(excinfo, "connection dropped after", "run again to resume")
    part = download.partial_path(cache / "photos" / "val2017.zip")
    kept = part.stat().st_size
    assert 0 < kept < len(archive) and part.read_bytes() == archive[:kept]
    assert not (cache / "photos" / "coco").exists()
    folder = fetch_photo_set(fake_coco, progress=False, timeout=5)
    assert Handler.ranges == [None, f"bytes={kept}-"]  # the rest only
    assert sorted(p.name for p in folder.iterdir()) == NAMES
    assert not part.exists()


def test_a_server_that_cannot_resume_sends_it_all_again(fake_coco, cache, server, archive):
    part = download.partial_path(cache / "photos" / "val2017.zip")
    part.parent.mkdir(parents=True)
    part.write_bytes(archive[:100])
    whole = dataclasses.replace(fake_coco, urls=(f"{server}/norange/val2017.zip",))
    folder = fetch_photo_set(whole, progress=False, timeout=5)
    assert Handler.ranges == ["bytes=100-"]
    assert sorted(p.name for p in folder.iterdir()) == NAMES


def test_a_wrong_md5_keeps_nothing(fake_coco, cache):
    wrong = dataclasses.replace(fake_coco, md5="0" * 32)
    with pytest.raises(PhotoSetError) as excinfo:
        fetch_photo_set(wrong, progress=False, timeout=5)
    assert_one_line_error(excinfo, "md5 is", "expected " + "0" * 32)
    assert kept(cache) == []


def test_a_missing_file_and_no_server_are_one_line_errors(fake_coco, cache, server):
    for url, why in [(f"{server}/zips/nothing.zip", "HTTP 404"), ("http://127.0.0.1:9/x.zip", "")]:
        gone = dataclasses.replace(fake_coco, urls=(url,))
        with pytest.raises(PhotoSetError) as excinfo:
            fetch_photo_set(gone, progress=False, timeout=2)
        assert_one_line_error(excinfo, url, why, "--images")
    assert kept(cache) == []


def test_names_in_the_archive_cannot_escape_the_folder(fake_coco, cache, server):
    evil = Handler.files["evil.zip"]
    ps = dataclasses.replace(
        fake_coco, urls=(f"{server}/zips/evil.zip",), md5=hashlib.md5(evil).hexdigest()
    )
    folder = fetch_photo_set(ps, progress=False, timeout=5)
    assert sorted(p.name for p in folder.iterdir()) == sorted([*NAMES, "evil.jpg"])
    assert kept(cache) == sorted(p for p in folder.iterdir())


def test_too_little_disk_space_is_said_before_downloading(fake_coco, cache, monkeypatch):
    usage = photos.shutil.disk_usage(cache.parent)
    monkeypatch.setattr(photos.shutil, "disk_usage", lambda _: usage._replace(free=10))
    with pytest.raises(PhotoSetError) as excinfo:
        fetch_photo_set(fake_coco, progress=False)
    assert_one_line_error(excinfo, "needs", "GB free", "PAINTERLY_CACHE")
    assert Handler.ranges == []


def test_train_on_a_named_set(fake_coco, cache, tmp_path, capsys):
    style, out = tmp_path / "style.png", tmp_path / "m.safetensors"
    stripes().save(style)
    tiny = ["--width", "4", "--blocks", "1", "--crop", "32", "--batch-size", "2"]
    argv = ["train", str(style), "--images", "coco", "-o", str(out), "--iterations", "2"]
    assert main([*argv, *tiny]) == 0
    assert out.is_file()
    assert "downloading the coco photo set" in capsys.readouterr().err


def test_an_unknown_name_is_a_one_line_error(tmp_path, capsys):
    style = tmp_path / "style.png"
    stripes().save(style)
    argv = ["train", str(style), "--images", "imagenet", "-o", str(tmp_path / "m.safetensors")]
    assert main([*argv, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "neither a folder nor a photo set" in err and "coco" in err


def test_a_second_run_does_not_download_beside_the_first(fake_coco, cache):
    """Another process holding the set's download is said, not raced."""
    import subprocess
    import sys

    from painterly.files import OutputBusy

    holder = subprocess.Popen(
        [sys.executable, "-c", "from painterly.files import claims; import sys; "
         f"claims.claim({str(cache / 'photos' / 'val2017.zip')!r}); print('held', flush=True); "
         "sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(OutputBusy, match="another painterly run is writing"):
            fetch_photo_set(fake_coco, progress=False, timeout=5)
        assert Handler.ranges == []
    finally:
        holder.communicate("")
