"""`painterly explain`: the report page, on tiny images with tiny or offline encoders."""

from __future__ import annotations

import base64
import io
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from PIL import Image
from synthetic import blob, stripes, tiny_encoder

import painterly
from painterly import report
from painterly.cli import main

TINY = {"size": 48, "steps": 4, "recon_steps": 3}


class _Page(HTMLParser):
    """Collects what the tests look at: ids, headings, image sources, links, errors."""

    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.h2: list[str] = []
        self.srcs: list[str] = []
        self.hrefs: list[str] = []
        self.tags: list[str] = []
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if "id" in a:
            self.ids.add(a["id"])
        if "src" in a:
            self.srcs.append(a["src"])
        if "href" in a:
            self.hrefs.append(a["href"])
        self._in_h2 = tag == "h2"
        if tag == "h2":
            self.h2.append("")

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data):
        if self._in_h2:
            self.h2[-1] += data


def parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    page.close()
    return page


def check_page(text: str, max_bytes: int) -> _Page:
    """The properties every report must have, whatever made it."""
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert len(text.encode("utf-8")) < max_bytes
    page = parse(text)
    for sid, title in report.SECTIONS:
        assert sid in page.ids, f"section {sid} missing"
        assert title in page.h2
    # Self-contained: no outside address anywhere in the file, no scripts, no stylesheets.
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", text, re.I)
    assert "script" not in page.tags and "link" not in page.tags
    assert all(h.startswith("#") for h in page.hrefs)
    # Every picture is an embedded PNG that decodes.
    assert len(page.srcs) >= 20
    for src in page.srcs:
        assert src.startswith("data:image/png;base64,")
        img = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        img.verify()
    return page


@pytest.fixture(scope="module")
def tiny_report(request):
    device = request.config.getoption("--device")
    enc = tiny_encoder()
    enc.to(device)
    before = {k: v.clone() for k, v in enc.net.state_dict().items()}
    stages = []
    result = report.explain(
        blob(96, 64),
        stripes(96, 64),
        encoder=enc,
        device=device,
        on_stage=lambda i, n, what: stages.append((i, n, what)),
        **TINY,
    )
    return result, enc, before, stages


def test_report_page_is_complete_and_self_contained(tiny_report):
    result, *_ = tiny_report
    page = check_page(result.html, max_bytes=1_000_000)
    # a stand-in encoder is neither the offline one nor VGG19 with random weights
    assert "offline-encoder" not in page.ids and "random-vgg19" not in page.ids
    # One chart per loss view, each a well-formed SVG, with the run's layers in the legend.
    svgs = re.findall(r"<svg .*?</svg>", result.html, re.S)
    assert len(svgs) == 3  # the diagram and two charts
    for svg in svgs:
        ET.fromstring(svg)
    for layer in painterly.Options().style_layers:
        assert layer in result.html


def test_report_runs_every_reconstruction_and_changes_no_weight(tiny_report):
    result, enc, before, stages = tiny_report
    # 1 stylisation + content from 6 layers (5 style layers and block4_conv2) + 5 style sets
    assert [s[0] for s in stages] == list(range(1, 13)) and stages[0][1] == 12
    assert "block4_conv2" in stages[5][2] and "block5_conv1" in stages[-1][2]
    # The page's claim, checked: the network's weights are exactly what they were.
    after = enc.net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert set(result.timings) >= {"stylisation", "content reconstructions"}


def test_reconstruction_weight_makes_lbfgs_move_from_noise(device):
    # With weight 1 the gradient in 0..255 input units is so small that L-BFGS stalls;
    # the report's weight must let a reconstruction from noise actually converge.
    import painterly

    enc = tiny_encoder()
    enc.to(device)
    r = painterly.run(
        blob(64, 48),
        stripes(64, 48),
        encoder=enc,
        device=device,
        size=48,
        steps=15,
        init="noise",
        tv_weight=0.0,
        style_weight=0.0,
        content_weight=report.RECON_WEIGHT,
        content_layer="block1_conv1",
        style_layers=("block1_conv1",),
    )
    hist = r.metrics["history"]
    assert hist[-1]["content"] < 0.1 * hist[0]["content"]


def test_cli_writes_report_with_offline_fallback_and_one_encoder(
    tmp_path, capsys, monkeypatch, content_path, style_path, device
):
    from painterly import api

    loads = []
    real = api.load_encoder

    def counting(*args, **kwargs):
        loads.append((args[0], kwargs["upto"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "load_encoder", counting)
    out = tmp_path / "r.html"
    # weights auto with no cache and no network (see conftest): the offline encoder, with
    # the offline preset's layers, exactly as `painterly stylize` would run.
    code = main(
        ["explain", str(content_path), str(style_path), "-o", str(out), "--size", "48"]
        + ["--steps", "3", "--recon-steps", "2", "--recon-size", "40", "--device", device]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert "using the offline encoder" in err and "[12/12]" in err and "wrote" in err
    assert loads == [("offline", "level5")]  # once, deep enough for every reconstruction
    assert "reconstructing the photo from luma1 alone" in err
    text = out.read_text(encoding="utf-8")
    page = check_page(text, max_bytes=1_000_000)
    assert "offline-encoder" in page.ids and "random-vgg19" not in page.ids
    banner = re.search(r'<div class="banner" id="offline-encoder">(.*?)</div>', text).group(1)
    assert "could not be downloaded" in banner and "<b>offline encoder</b>" in banner
    for layer in ("luma1", "luma2", "luma3", "level1", "level5"):
        assert f"<code>{layer}</code>" in banner
    assert "VGG19 with random weights" not in text and "VGG19 architecture" not in text
    assert "offline encoder, random weights, seed 0" in text


def test_cli_report_names_vgg19_with_random_weights(tmp_path, capsys, content_path, style_path):
    # --weights random-vgg19 asks for it outright; a preset of VGG19's pretrained
    # features (gatys) is refused without them, rather than run on random ones.
    layers = ["--style-layers", "block1_conv1,block2_conv1", "--content-layer", "conv2_2"]
    out = tmp_path / "r.html"
    argv = ["explain", str(content_path), str(style_path), "-o", str(out), "--preset", "gatys"]
    assert main(argv) == 2 and not out.exists()
    assert "needs VGG19's pretrained weights" in capsys.readouterr().err
    for choice, why in (
        (["--preset", "gatys", "--weights", "random-vgg19"], "<code>--weights random-vgg19</code>"),
        (["--weights", "random-vgg19"], "<code>--weights random-vgg19</code>"),
    ):
        out = tmp_path / "r.html"
        code = main(
            ["explain", str(content_path), str(style_path), "-o", str(out), "--overwrite"]
            + ["--size", "40", "--steps", "1", "--recon-steps", "1", *layers, *choice]
        )
        err = capsys.readouterr().err
        assert code == 0, err
        text = out.read_text(encoding="utf-8")
        page = parse(text)
        assert "random-vgg19" in page.ids and "offline-encoder" not in page.ids
        banner = re.search(r'<div class="banner" id="random-vgg19">(.*?)</div>', text).group(1)
        assert "<b>VGG19 with random weights</b>" in banner and why in banner
        assert "offline encoder" not in text and "luma1" not in text
        assert "VGG19 with random weights, seed 0" in text


def test_cli_quiet_prints_nothing(tmp_path, capsys, content_path, style_path, device):
    out = tmp_path / "r.html"
    code = main(
        ["explain", str(content_path), str(style_path), "-o", str(out), "--quiet"]
        + ["--weights", "offline", "--size", "40", "--steps", "1", "--recon-steps", "1"]
        + ["--style-layers", "block1_conv1,block2_conv1", "--content-layer", "conv2_1"]
        + ["--device", device]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err == "" and captured.out == ""
    text = out.read_text(encoding="utf-8")
    page = parse(text)
    assert "offline-encoder" in page.ids and "settings" in page.ids
    # VGG19 layer names are read as the offline encoder's levels at the same scale
    assert "<code>level2</code>, outlined" in text and "--weights offline" in text


@pytest.mark.parametrize(
    "extra, message",
    [
        (["-o", "{tmp}/r.png"], ".html"),
        (["-o", "{tmp}/missing/r.html"], "not an existing directory"),
        (["-o", "{tmp}/r.html", "--content-layer", "block9_conv9"], "unknown layer"),
        (["-o", "{tmp}/r.html", "--recon-size", "8"], "--recon-size"),
        (["-o", "{tmp}/r.html", "--steps", "0"], "--steps"),
        (["-o", "{tmp}/r.html", "--weights", "nonsense"], "unknown weights"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path, capsys, content_path, style_path, extra, message
):
    argv = ["explain", str(content_path), str(style_path)]
    if "--weights" not in extra:
        argv += ["--weights", "offline"]
    code = main(argv + [a.format(tmp=tmp_path) for a in extra])
    err = capsys.readouterr().err
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("painterly: error:")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in err
    assert not (tmp_path / "r.html").exists()


def test_missing_or_broken_image_is_exit_2(tmp_path, capsys, style_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    for content in (tmp_path / "nope.jpg", broken):
        code = main(["explain", str(content), str(style_path), "-o", str(tmp_path / "r.html")])
        err = capsys.readouterr().err
        assert code == 2 and str(content) in err


def test_log_chart_leaves_out_what_a_log_scale_cannot_show():
    svg = report.log_chart_svg(
        {"a": ([0.0, 1e-12, 1.0, 0.1, 0.01], "#000"), "zero": ([0.0] * 5, "#111")},
        title="t",
    )
    ET.fromstring(svg.split('<div class="legend">')[0])
    lines = re.findall(r'points="([^"]*)"', svg)
    assert len(lines) == 1 and len(lines[0].split()) == 3  # 0 and the 1e-12 outlier dropped
    assert "zero" in svg  # still in the legend


def test_heatmap_maps_range_onto_color_map_ends():
    img = report.heatmap(np.array([[0.0, 1.0], [2.0, -5.0]]), 0.0, 1.0, report.VIRIDIS, cell=3)
    assert img.size == (6, 6)
    px = np.asarray(img)
    assert tuple(px[0, 0]) == tuple(report.VIRIDIS[0]) == tuple(px[3, 3])  # clipped low
    assert tuple(px[0, 3]) == tuple(report.VIRIDIS[255]) == tuple(px[3, 0])  # clipped high


def test_where_from_finds_the_painting_in_itself_and_rebuilds_it():
    from painterly.report import sources

    feats = torch.rand(8, 6, 10, generator=torch.Generator().manual_seed(0))
    places = sources.nearest_places(feats, feats)
    assert torch.equal(places.flatten(), torch.arange(60))
    assert sources.coverage(places, 60) == 1.0
    assert sources.coverage(torch.zeros(6, 10, dtype=torch.long), 60) == 1 / 60
    painting = stripes(40, 24)  # 4 px per feature cell
    _, by_place, collage = sources.pictures(places, (6, 10), painting, (40, 24))
    assert collage.tobytes() == painting.tobytes()
    assert by_place.size == (40, 24)
    flipped = places.flip(1)  # every match from the mirrored column
    _, _, mirrored = sources.pictures(flipped, (6, 10), painting, (40, 24))
    assert mirrored.tobytes() != painting.tobytes()


def test_the_where_from_section_says_what_the_loss_asked_for(tiny_report):
    result, *_ = tiny_report
    assert "The Gram loss did not ask for this" in result.html
    assert re.search(
        r"use \d+% of the painting's places; the photo's, before the run, used \d+%", result.html
    )


def test_the_reports_settings_are_declared_and_checked_like_options():
    from painterly.errors import OptionsError
    from painterly.report import ReportConfig

    assert ReportConfig() == ReportConfig(None, None)  # None: derived from size and steps
    with pytest.raises(OptionsError, match="recon_size"):
        ReportConfig(recon_size=5)
    with pytest.raises(OptionsError, match="recon_steps"):
        report.explain(blob(), stripes(), encoder=tiny_encoder(), **{**TINY, "recon_steps": 0})


def test_a_meancov_run_shows_the_covariances_its_loss_compares():
    result = report.explain(
        blob(96, 64), stripes(96, 64), encoder=tiny_encoder(), style_loss="meancov", **TINY
    )
    check_page(result.html, max_bytes=1_000_000)
    assert "The covariance matrix of layer" in result.html and "2-Wasserstein" in result.html
    assert "The Gram matrix of layer" not in result.html
