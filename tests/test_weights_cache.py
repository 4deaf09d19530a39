"""The weights cache: download against a loopback server, import, and the hash check of
cached registry files, on fake files in the real layouts (fake_weights.py)."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import json
import os
import shutil
import sys
import time

import pytest
from fake_weights import assert_one_line_error, files_under, md5, write_keras_h5
from loopback import serving

from painterly import download
from painterly.cli import main
from painterly.encoders import cache as weights_cache
from painterly.encoders import load_encoder, resolve_weights
from painterly.encoders.formats import load_state_dict
from painterly.encoders.registry import REGISTRY
from painterly.errors import WeightsError


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("PAINTERLY_CACHE", str(root))
    return root


def verdicts(cache):
    return cache / "weights" / weights_cache.VERDICTS


@pytest.fixture(scope="module")
def keras16_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("keras16") / "k.h5"
    write_keras_h5(path, "vgg16", keras=2, values={("block1_conv1", "kernel"): {(0, 2, 1, 5): 7.0}})
    return path.read_bytes()


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("PAINTERLY_CACHE", str(tmp_path / "p"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert weights_cache.cache_dir() == tmp_path / "p"
    monkeypatch.setenv("PAINTERLY_CACHE", "~/c")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert weights_cache.cache_dir() == tmp_path / "home" / "c"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the XDG layout is Linux's")
def test_default_cache_dir_on_linux(monkeypatch, tmp_path):
    monkeypatch.delenv("PAINTERLY_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert weights_cache.cache_dir() == tmp_path / "xdg" / "painterly"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert weights_cache.cache_dir() == tmp_path / "home" / ".cache" / "painterly"


def test_cached_path_and_describe(cache):
    ws = REGISTRY["vgg19"]
    assert weights_cache.cached_path(ws) is None
    rows = {row["name"]: row for row in weights_cache.describe()}
    assert set(rows) == set(REGISTRY)
    assert rows["vgg19"]["path"] is None and rows["vgg19"]["size_mb"] == ws.size_mb
    (cache / "weights").mkdir(parents=True)
    (cache / "weights" / ws.filename).write_bytes(b"x")
    assert weights_cache.cached_path(ws) == cache / "weights" / ws.filename
    assert weights_cache.describe()[0]["path"] == cache / "weights" / ws.filename


# --- download against a loopback server ---------------------------------------------------


class Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path == "/missing":
            self.send_error(404)
            return
        if self.path == "/stall":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.flush()
            time.sleep(1.5)
            return
        body = self.files["/good"] if self.path == "/drop" else self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path == "/drop":  # promise N bytes, send N/2, hang up
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(keras16_bytes):
    bad = bytearray(keras16_bytes)
    bad[len(bad) // 2] ^= 0xFF
    Handler.files = {"/good": keras16_bytes, "/badhash": bytes(bad)}
    with serving(Handler) as url:
        yield url


@pytest.fixture()
def fake_ws(server, keras16_bytes):
    return dataclasses.replace(
        REGISTRY["vgg16"],
        name="fake",
        filename="fake_notop.h5",
        urls=(f"{server}/good",),
        md5=md5(keras16_bytes),
    )


def test_download_good_file(fake_ws, cache, keras16_bytes, capsys):
    path = weights_cache.download(fake_ws, timeout=5)
    assert path == cache / "weights" / "fake_notop.h5"
    assert path.read_bytes() == keras16_bytes
    assert files_under(cache) == [path, verdicts(cache)]  # the hash's verdict is kept
    assert weights_cache.cached_path(fake_ws) == weights_cache.checked_path(fake_ws) == path
    assert "fake_notop.h5" in capsys.readouterr().err  # progress bar on stderr
    arch, state = load_state_dict(path)
    assert arch == "vgg16" and state["block1_conv1.weight"][5, 1, 0, 2] == 7.0


def test_download_sha256_prefix(fake_ws, keras16_bytes, capsys):
    sha = hashlib.sha256(keras16_bytes).hexdigest()
    ws = dataclasses.replace(fake_ws, md5=None, sha256_prefix=sha[:8])
    assert weights_cache.download(ws, progress=False, timeout=5).is_file()
    assert capsys.readouterr().err == ""
    wrong = dataclasses.replace(
        ws, sha256_prefix="00000000" if sha[:8] != "00000000" else "11111111"
    )
    with pytest.raises(WeightsError) as excinfo:
        weights_cache.download(wrong, progress=False, timeout=5)
    assert_one_line_error(excinfo, f"sha256 starts {sha[:8]}")


@pytest.mark.parametrize(
    ("route", "why"),
    [
        ("/missing", "HTTP 404"),
        ("/badhash", "md5 is "),
        ("/drop", "connection dropped after"),
        ("/stall", "timed out"),
    ],
)
def test_download_failures_leave_nothing(fake_ws, cache, server, route, why):
    with pytest.raises(WeightsError) as excinfo:
        weights_cache.download(fake_ws, progress=False, urls=[server + route], timeout=0.5)
    assert_one_line_error(excinfo, server + route, why, "painterly weights import PATH")
    assert files_under(cache) == []


def test_download_falls_back_to_next_url(fake_ws, cache, server, keras16_bytes):
    urls = [f"{server}/missing", f"{server}/drop", f"{server}/good"]
    path = weights_cache.download(fake_ws, progress=False, urls=urls, timeout=5)
    assert path.read_bytes() == keras16_bytes
    assert files_under(cache) == [path, verdicts(cache)]


def test_download_all_urls_fail(fake_ws, cache, server):
    urls = [f"{server}/missing", f"{server}/badhash"]
    ws = dataclasses.replace(fake_ws, urls=tuple(urls))
    with pytest.raises(WeightsError) as excinfo:
        weights_cache.download(ws, progress=False, timeout=5)
    assert_one_line_error(excinfo, *urls, "HTTP 404", "md5 is")
    assert files_under(cache) == []


def test_download_interrupted_leaves_nothing(fake_ws, cache, monkeypatch):
    def interrupt(self, chunk):
        raise KeyboardInterrupt

    monkeypatch.setattr(download.Hashes, "update", interrupt)
    with pytest.raises(KeyboardInterrupt):
        weights_cache.download(fake_ws, progress=False, timeout=5)
    assert files_under(cache) == []


def test_download_replaces_a_corrupt_cached_file(fake_ws, cache, keras16_bytes):
    (cache / "weights").mkdir(parents=True)
    (cache / "weights" / fake_ws.filename).write_bytes(b"truncated")
    with pytest.raises(WeightsError) as excinfo:
        weights_cache.checked_path(fake_ws)
    assert_one_line_error(excinfo, f"md5 is {md5(b'truncated')}, expected {fake_ws.md5}")
    path = weights_cache.download(fake_ws, progress=False, timeout=5)
    assert path.read_bytes() == keras16_bytes
    assert weights_cache.checked_path(fake_ws) == path


# --- import -------------------------------------------------------------------------------


def test_import_file_detects_registry_entry_by_hash(
    fake_ws, cache, tmp_path, keras16_bytes, monkeypatch
):
    monkeypatch.setitem(REGISTRY, "fake", fake_ws)
    src = tmp_path / "downloaded-by-hand.h5"
    src.write_bytes(keras16_bytes)
    path = weights_cache.import_file(src)
    assert path == cache / "weights" / fake_ws.filename
    assert files_under(cache) == [path, verdicts(cache)] and path.read_bytes() == keras16_bytes
    assert weights_cache.import_file(src, name="fake") == path


def test_import_file_refuses_impostors(fake_ws, cache, tmp_path, monkeypatch):
    monkeypatch.setitem(REGISTRY, "fake", fake_ws)
    other = write_keras_h5(tmp_path / "other.h5", "vgg16", keras=2)  # valid, different bytes
    with pytest.raises(WeightsError) as excinfo:
        weights_cache.import_file(other, name="fake")
    assert_one_line_error(excinfo, other, "not the fake weights file", "md5 is")
    named_like = tmp_path / fake_ws.filename
    shutil.copy(other, named_like)
    with pytest.raises(WeightsError):
        weights_cache.import_file(named_like)
    assert files_under(cache) == []


def test_import_file_unregistered_and_garbage(cache, tmp_path):
    mine = write_keras_h5(tmp_path / "my_vgg16.h5", "vgg16", keras=2)
    assert weights_cache.import_file(mine) == cache / "weights" / "my_vgg16.h5"
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"\x00" * 1000)
    with pytest.raises(WeightsError) as excinfo:
        weights_cache.import_file(garbage)
    assert_one_line_error(excinfo, garbage)
    with pytest.raises(WeightsError) as excinfo:
        weights_cache.import_file(mine, name="vgg99")
    assert_one_line_error(excinfo, "unknown weights 'vgg99'")
    with pytest.raises(WeightsError):
        weights_cache.import_file(tmp_path / "absent.h5")
    assert files_under(cache) == [cache / "weights" / "my_vgg16.h5"]


# --- a cached registry file is used only once it matched its hash -------------------------


@pytest.fixture(scope="module")
def vgg19_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("keras19") / "k.h5"
    write_keras_h5(path, "vgg19", values={("block1_conv1", "bias"): {(5,): 0.5}})
    return path.read_bytes()


@pytest.fixture()
def vgg19_ws(monkeypatch, vgg19_bytes):
    """The registry's vgg19 entry, with the fake file's md5 (and URLs that point nowhere)."""
    ws = dataclasses.replace(REGISTRY["vgg19"], md5=md5(vgg19_bytes))
    monkeypatch.setitem(REGISTRY, "vgg19", ws)
    return ws


@pytest.fixture()
def hashed(monkeypatch):
    """The files hashed, in order."""
    calls = []
    real = weights_cache._hash_file

    def counting(path):
        calls.append(path)
        return real(path)

    monkeypatch.setattr(weights_cache, "_hash_file", counting)
    return calls


def put_in_cache(cache, ws, data: bytes):
    (cache / "weights").mkdir(parents=True, exist_ok=True)
    path = cache / "weights" / ws.filename
    path.write_bytes(data)
    return path


def test_a_genuine_cached_file_is_hashed_once(cache, vgg19_ws, vgg19_bytes, hashed):
    path = put_in_cache(cache, vgg19_ws, vgg19_bytes)
    assert resolve_weights("auto") == ("vgg19", None)
    assert hashed == [path]
    verdict = json.loads(verdicts(cache).read_text())[path.name]
    assert verdict["problem"] is None and verdict["size"] == len(vgg19_bytes)
    assert resolve_weights("auto") == ("vgg19", None) and weights_cache.weights_cached("vgg19")
    assert load_encoder("vgg19", upto="block1_conv2").name == "vgg19"
    assert hashed == [path]  # the verdict was remembered
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the file changed
    assert resolve_weights("auto") == ("vgg19", None)
    assert hashed == [path, path]


def other_vgg19(path):
    """A valid VGG19 file that is not the published one."""
    return write_keras_h5(path, "vgg19", values={("block1_conv1", "bias"): {(5,): 9.0}})


def bad_copy(kind: str, good: bytes, tmp_path) -> bytes:
    middle = len(good) // 2
    if kind == "damaged":
        return good[:middle] + b"\xa5" * 64 + good[middle + 64 :]
    if kind == "truncated":
        return good[:middle]
    return other_vgg19(tmp_path / "other.h5").read_bytes()


@pytest.mark.parametrize("kind", ["damaged", "truncated", "another file"])
def test_a_corrupt_cached_file_is_not_used(cache, tmp_path, vgg19_ws, vgg19_bytes, hashed, kind):
    bad = bad_copy(kind, vgg19_bytes, tmp_path)
    path = put_in_cache(cache, vgg19_ws, bad)
    # auto falls back to the offline encoder and says why and what to do
    name, fallback = resolve_weights("auto")
    assert name == "offline" and fallback.corrupt
    for fragment in (path, "is corrupt", "md5 is", "painterly weights fetch vgg19"):
        assert str(fragment) in fallback.reason and "\n" not in fallback.reason
    assert "using the offline encoder" in fallback.notice("the offline encoder")
    assert not weights_cache.weights_cached("vgg19")
    # asked for by name, it is a one-line error
    with pytest.raises(WeightsError) as excinfo:
        load_encoder("vgg19")
    assert_one_line_error(excinfo, path, "is corrupt")
    assert hashed == [path]  # once, whatever asked
    assert path.read_bytes() == bad  # left for the user to see, not deleted or replaced


def test_runs_with_a_corrupt_cached_file(
    cache, tmp_path, vgg19_ws, vgg19_bytes, capsys, content_path, style_path
):
    path = put_in_cache(cache, vgg19_ws, bad_copy("damaged", vgg19_bytes, tmp_path))
    fast = ["--size", "48", "--steps", "1", "--scales", "1", "--quiet"]
    out, metrics = tmp_path / "out.png", tmp_path / "m.json"
    argv = ["stylize", content_path, style_path, "-o", out, "--metrics", metrics, *fast]
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    # one notice: what is wrong, what runs instead, how to fix it
    assert code == 0 and err.count("\n") == 1 and f"{path} is corrupt" in err, err
    assert "using the offline encoder" in err and "painterly weights fetch vgg19" in err
    assert json.loads(metrics.read_text())["encoder"] == "offline"
    out = tmp_path / "vgg.png"
    argv = ["stylize", content_path, style_path, "-o", out, "--weights", "vgg19", *fast]
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "is corrupt" in err and not out.exists()
    # importing a good copy replaces it
    good = tmp_path / "good.h5"
    good.write_bytes(vgg19_bytes)
    assert main(["weights", "import", str(good)]) == 0
    assert resolve_weights("auto") == ("vgg19", None)


def test_stale_or_unreadable_verdicts_are_ignored(cache, vgg19_ws, vgg19_bytes, hashed):
    path = put_in_cache(cache, vgg19_ws, vgg19_bytes)
    verdicts(cache).write_text("{not json")
    assert weights_cache.checked_path(vgg19_ws) == path and len(hashed) == 1
    stamp = json.loads(verdicts(cache).read_text())[path.name]  # rewritten
    # a verdict reached against another published hash, or for another size, is void
    for change in ({"hash": "md5:" + "0" * 32}, {"size": 1}):
        verdicts(cache).write_text(json.dumps({path.name: {**stamp, **change, "problem": "x"}}))
        assert weights_cache.checked_path(vgg19_ws) == path
    assert len(hashed) == 3
