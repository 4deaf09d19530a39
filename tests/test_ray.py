"""``painterly batch --ray`` on a real Ray cluster on this machine: a head and two worker
nodes on loopback, one of which is killed in the middle of a batch.

Marked ``ray``; skipped where Ray is not installed or a cluster cannot start here.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch
from synthetic import blob, stripes

from painterly.cli import main

OPTIONS = ["--weights", "offline", "--size", "48", "--steps", "4", "--seed", "2"]
STORE = 80 * 1024 * 1024  # object store per node: the photos are tiny
LOOPBACK = {"node_ip_address": "127.0.0.1"}  # never the machine's interface address
LOCAL_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # conftest sets it to 0 for the suite
# What the code chooses for a local instance it starts; the tests that check those
# choices run without them in the environment.
CODE_CHOICES = ("RAY_ADDRESS", LOCAL_ONLY, "RAY_worker_niceness")


def test_ray_without_the_extra_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    blob().save(tmp_path / "a.png")
    photo = str(tmp_path / "a.png")
    code = main(["batch", photo, "--style", photo, "-o", str(tmp_path), "--ray"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [
        "painterly: error: painterly batch --ray needs the ray extra (ray is missing): "
        'pip install "painterly[ray]"'
    ]


def test_the_cli_does_not_import_ray_without_the_flag():
    code = "import sys, painterly.cli as c; c.build_parser(); print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_an_address_where_nothing_listens_is_one_line(tmp_path, capsys):
    pytest.importorskip("ray")
    blob().save(tmp_path / "a.png")
    photo = str(tmp_path / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    code = main(["batch", photo, "--style", photo, "-o", str(out), "--ray", "127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("painterly: error: nothing answers at 127.0.0.1:9")
    assert list(out.iterdir()) == []  # not even a manifest


def test_threads_are_the_clusters_to_set(tmp_path, capsys):
    blob().save(tmp_path / "a.png")
    photo = str(tmp_path / "a.png")
    argv = ["batch", photo, "--style", photo, "-o", str(tmp_path / "out"), "--threads", "1"]
    code = main([*argv, "--ray", "127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--ray-cpus" in err, err


@pytest.fixture
def ray_alone():
    """A Ray folder (RAY_TMPDIR) of the test's own, so that a local instance started
    there meets no test cluster: ray.init() with no address joins the latest cluster
    started under the same folder. Short, as Ray's socket paths must fit 107 bytes."""
    folder = tempfile.mkdtemp(prefix="pr-")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_local_instance_lives_on_loopback(ray_alone):
    """``--ray`` without an address starts Ray here: the node it names, and the address
    drivers reach it at, are loopback; its workers run at the driver's priority, not
    Ray's niceness 15."""
    pytest.importorskip("ray")
    probe = (
        "import json, os, ray\n"
        "from painterly.cluster import ray_batch\n"
        "ray_batch.connect('')\n"
        "nodes = [n['NodeManagerAddress'] for n in ray.nodes()]\n"
        "nice = ray.get(ray.remote(lambda: os.nice(0)).remote())\n"
        "print(json.dumps([nodes, ray.get_runtime_context().gcs_address, nice]))\n"
        "ray_batch.shutdown()\n"
    )
    # Without the test suite's own loopback setting (conftest): the code must pin it.
    env = {k: v for k, v in os.environ.items() if k not in CODE_CHOICES}
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_TMPDIR=ray_alone)
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    nodes, gcs, nice = json.loads(done.stdout.strip().splitlines()[-1])
    assert nodes == ["127.0.0.1"] and gcs.startswith("127.0.0.1:"), (nodes, gcs)
    assert nice == os.nice(0), "the local instance's workers run below the driver"


def local_batch(contents, styles, out, tag: str, ray_dir: str) -> subprocess.Popen:
    """``batch --ray`` on a local instance the driver starts (no address) in ``ray_dir``,
    its processes tagged in their environment so that the test can find them."""
    env = {k: v for k, v in os.environ.items() if k not in CODE_CHOICES}
    env.update(RAY_USAGE_STATS_ENABLED="0", PAINTERLY_TEST_TAG=tag, RAY_TMPDIR=ray_dir)
    command = [sys.executable, "-m", "painterly", *batch_args(contents, styles, out), "--ray"]
    return subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)


def tagged(tag: str) -> list[int]:
    needle = f"PAINTERLY_TEST_TAG={tag}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def wait_for_outputs(proc, out: Path, count: int) -> None:
    deadline = time.monotonic() + 120
    while len(list(out.glob("*.png"))) < count:
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, f"not {count} outputs within two minutes"
        time.sleep(0.05)  # polls another process's files: there is no event to wait on


@pytest.mark.ray
def test_a_local_instance_survives_a_killed_worker_and_ends_with_a_killed_driver(
    photos, tmp_path, ray_alone
):
    """On the instance ``--ray`` starts here: a SIGKILLed worker process costs a retry
    (12 of 12 outputs, each once, as the local run makes them, exit 0); a SIGKILLed
    driver leaves no Ray process behind."""
    pytest.importorskip("ray")
    if not Path("/proc/self/environ").exists():
        pytest.skip("needs /proc")
    contents, styles = photos
    reference = local_reference(contents, styles, tmp_path / "local")
    out = tmp_path / "out"
    out.mkdir()
    proc = local_batch(contents, styles, out, "worker", ray_alone)
    wait_for_outputs(proc, out, 3)
    busy = [pid for pid in ray_processes("ray::stylize") if pid in tagged("worker")]
    assert busy, "no busy worker process to kill"
    os.kill(busy[0], signal.SIGKILL)
    code, err = finish(proc)
    assert code == 0, err
    assert_complete(out, reference)

    again = tmp_path / "again"
    again.mkdir()
    driver = local_batch(contents, styles, again, "driver", ray_alone)
    wait_for_outputs(driver, again, 1)
    assert len(tagged("driver")) > 3  # the driver and the instance's processes
    driver.kill()
    driver.wait()
    deadline = time.monotonic() + 60
    while left := tagged("driver"):
        assert time.monotonic() < deadline, f"Ray processes left running: {left}"
        time.sleep(0.2)  # polls the process table: there is no event to wait on


@pytest.fixture(scope="module")
def cluster():
    """A head (no CPUs of its own: it schedules) and two one-CPU worker nodes."""
    pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Its nodes stand for machines of their own, where nothing else competes for the
    # cores: their workers run at normal priority, not Ray's default niceness 15, under
    # which a busy test machine starves them.
    os.environ.setdefault("RAY_worker_niceness", "0")
    try:
        made = Cluster(
            initialize_head=True,
            head_node_args={"num_cpus": 0, "object_store_memory": STORE, **LOOPBACK},
        )
        workers = [
            made.add_node(num_cpus=1, object_store_memory=STORE, **LOOPBACK) for _ in range(2)
        ]
    except Exception as err:  # noqa: BLE001 - any reason Ray cannot start here
        pytest.skip(f"a local Ray cluster cannot start here: {err}")
    try:
        yield made, workers
    finally:
        made.shutdown()


def test_the_test_cluster_lives_on_loopback(cluster):
    made, _ = cluster
    assert made.address.startswith("127.0.0.1:")
    assert {n.node_ip_address for n in made.list_all_nodes()} == {"127.0.0.1"}


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Four photos and three styles: twelve outputs."""
    folder = tmp_path_factory.mktemp("inputs")
    contents, styles = [], []
    for i, (w, h) in enumerate([(96, 64), (64, 96), (80, 80), (72, 48)]):
        path = folder / f"photo{i}.png"
        blob(w, h).rotate(15 * i).save(path)
        contents.append(path)
    for i, period in enumerate([4, 8, 12]):
        path = folder / f"style{i}.png"
        stripes(64, 64, period).save(path)
        styles.append(path)
    return contents, styles


def batch_args(contents, styles, out) -> list[str]:
    args = ["batch", *map(str, contents)]
    for style in styles:
        args += ["--style", str(style)]
    return [*args, "-o", str(out), *OPTIONS]


def cli(*args, **popen) -> subprocess.Popen:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    command = [sys.executable, "-m", "painterly", *map(str, args)]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen
    )


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    _, err = proc.communicate(timeout=240)
    return proc.returncode, err


def local_reference(contents, styles, folder: Path) -> dict[str, bytes]:
    """``painterly batch --batch-size 1`` here with one thread, as each Ray task runs:
    output stem -> bytes."""
    folder.mkdir()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code = main([*batch_args(contents, styles, folder), "--batch-size", "1", "--quiet"])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    return {p.stem: p.read_bytes() for p in folder.glob("*.png")}


def assert_complete(out: Path, reference: dict[str, bytes]) -> None:
    """Every output once, byte for byte the local run's, each in the manifest with its
    hash; no temporary file left."""
    everything = sorted(p.name for p in out.iterdir())
    made_now = [name for name in everything if name.endswith(".png")]
    assert everything == sorted([*made_now, "painterly-manifest.json"])  # no temporary files
    assert len(made_now) == len(reference)
    for name in made_now:
        stem, _, digest = Path(name).stem.rpartition("-")
        assert len(digest) == 8 and (out / name).read_bytes() == reference[stem], name
    manifest = json.loads((out / "painterly-manifest.json").read_text())
    assert sorted(manifest["outputs"]) == made_now and manifest["failed"] == {}
    for name, record in manifest["outputs"].items():
        assert record["sha256"] == hashlib.sha256((out / name).read_bytes()).hexdigest()


def ray_processes(title: str) -> list[int]:
    """Process ids whose title (Ray sets it to ``ray::<task>`` in a busy worker) starts
    with ``title``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(title.encode()):
                    found.append(int(entry.name))
            except OSError:
                continue  # ended meanwhile
    return found


def snapshot(folder: Path) -> dict[str, tuple[int, str]]:
    return {
        p.name: (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in folder.iterdir()
    }


@pytest.mark.ray
def test_a_worker_process_killed_mid_batch_costs_a_retry_not_the_run(cluster, photos, tmp_path):
    made, _ = cluster
    contents, styles = photos
    out = tmp_path / "out"
    out.mkdir()
    reference = local_reference(contents, styles, tmp_path / "local")
    proc = cli(*batch_args(contents, styles, out), "--ray", made.address)
    deadline = time.monotonic() + 120
    while not (busy := ray_processes("ray::stylize")) or len(list(out.glob("*.png"))) < 3:
        assert proc.poll() is None, finish(proc)
        assert time.monotonic() < deadline, "no three outputs within two minutes"
        time.sleep(0.05)  # polls another process's files: there is no event to wait on
    os.kill(busy[0], signal.SIGKILL)
    killed_at = len(list(out.glob("*.png")))
    code, err = finish(proc)
    assert code == 0, err
    assert killed_at < 12
    assert_complete(out, reference)


@pytest.mark.ray
def test_batch_survives_a_lost_node_and_matches_the_local_bytes(cluster, photos, tmp_path):
    made, workers = cluster
    contents, styles = photos
    out, metrics = tmp_path / "out", tmp_path / "metrics.json"
    out.mkdir()
    reference = local_reference(contents, styles, tmp_path / "local")
    assert len(reference) == 12

    proc = cli(*batch_args(contents, styles, out), "--ray", made.address, "--metrics", metrics)
    deadline = time.monotonic() + 120
    while len(list(out.glob("*.png"))) < 2 and proc.poll() is None:
        assert time.monotonic() < deadline, "no output within two minutes"
        time.sleep(0.1)
    made.remove_node(workers[1], allow_graceful=False)  # a machine dies mid-batch
    killed_at = len(list(out.glob("*.png")))
    code, err = finish(proc)
    assert code == 0, err
    assert killed_at < 12  # the loss came while work was left

    assert_complete(out, reference)
    data = json.loads(metrics.read_text())
    assert data["images"] == 12 and len({item["node"] for item in data["items"]}) >= 1
    survivor = workers[0].node_id
    assert any(item["node"] == survivor for item in data["items"])

    # A rerun does no work: it needs no cluster at all (this address answers nothing).
    before = snapshot(out)
    code, err = finish(cli(*batch_args(contents, styles, out), "--ray", "127.0.0.1:9"))
    assert code == 0, err
    assert "all 12 outputs" in err and snapshot(out) == before


@pytest.mark.ray
def test_bad_input_is_reported_and_a_corrupt_output_is_redone(cluster, photos, tmp_path):
    made, _ = cluster
    contents, styles = photos
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not an image")
    out = tmp_path / "out"
    out.mkdir()
    args = [*batch_args([*contents[:2], bad], styles[:1], out), "--ray", made.address]

    code, err = finish(cli(*args))
    assert code == 1
    failed = [line for line in err.splitlines() if line.startswith("painterly: failed:")]
    assert len(failed) == 1 and "broken_style0-" in failed[0]
    assert f"{bad} is not an image Pillow can read" in failed[0]
    good = sorted(out.glob("*.png"))
    assert [p.name.split("-")[0] for p in good] == ["photo0_style0", "photo1_style0"]
    manifest = json.loads((out / "painterly-manifest.json").read_text())
    assert len(manifest["outputs"]) == 2 and len(manifest["failed"]) == 1

    intact, damaged = good
    kept, right = intact.stat().st_mtime_ns, damaged.read_bytes()
    damaged.write_bytes(right[: len(right) // 2])  # a disk error, a partial copy
    code, err = finish(cli(*args))
    assert code == 1 and "1 done before" in err  # the bad photo still fails
    assert damaged.read_bytes() == right and intact.stat().st_mtime_ns == kept
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_chunks_cover_the_clip_and_cross_fade_their_overlap():
    from PIL import Image

    from painterly.cluster.chunks import compose, join_pairs, plan, sources
    from painterly.errors import OptionsError

    chunks = plan(10, 4, 2)
    assert [(c.start, c.owned, c.stop) for c in chunks] == [(0, 0, 4), (2, 4, 8), (6, 8, 10)]
    for frame in range(10):
        parts = sources(frame, chunks)
        assert abs(sum(w for _, w in parts) - 1) < 1e-9
        assert all(c.start <= frame < c.stop for c, _ in parts)  # the chunk made it
    assert [round(w, 3) for _, w in sources(2, chunks)] == [0.667, 0.333]
    assert [round(w, 3) for _, w in sources(3, chunks)] == [0.333, 0.667]
    assert join_pairs(chunks) == [1, 2, 3, 5, 6, 7] and join_pairs(plan(10, 4, 0)) == [3, 7]

    def image(chunk, frame):  # chunk k's frames are all grey level 30 k
        return Image.new("RGB", (4, 4), (30 * chunk.index,) * 3)

    assert compose(3, chunks, image).getpixel((0, 0)) == (20, 20, 20)
    assert compose(5, chunks, image).getpixel((0, 0)) == (30, 30, 30)
    with pytest.raises(OptionsError):
        plan(10, 4, 4)


@pytest.mark.ray
def test_video_in_chunks_matches_the_local_frames_it_owns(cluster, tmp_path):
    pytest.importorskip("av")
    pytest.importorskip("cv2")
    import numpy as np
    from PIL import Image

    made, _ = cluster
    clip = tmp_path / "clip"
    clip.mkdir()
    for i in range(6):
        blob(64, 48).rotate(3 * i).save(clip / f"{i:03d}.png")
    style = tmp_path / "style.png"
    stripes(64, 64).save(style)
    common = [clip, style, "--weights", "offline", "--size", "48", "--first-steps", "3"]
    common += ["--steps", "2", "--quiet"]
    out = tmp_path / "painted"
    code, err = finish(cli("video", *common, "-o", out, "--ray", made.address, "--ray-chunk",
                           "3", "--ray-overlap", "1"))  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [f"frame_{i:06d}.png" for i in range(1, 7)]
    assert not (tmp_path / "painted.frames").exists()

    local = tmp_path / "local"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["video", *map(str, common), "-o", str(local), "--max-frames", "3"]) == 0
    finally:
        torch.set_num_threads(threads)
    for name in ("frame_000001.png", "frame_000002.png"):  # chunk 0's own, before the fade
        ours, theirs = (np.asarray(Image.open(d / name)) for d in (out, local))
        assert np.array_equal(ours, theirs), name

    # A chunk's frame truncated in a kept store is redone on --resume, not joined.
    kept = tmp_path / "kept"
    args = [*common, "-o", kept, "--ray", made.address, "--ray-chunk", "3", "--ray-overlap", "1"]
    args.append("--keep-frames")
    code, err = finish(cli("video", *args))
    assert code == 0, err
    frame = tmp_path / "kept.frames" / "chunk00001" / "frame_000005.png"
    whole = frame.read_bytes()
    pixels = np.asarray(Image.open(frame))
    frame.write_bytes(whole[: len(whole) // 2])
    code, err = finish(cli("video", *args, "--resume", "--overwrite"))
    assert code == 0, err
    assert np.array_equal(np.asarray(Image.open(frame)), pixels)  # made again, whole
