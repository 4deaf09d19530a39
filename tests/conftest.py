"""Shared fixtures: small synthetic images and tiny stand-in networks.

The device is a test option (``--device``) that defaults to the CPU, so the same suite
runs on a GPU machine with ``pytest --device cuda``.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import tempfile

# OpenMP's threads spin while they wait for work. On a shared machine whose cores are
# busy (a browser, a server thread, other jobs) a spinning thread that loses its core
# stalls every parallel region: a 64 px step took 10x longer at the median, and up to
# 100x, than with sleeping waits. The suite's tensors are tiny, so waiting passively
# costs nothing here. Set before torch loads OpenMP; the tests' subprocesses inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
assert "torch" not in sys.modules, "conftest must run before torch is imported"
# Tests talk to 127.0.0.1 only. Ray, left alone, names its nodes by the machine's
# network interface address and listens there; this switch (Ray's default on macOS and
# Windows) keeps every node of the test clusters on loopback. Set before Ray is imported;
# the tests' subprocesses inherit it.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
# Ray's own files (sockets, logs, and the address of the latest cluster started, which
# ray.init() with no address joins) live under RAY_TMPDIR, /tmp by default: two test
# runs on one machine would join each other's clusters (a local instance's test found
# another run's three-node test cluster). Each run keeps its own.
OWN_RAY_TMPDIR = None
if "RAY_TMPDIR" not in os.environ:
    OWN_RAY_TMPDIR = os.environ["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="painterly-ray-")

import pytest  # noqa: E402
from synthetic import blob, stripes  # noqa: E402


def pytest_unconfigure(config):
    if OWN_RAY_TMPDIR:
        shutil.rmtree(OWN_RAY_TMPDIR, ignore_errors=True)


def pytest_addoption(parser):
    parser.addoption("--device", default="cpu", help="torch device for the tests")


@pytest.fixture(autouse=True)
def offline_cache(request, tmp_path_factory, monkeypatch):
    """Every test gets an empty weights cache and registry URLs that point nowhere, so no
    test ever downloads (on a machine with internet, ``auto`` would fetch 80 MB)."""
    from painterly.encoders.registry import REGISTRY

    monkeypatch.setenv("PAINTERLY_CACHE", str(tmp_path_factory.mktemp("cache")))
    if request.node.get_closest_marker("real_registry"):
        return  # the test reads the registry's real URLs and never downloads
    for name, ws in list(REGISTRY.items()):
        nowhere = dataclasses.replace(ws, urls=("http://127.0.0.1:9/" + ws.filename,))
        monkeypatch.setitem(REGISTRY, name, nowhere)


@pytest.fixture(autouse=True)
def pinned_precision(request, monkeypatch):
    """Tests that are not about precision run in fp32 wherever ``auto`` would pick
    something else (a GPU with ``--device cuda``), so that their thresholds mean the same
    on every machine. Tests marked ``precision`` choose their own."""
    if request.node.get_closest_marker("precision"):
        return
    from painterly import optimize, pipeline, precision

    def pinned(choice, device, exact=False):
        return "fp32" if choice == "auto" else precision.resolve_precision(choice, device)

    for module in (optimize, pipeline):  # where a run resolves ``auto``
        monkeypatch.setattr(module, "resolve_precision", pinned)


@pytest.fixture
def device(request):
    return request.config.getoption("--device")


@pytest.fixture
def content_path(tmp_path):
    p = tmp_path / "content.png"
    blob().save(p)
    return p


@pytest.fixture
def style_path(tmp_path):
    p = tmp_path / "style.png"
    stripes().save(p)
    return p


@pytest.fixture
def data_dir(tmp_path):
    """The web app's data folder in the web tests."""
    return tmp_path / "data"


@pytest.fixture
def serve(data_dir):
    """Start web servers on loopback (tests/webserver.py); all stop at the test's end."""
    from webserver import Server

    servers = []

    def start(runner=None, **kwargs):
        server = Server(data_dir, runner, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
