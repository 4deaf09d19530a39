"""Fast models: the network, training (reproducible, resumable after SIGKILL), model
files (and refusing files that are not ours), inference in tiles, ONNX export and the
commands. Tiny widths and crops keep the whole file quick."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from synthetic import blob, stripes

from painterly.cli import main
from painterly.fast import model_file
from painterly.fast.apply import choose_tile, paint_tensor
from painterly.fast.network import TransformerNet, make_network
from painterly.image import load_image, read_metadata
from painterly.tiling import Tile, feather

TINY = ["--width", "4", "--blocks", "1", "--crop", "32", "--batch-size", "2", "--quiet"]


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    blob().save(folder / "a.png")
    blob(80, 96).save(folder / "sub" / "b.jpg")
    stripes(64, 64, 16).rotate(90).save(folder / "c.png")
    (folder / "broken.jpg").write_text("not a jpeg")
    (folder / "notes.txt").write_text("ignored: not an image")
    return folder


@pytest.fixture
def style(tmp_path):
    path = tmp_path / "style.png"
    stripes().save(path)
    return path


def _train(style, photos, out, *extra):
    argv = ["train", str(style), "--images", str(photos), "-o", str(out), *TINY, *extra]
    return main(argv)


def _weights(path):
    net, _ = model_file.load_model(path)
    return net.state_dict()


def _same(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- the network ----------------------------------------------------------------------


@pytest.mark.parametrize("size", [(32, 32), (45, 67), (17, 9)])
def test_network_keeps_any_size_and_stays_in_0_1(size):
    net = make_network(4, 2, seed=0)
    x = torch.rand(2, 3, *size)
    y = net(x)
    assert y.shape == x.shape and 0 < y.min() and y.max() < 1


def test_network_has_no_transposed_convolution_and_uses_instance_norm():
    net = TransformerNet(8, 5)
    kinds = {type(m).__name__ for m in net.modules()}
    assert "ConvTranspose2d" not in kinds and "BatchNorm2d" not in kinds
    assert {"InstanceNorm2d", "ReflectionPad2d"} <= kinds
    assert net.stem[1].kernel_size == (9, 9) and net.out[1].kernel_size == (9, 9)
    assert net.down1[1].stride == (2, 2) and net.up1[1].stride == (1, 1)
    assert len(net.res) == 5 and net.stem[1].out_channels == 8


def test_same_seed_same_start_and_the_global_rng_is_untouched():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a, b, c = make_network(4, 1, 7), make_network(4, 1, 7), make_network(4, 1, 8)
    assert _same(a.state_dict(), b.state_dict()) and not _same(a.state_dict(), c.state_dict())
    assert torch.equal(torch.random.get_rng_state(), before)


# --- tiles --------------------------------------------------------------------------


def test_feathered_tiles_equal_one_pass_for_a_pointwise_network():
    class Pointwise(torch.nn.Module):  # no spatial context: tiles must reproduce it exactly
        width = 4

        def forward(self, x):
            return torch.sigmoid(3 * x - 1)

    x = torch.rand(1, 3, 150, 230)
    whole, tiled = paint_tensor(Pointwise(), x), paint_tensor(Pointwise(), x, tile=64)
    assert torch.allclose(whole, tiled, atol=1e-6)


def test_feather_ramps_only_inner_edges():
    w = feather(Tile(0, 64, 32, 96), 100, 96, 16, "cpu")[0, 0]
    assert w[0, 40] == 1 and w[-1, 30] < 0.1 and w[30, 0] < 0.1 and w[30, -1] == 1
    assert (w > 0).all()


def test_tile_follows_the_memory_budget():
    assert choose_tile(32, (512, 512), 2**34) == 0
    side = choose_tile(32, (4000, 3000), 256 * 2**20)
    assert 64 <= side < 4000 and side % 16 == 0
    assert choose_tile(32, (4000, 3000), 2**34, tile=500) == 500


# --- training -----------------------------------------------------------------------


def test_train_writes_a_tagged_model_and_is_bit_reproducible(tmp_path, photos, style, capsys):
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    metrics = tmp_path / "m.json"
    assert _train(style, photos, a, "--iterations", "3", "--metrics", str(metrics)) == 0
    assert "skipping 1 unreadable" in capsys.readouterr().err  # broken.jpg; notes.txt ignored
    assert _train(style, photos, b, "--iterations", "3") == 0
    assert _same(_weights(a), _weights(b))
    net, info = model_file.load_model(a)
    assert info.width == 4 and info.iterations == 3 and info.encoder == "offline"
    assert info.styles[0]["name"] == "style" and len(info.styles[0]["sha256"]) == 64
    assert info.options["crop"] == 32
    import json

    data = json.loads(metrics.read_text())
    assert len(data["history"]) == 3 and data["photos"] == 3 and data["encoder"] == "offline"
    assert {"content", "style", "tv", "total", "seconds"} <= set(data["history"][0])
    # another seed, other weights
    c = tmp_path / "c.safetensors"
    assert _train(style, photos, c, "--iterations", "3", "--seed", "1") == 0
    assert not _same(_weights(a), _weights(c))


def test_training_lowers_the_loss(tmp_path, photos, style):
    import json

    metrics = tmp_path / "m.json"
    out = tmp_path / "m.safetensors"
    argv = ["--iterations", "30", "--learning-rate", "0.01", "--metrics", str(metrics)]
    assert _train(style, photos, out, *argv) == 0
    totals = [h["total"] for h in json.loads(metrics.read_text())["history"]]
    assert np.mean(totals[-5:]) < 0.8 * np.mean(totals[:5])


def test_training_keeps_more_of_the_photo_unless_a_strength_or_preset_is_given(
    tmp_path, photos, style
):
    def strength(*extra) -> float:
        out = tmp_path / f"m{len(list(tmp_path.glob('m*.safetensors')))}.safetensors"
        assert _train(style, photos, out, "--iterations", "1", *extra) == 0
        return model_file.read_info(out).options["loss"]["strength"]

    assert strength() == 0.3  # TRAIN_STRENGTH: the network must learn the photo's structure
    assert strength("--strength", "0.6") == 0.6
    assert strength("--preset", "bold") == 0.75  # the preset's own balance


def test_empty_folder_and_existing_output_are_one_line_errors(tmp_path, style, photos, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x.jpg").write_text("no")
    assert _train(style, empty, tmp_path / "m.safetensors", "--iterations", "1") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no readable photos" in err
    out = tmp_path / "exists.safetensors"
    out.write_text("mine")
    assert _train(style, photos, out, "--iterations", "1") == 2
    assert "--overwrite" in capsys.readouterr().err and out.read_text() == "mine"


def test_resume_after_sigkill_equals_an_uninterrupted_run(tmp_path, photos, style):
    whole, cut = tmp_path / "whole.safetensors", tmp_path / "cut.safetensors"
    n = "24"
    assert _train(style, photos, whole, "--iterations", n, "--save-every", "3") == 0
    argv = [sys.executable, "-m", "painterly", "train", str(style), "--images", str(photos)]
    argv += ["-o", str(cut), *TINY, "--iterations", n, "--save-every", "3"]
    proc = subprocess.Popen(argv, stderr=subprocess.DEVNULL, env=os.environ.copy())
    ckpt = cut.with_suffix(".ckpt")
    deadline = time.monotonic() + 60
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    stopped_at = model_file.load_checkpoint(ckpt).iteration
    assert 0 < stopped_at < int(n) and not cut.exists()
    assert _train(style, photos, cut, "--iterations", n, "--save-every", "3", "--resume") == 0
    assert _same(_weights(whole), _weights(cut))


def test_resume_refuses_other_settings(tmp_path, photos, style, capsys):
    out = tmp_path / "m.safetensors"
    assert _train(style, photos, out, "--iterations", "2") == 0
    assert _train(style, photos, out, "--iterations", "3", "--resume", "--seed", "5") == 2
    assert "other settings" in capsys.readouterr().err


# --- model files --------------------------------------------------------------------


def test_foreign_corrupt_and_truncated_files_are_one_line_errors(tmp_path, photos, style, capsys):
    from safetensors.torch import save_file

    good = tmp_path / "m.safetensors"
    assert _train(style, photos, good, "--iterations", "1") == 0
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(3)}, str(foreign), metadata={"format": "pt"})
    text = tmp_path / "text.safetensors"
    text.write_text("hello, I am text")
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(good.read_bytes()[:-100])
    photo = photos / "a.png"
    for bad in (foreign, text, truncated, tmp_path / "missing.safetensors"):
        capsys.readouterr()
        assert main(["apply", str(bad), str(photo), "-o", str(tmp_path / "o.png")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("painterly: error:"), err
    assert not (tmp_path / "o.png").exists()


# --- apply, models, export, --init model: ------------------------------------------------


def test_apply_files_and_folders_with_metadata(tmp_path, photos, style, capsys):
    model = tmp_path / "m.safetensors"
    assert _train(style, photos, model, "--iterations", "1") == 0
    one = tmp_path / "one.png"
    assert main(["apply", str(model), str(photos / "a.png"), "-o", str(one)]) == 0
    meta = read_metadata(one)
    assert meta["painterly:model:format"] == model_file.MODEL_FORMAT
    assert "style" in meta["painterly:model:styles"]
    assert load_image(one).size == load_image(photos / "a.png").size
    # tiled and with colours kept: same size
    tiled = tmp_path / "tiled.jpg"
    argv = ["apply", str(model), str(photos / "sub" / "b.jpg"), "-o", str(tiled), "--tile", "64"]
    assert main([*argv, "--preserve-color", "luminance"]) == 0
    assert load_image(tiled).size == (80, 96)
    # never over an existing file, never over an input
    assert main(["apply", str(model), str(photos / "a.png"), "-o", str(one)]) == 2
    inp = photos / "a.png"
    assert main(["apply", str(model), str(inp), "-o", str(inp), "--overwrite"]) == 2
    # a folder in, a folder out
    outdir = tmp_path / "out"
    outdir.mkdir()
    assert main(["apply", str(model), str(photos / "sub"), str(inp), "-o", str(outdir)]) == 0
    assert sorted(p.name for p in outdir.iterdir()) == ["a_m.png", "b_m.png"]
    assert main(["apply", str(model), str(inp), str(inp), "-o", str(tmp_path / "x.png")]) == 2


def test_bare_name_goes_to_the_models_folder(tmp_path, photos, style, capsys):
    assert _train(style, photos, "starry", "--iterations", "1") == 0
    assert (model_file.models_dir() / "starry.safetensors").is_file()
    capsys.readouterr()
    assert main(["models"]) == 0
    line = capsys.readouterr().out
    assert "starry" in line and "styles style" in line and "width 4" in line
    out = tmp_path / "o.png"
    assert main(["apply", "starry", str(photos / "a.png"), "-o", str(out)]) == 0


def test_stylize_can_start_from_a_model(tmp_path, photos, style):
    model = tmp_path / "m.safetensors"
    assert _train(style, photos, model, "--iterations", "1") == 0
    from painterly.api import model_start
    from painterly.config import preset
    from painterly.image import to_tensor
    from painterly.pipeline import Job

    # The job starts from the model's painting of the photo at its first scale's size.
    job = Job(blob(56, 40), [], None, lambda rgb: rgb)
    opts = preset("offline").replace(init=f"model:{model}", size=56, scales=1)
    started = model_start(job, opts, torch.device("cpu"))
    net, _ = model_file.load_model(model)
    assert torch.allclose(started.init, net(to_tensor(job.content)).clamp(0, 1))
    assert model_start(job, preset("offline"), torch.device("cpu")) is job  # no model: as it was
    out = tmp_path / "s.png"
    argv = ["stylize", str(photos / "a.png"), str(style), "-o", str(out), "--steps", "2"]
    assert main([*argv, "--size", "48", "--init", f"model:{model}", "--quiet"]) == 0


def test_onnx_export_matches_pytorch(tmp_path, photos, style):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model = tmp_path / "m.safetensors"
    assert _train(style, photos, model, "--iterations", "2") == 0
    onnx_path = tmp_path / "m.onnx"
    assert main(["export", str(model), "-o", str(onnx_path)]) == 0
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    net, _ = model_file.load_model(model)
    for shape in [(1, 3, 64, 64), (1, 3, 45, 71), (2, 3, 96, 40)]:  # dynamic sizes
        x = torch.rand(*shape)
        ours = (net(x).numpy() * 255).round()
        theirs = (session.run(None, {"photo": x.numpy()})[0] * 255).round()
        assert theirs.shape == ours.shape and np.abs(ours - theirs).max() <= 1
    meta = {p.key: p.value for p in __import__("onnx").load(str(onnx_path)).metadata_props}
    assert meta["format"] == model_file.MODEL_FORMAT


def test_a_model_can_be_trained_toward_the_nearest_neighbour_style(tmp_path, photos, style):
    a, b, g = (tmp_path / f"{n}.safetensors" for n in "abg")
    assert _train(style, photos, a, "--iterations", "3", "--style-loss", "nearest") == 0
    assert _train(style, photos, b, "--iterations", "3", "--style-loss", "nearest") == 0
    assert _train(style, photos, g, "--iterations", "3") == 0
    assert _same(_weights(a), _weights(b))  # new samples every iteration, from the seed
    assert not _same(_weights(a), _weights(g))
    _, info = model_file.load_model(a)
    assert info.options["loss"]["style_loss"] == "nearest"


def test_a_model_can_be_trained_toward_the_mean_and_covariance(tmp_path, photos, style):
    m, g = tmp_path / "m.safetensors", tmp_path / "g.safetensors"
    assert _train(style, photos, m, "--iterations", "3", "--style-loss", "meancov") == 0
    assert _train(style, photos, g, "--iterations", "3", "--style-loss", "gram") == 0
    assert not _same(_weights(m), _weights(g))
    _, info = model_file.load_model(m)
    assert info.options["loss"]["style_loss"] == "meancov"


def test_training_sizes_left_unset_are_chosen_for_the_device():
    from painterly.fast.config import TrainConfig

    cpu, gpu = TrainConfig().for_device("cpu"), TrainConfig().for_device("cuda")
    assert (cpu.width, cpu.batch_size) == (16, 2)
    assert (gpu.width, gpu.batch_size) == (32, 4)
    given = TrainConfig(width=8, batch_size=3)
    assert given.for_device("cpu") == given == given.for_device("cuda")
