"""What a long-running `painterly serve` bounds and refuses, over real HTTP on loopback:
body sizes, slow and half-sent requests, cross-site and rebound requests, parallel
decodes and the upload store's size. A property test throws random and mutated image
bytes and option values at the API: the answer is a result or a one-line 4xx error,
never a server error.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from synthetic import blob, stripes
from webserver import PacedRun, Server, png_bytes

from painterly.cli import build_parser
from painterly.web import Limits, uploads

TERMINAL = ("done", "cancelled", "failed")


def detail(raw: bytes) -> str:
    """The one-line error of a refusal (asserts that it is one)."""
    message = json.loads(raw)["detail"]
    assert isinstance(message, str) and "\n" not in message
    return message


def raw_exchange(port: int, data: bytes, wait: float) -> tuple[bytes, float]:
    """Send ``data`` on a raw socket and read until the server closes it (or ``wait``
    seconds pass): (what came back, seconds until it closed)."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(data)
        got = b""
        try:
            while chunk := sock.recv(65536):
                got += chunk
        except TimeoutError:
            pytest.fail(f"the server still held the connection after {wait} s: {got[:200]!r}")
        except ConnectionResetError:
            pass
    return got, time.monotonic() - start


# --------------------------------------------------------------------------- bodies


def test_request_bodies_are_limited_on_every_route(serve):
    server = serve(limits=Limits(max_body_bytes=4096))
    head = f"Host: 127.0.0.1:{server.port}\r\nOrigin: {server.base}\r\n"

    def refused(got: bytes) -> str:
        status_line, _, rest = got.partition(b"\r\n")
        assert status_line.startswith(b"HTTP/1.1 413"), got[:300]
        assert b"connection: close" in rest.lower()
        return detail(rest.partition(b"\r\n\r\n")[2])

    # A declared length over the limit: refused before a byte of the body is read.
    request = f"POST /api/jobs HTTP/1.1\r\n{head}Content-Type: application/json\r\n"
    got, _ = raw_exchange(
        server.port, (request + "Content-Length: 1000000000\r\n\r\n").encode(), 10
    )
    assert "4096 bytes" in refused(got)
    # Chunked, without a length: counted as it arrives, refused long before its end.
    chunk = b"3e8\r\n" + b" " * 1000 + b"\r\n"
    for kind in ("application/json", "text/plain"):
        request = f"POST /api/jobs HTTP/1.1\r\n{head}Content-Type: {kind}\r\n"
        request += "Transfer-Encoding: chunked\r\n\r\n"
        got, _ = raw_exchange(server.port, request.encode() + chunk * 5, 10)
        assert "4096 bytes" in refused(got), kind
    # A route that reads no body answers, and closes instead of reading the rest.
    request = f"POST /api/jobs/0/cancel HTTP/1.1\r\n{head}Transfer-Encoding: chunked\r\n\r\n"
    got, took = raw_exchange(server.port, request.encode() + chunk * 2, 10)
    assert got.startswith(b"HTTP/1.1 404") and b"connection: close" in got.lower()
    status, _, raw = server.request("GET", "/api/options", b"x" * 5000)
    assert status == 413 and "4096 bytes" in detail(raw)
    assert server.request("GET", "/api/options")[0] == 200  # and the server is fine


def test_a_refused_body_still_lets_the_client_read_the_answer(serve):
    """A client that sends its whole body before reading (as most do) must get the 413,
    not a reset: the server answers early, then reads and drops the rest for a while
    before it closes. Closing with the body unread makes the kernel send a reset, which
    discards the answer on its way."""
    server = serve(limits=Limits(max_body_bytes=4096))
    body = b" " * (16 << 20)  # far more than the sockets' buffers hold
    head = (
        f"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nOrigin: {server.base}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head.encode() + body)
        got = b""
        while chunk := sock.recv(65536):
            got += chunk
    assert got.startswith(b"HTTP/1.1 413"), got[:200]
    assert "4096 bytes" in detail(got.partition(b"\r\n\r\n")[2])


# --------------------------------------------------------------------------- slow clients


def test_half_sent_requests_are_dropped_within_the_bound(serve):
    limits = Limits(header_timeout_s=1.0, body_idle_timeout_s=1.0, keep_alive_s=1.0)
    server = serve(limits=limits)
    host = f"Host: 127.0.0.1:{server.port}\r\n".encode()
    # Headers that never end.
    got, took = raw_exchange(server.port, b"GET /api/options HTTP/1.1\r\n" + host, wait=6)
    assert got == b"" and took < 4
    # Nothing at all after connecting.
    got, took = raw_exchange(server.port, b"", wait=6)
    assert got == b"" and took < 4
    # A body that stops coming: 408, and the connection closes.
    head = b"POST /api/jobs HTTP/1.1\r\n" + host + f"Origin: {server.base}\r\n".encode()
    head += b"Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{"
    got, took = raw_exchange(server.port, head, wait=6)
    assert got.startswith(b"HTTP/1.1 408") and took < 4
    # A complete request, then the next one's headers trickle in and stop.
    whole = b"GET /api/options HTTP/1.1\r\n" + host + b"\r\n"
    got, took = raw_exchange(server.port, whole + b"GET / HTTP/1.1\r\n", wait=6)
    assert got.startswith(b"HTTP/1.1 200") and got.count(b"HTTP/1.1") == 1 and took < 4


# --------------------------------------------------------------------------- cross-site


def test_state_changing_requests_need_the_page_origin(serve):
    server = serve(PacedRun(pause=0.05))
    _, photo = server.upload(png_bytes(blob()), "photo.png")
    _, painting = server.upload(png_bytes(stripes()), "painting.png")
    body = json.dumps({"content": photo["id"], "styles": [{"id": painting["id"]}]})
    for origin in (None, "null", "http://attacker.example", f"http://localhost:{server.port}"):
        headers = {"Content-Type": "application/json", "Origin": origin}
        status, _, raw = server.request("POST", "/api/jobs", body, headers)
        assert status == 403 and detail(raw) == "cross-site request refused", origin
        status, _, _ = server.request("POST", "/api/uploads", png_bytes(blob()), {"Origin": origin})
        assert status == 403
    assert not server.json("GET", "/api/jobs")[1]  # no job was made
    status, job = server.start(photo["id"], [painting["id"]], size=64, steps=500)
    assert status == 201
    status, _, _ = server.request("POST", f"/api/jobs/{job['id']}/cancel", headers={"Origin": None})
    assert status == 403
    assert server.json("GET", f"/api/jobs/{job['id']}")[1]["status"] in ("queued", "running")
    assert server.json("POST", f"/api/jobs/{job['id']}/cancel")[0] == 200


def test_host_names_are_checked_on_any_address(serve):
    # Served (for the test) on loopback, but configured as if on all addresses.
    server = serve(host="0.0.0.0", allowed_host=("paint.example",))
    for name, expected in [
        (f"paint.example:{server.port}", 200),
        (f"PAINT.example:{server.port}", 200),
        (f"localhost:{server.port}", 200),
        (f"127.0.0.1:{server.port}", 200),
        (f"rebound.attacker.example:{server.port}", 400),
        (f"0.0.0.0:{server.port}", 400),
        ("", 400),
    ]:
        status, _, raw = server.request("GET", "/api/options", headers={"Host": name})
        assert status == expected, name
        if status == 400:
            assert "unknown host name" in detail(raw)
    args = build_parser().parse_args(["serve", "--allowed-host", "a.lan", "--allowed-host", "b"])
    assert args.allowed_host == ["a.lan", "b"]


# --------------------------------------------------------------------------- uploads


def test_decodes_run_at_most_max_decodes_at_once(serve, monkeypatch):
    running, most, lock = [0], [0], threading.Lock()
    real = uploads.load_image

    def slow_load(path):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            time.sleep(0.2)
            return real(path)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(uploads, "load_image", slow_load)
    server = serve(limits=Limits(max_decodes=2))
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(server.upload(png_bytes(blob()))))
        for _ in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [status for status, _ in results] == [201] * 6
    assert most[0] == 2


def test_the_upload_store_keeps_to_its_quota_evicting_the_oldest_unused(serve, tmp_path):
    noise = [png_bytes(Image.effect_noise((160, 160), 60 + i).convert("RGB")) for i in range(5)]
    quota = int(2.5 * max(len(n) for n in noise))
    server = serve(PacedRun(pause=0.05), limits=Limits(max_upload_store_bytes=quota))
    store = tmp_path / "data" / "uploads"

    def upload(i):
        status, info = server.upload(noise[i], f"n{i}.png")
        assert status == 201, info
        # Use order is modification time: make it distinct whatever the file system's
        # clock resolution (in the past, so that the jobs' own use comes later).
        then = time.time() - 100 + i
        os.utime(store / f"{info['id']}.img", (then, then))
        return info["id"]

    def kept(upload_id):
        return server.request("GET", f"/api/uploads/{upload_id}/thumb")[0] == 200

    a, b, c = upload(0), upload(1), upload(2)
    assert not kept(a) and kept(b) and kept(c)  # the oldest went
    _, job = server.start(b, [c], size=64, steps=2000)  # b and c are now in use
    d = upload(3)
    e = upload(4)
    assert kept(b) and kept(c) and not kept(d) and kept(e)
    used = sum(f.stat().st_size for f in store.iterdir())
    assert used <= quota + max(len(n) for n in noise) + 20_000  # in use, and the newest
    server.json("POST", f"/api/jobs/{job['id']}/cancel")
    assert server.wait(job["id"], lambda s: s["status"] in TERMINAL)["status"] == "cancelled"


# --------------------------------------------------------------------------- any input


IMAGE = png_bytes(blob(48, 40))
options = st.dictionaries(
    st.sampled_from(["size", "steps", "style_weight", "tv_weight", "seed", "init", "optimizer"]),
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=20),
        st.lists(st.integers(), max_size=3),
        st.sampled_from([32, 48, 64, "noise", "adam", "content"]),
    ),
    max_size=4,
)
mutated = st.builds(
    lambda cuts, flips: _mutate(IMAGE, cuts, flips),
    st.integers(0, len(IMAGE)),
    st.lists(st.tuples(st.integers(0, len(IMAGE) - 1), st.integers(0, 255)), max_size=8),
)


def _mutate(data: bytes, cut: int, flips) -> bytes:
    out = bytearray(data[:cut] if cut > 8 else data)
    for at, value in flips:
        if at < len(out):
            out[at] = value
    return bytes(out)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    server = Server(
        tmp_path_factory.mktemp("fuzz"),
        PacedRun(),
        limits=Limits(max_side=64, max_steps=3, max_queued=1000),
    )
    yield server
    server.stop()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.one_of(mutated, st.binary(max_size=2000)), opts=options, name=st.text(max_size=30))
def test_any_bytes_and_options_get_a_result_or_a_one_line_4xx(fuzz_server, data, opts, name):
    server = fuzz_server
    path = f"/api/uploads?name={quote(name)}"
    status, _, raw = server.request("POST", path, data, {"Content-Type": "image/png"})
    assert status == 201 or 400 <= status < 500, raw
    if status != 201:
        detail(raw)
        return
    upload_id = json.loads(raw)["id"]
    body = json.dumps({"content": upload_id, "styles": [{"id": upload_id}], "options": opts})
    status, _, raw = server.request("POST", "/api/jobs", body, {"Content-Type": "application/json"})
    assert status == 201 or 400 <= status < 500, raw
    if status != 201:
        detail(raw)
    else:
        job = json.loads(raw)
        final = server.wait(job["id"], lambda s: s["status"] in TERMINAL)
        assert final["status"] == "done" or "internal error" not in (final["error"] or ""), final
