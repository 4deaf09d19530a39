"""The report page: the runs' pictures, charts and numbers poured into the templates.

The prose and the style sheet are package data in ``templates/``: one ``.html`` fragment
per section and banner, ``page.html`` around them and ``report.css``. They are filled with
:class:`string.Template` (``$name``). In a fragment, an ``<!-- comment -->`` is dropped
and an indented line continues the line above it (joined with one space), so the prose
can be wrapped in the file without adding line breaks to the page. Values are escaped
with :func:`html.escape` unless they are passed as ``markup``: HTML that this module or
charts.py built, escaping whatever came from the user inside it.
"""

from __future__ import annotations

import functools
import html
import re
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from painterly import __version__, losses
from painterly.api import Result
from painterly.config import Options
from painterly.encoders import Encoder, offline
from painterly.image import resize, to_tensor
from painterly.losses import gram_mean
from painterly.pipeline import style_size
from painterly.report import RECON_WEIGHT, sources
from painterly.report.charts import SERIES_COLOURS, log_chart_svg, num, pipeline_svg
from painterly.report.colors import (
    DIVERGING,
    VIRIDIS,
    color_bar,
    data_uri,
    heatmap,
    layer_color,
)

GRAM_CHANNELS = 64  # the Gram heat maps show this many channels (a 64 x 64 corner)
FEATURE_MAPS = 6  # feature maps of the content layer shown for photo and result

SECTIONS = (
    ("question", "What is penalised, and why activations?"),
    ("result", "Photo, painting, result"),
    ("losses", "Loss curves"),
    ("content-reconstructions", "What each layer keeps of the photo"),
    ("style-reconstructions", "What the Gram matrices keep of the painting"),
    ("gram", "Gram matrices"),
    ("sources", "Where each part of the result comes from"),
    ("features", "Feature maps of the content layer"),
    ("settings", "Settings"),
)

# How the banner says why the encoder has random weights: the user chose it, or ``auto``
# found no pretrained weights (stderr had the details; the page has no outside URL).
_CHOSEN = "This report uses {name} (<code>--weights {flag}</code>)"
_FELL_BACK = (
    "Pretrained VGG19 weights were not available on this machine (not cached, and they "
    "could not be downloaded), so this report uses {name}"
)


@functools.cache
def _template(name: str) -> string.Template:
    text = resources.files("painterly.report").joinpath("templates", name).read_text("utf-8")
    text = re.sub(r"<!--.*?-->\n", "", text, flags=re.S)
    return string.Template(re.sub(r"\n[ \t]+", " ", text).removesuffix("\n"))


def fill(name: str, markup: dict[str, str] | None = None, **text: object) -> str:
    """Template ``name`` with the ``text`` values escaped and the ``markup`` ones as is."""
    values = {k: html.escape(str(v)) for k, v in text.items()}
    return _template(name).substitute(values, **(markup or {}))


def stylesheet() -> str:
    return (
        resources.files("painterly.report").joinpath("templates", "report.css").read_text("utf-8")
    )


@dataclass
class Picture:
    image: Image.Image
    label: str
    note: str = ""
    highlight: bool = False


def features(encoder: Encoder, img: Image.Image, size, layers) -> dict[str, torch.Tensor]:
    """The encoder's feature maps of ``img`` at ``size``, as float32 on the CPU."""
    device = next(iter(encoder.net.parameters()), torch.empty(0)).device
    x = encoder.preprocessing.to_input(to_tensor(resize(img, size)).to(device))
    with torch.no_grad():
        return {k: v.float().cpu() for k, v in encoder.features(x, layers).items()}


@dataclass
class Page:
    content_name: str
    style_name: str
    opts: Options
    main: Result
    content_img: Image.Image
    style_img: Image.Image
    encoder: Encoder
    content_layer: str
    style_layers: list[str]
    content_pics: list[Picture]
    style_pics: list[Picture]
    recon_size: int
    recon_steps: int
    fallback_reason: str | None
    timings: dict[str, float]

    @property
    def is_offline(self) -> bool:
        """The offline encoder: a network of its own with its own layer names."""
        return self.encoder.arch == offline.ARCH

    @property
    def random_weights(self) -> bool:
        return self.is_offline or self.encoder.name == "random-vgg19"

    def encoder_words(self) -> str:
        seed = self.opts.seed
        if self.is_offline:
            return f"offline encoder, random weights, seed {seed}"
        if self.encoder.name == "random-vgg19":
            return f"VGG19 with random weights, seed {seed}"
        if self.encoder.name in ("vgg19", "vgg19-torchvision", "vgg16"):
            return f"{self.encoder.arch.upper()}, trained on ImageNet"
        return f"{self.encoder.arch.upper()}, weights {Path(self.encoder.name).name}"

    def render(self, seconds: float) -> str:
        e = html.escape
        sections = [
            self._question(),
            self._result(),
            self._losses(),
            self._content_recon(),
            self._style_recon(),
            self._gram(),
            self._sources(),
            self._feature_maps(),
            self._settings(seconds),
        ]
        nav = "".join(f'<a href="#{sid}">{e(title)}</a>' for sid, title in SECTIONS)
        markup = {"css": stylesheet(), "banner": self._banner(), "nav": nav}
        page = fill(
            "page.html",
            {**markup, "body": "\n".join(sections)},
            title=f"painterly explain: {self.content_name} × {self.style_name}",
            heading=f"{self.content_name} in the style of {self.style_name}",
            footer=f"Made by painterly {__version__} (painterly explain) in {seconds:.0f} s. "
            "One self-contained file: no scripts, no outside requests.",
        )
        return page + "\n"

    def _section(self, sid: str, body: str) -> str:
        title = dict(SECTIONS)[sid]
        return f'<section id="{sid}">\n<h2>{html.escape(title)}</h2>\n{body}\n</section>'

    def _banner(self) -> str:
        if not self.random_weights:
            return ""
        if self.is_offline:
            name, flag, template = "the <b>offline encoder</b>", "offline", "banner-offline.html"
        else:
            name, flag = "<b>VGG19 with random weights</b>", "random-vgg19"
            template = "banner-random-vgg19.html"
        if self.fallback_reason:
            why = _FELL_BACK.format(name=name)
            if not self.is_offline:
                why += ", as the preset names VGG19's layers"
        else:
            why = _CHOSEN.format(name=name, flag=flag)
        layers = {
            "luma": _code_list(offline.LUMA_LAYERS),
            "levels": _code_list(offline.STYLE_LAYERS),
        }
        return fill(template, {"why": why, **layers}, seed=self.opts.seed)

    # -- sections ------------------------------------------------------------

    def _question(self) -> str:
        o = self.opts
        diagram = pipeline_svg(self.content_layer, len(self.style_layers), self.encoder_words())
        body = fill(
            "question.html",
            {"diagram": diagram},
            encoder=self.encoder_words(),
            content_layer=self.content_layer,
            style_count=len(self.style_layers),
            content_weight=f"{o.content_weight:g}",
            style_weight=f"{o.style_weight:g}",
            tv_weight=f"{o.tv_weight:g}",
        )
        return self._section("question", body)

    def _result(self) -> str:
        m = self.main.metrics
        w, h = m["size"]
        out_size = (w, h)
        pics = [
            Picture(resize(self.content_img, out_size), f"photo: {self.content_name}"),
            Picture(
                resize(self.style_img, style_size(self.style_img, out_size, self.opts)),
                f"painting: {self.style_name}",
            ),
            Picture(self.main.image, "result"),
        ]
        body = fill(
            "result.html",
            {"gallery": _gallery(pics, "three")},
            width=w,
            height=h,
            steps=m["steps"],
            optimizer="L-BFGS" if self.opts.optimizer == "lbfgs" else "Adam",
            init=_init_words(self.opts.init),
            seconds=f"{m['seconds']:.0f}",
            device=m["device"],
        )
        return self._section("result", body)

    def _losses(self) -> str:
        o = self.opts
        hist = self.main.metrics["history"]
        terms = {
            f"content × {o.content_weight:g}": (
                [o.content_weight * h["content"] for h in hist],
                SERIES_COLOURS["content"],
            ),
            f"style × {o.style_weight:g}": (
                [o.style_weight * h["style"] for h in hist],
                SERIES_COLOURS["style"],
            ),
            f"TV × {o.tv_weight:g}": (
                [o.tv_weight * h["tv"] for h in hist],
                SERIES_COLOURS["tv"],
            ),
            "total": ([h["total"] for h in hist], SERIES_COLOURS["total"]),
        }
        n = len(self.style_layers)
        per_layer = {
            layer: ([h[f"style:{layer}"] for h in hist], layer_color(i, n))
            for i, layer in enumerate(self.style_layers)
        }
        unit = (
            "relative Gram error: 1 means an error as large as the painting's Gram matrix itself"
            if o.loss_form == "relative"
            else "the book's unnormalised form"
        )
        dropped = [k for k, (v, _) in terms.items() if not any(x > 0 for x in v)]
        dropped_note = (
            f" Zero throughout, so not drawn on a log scale: {', '.join(dropped)}."
            if dropped
            else ""
        )
        first, last = hist[0], hist[-1]
        style_story = f"the style loss falls from {num(first['style'])} to {num(last['style'])}"
        if o.init == "content":
            story = (
                "The run starts from the photo itself, so the content loss starts at "
                f"{num(first['content'])} and can only grow as the style pulls the image away "
                f"from the photo (it ends at {num(last['content'])}), while {style_story}."
            )
        else:
            story = (
                f"The run starts from the {_init_words(o.init)}: the content loss goes from "
                f"{num(first['content'])} to {num(last['content'])} and {style_story}."
            )
        left = log_chart_svg(terms, title="Loss terms as they enter the total", dashed=["total"])
        right = log_chart_svg(per_layer, title="Style loss of each layer (unweighted)")
        body = fill(
            "losses.html",
            {"terms_chart": left, "layers_chart": right, "unit": unit},
            story=story,
            dropped=dropped_note,
        )
        return self._section("losses", body)

    def _content_recon(self) -> str:
        layer = f"<code>{html.escape(self.content_layer)}</code>"
        if self.is_offline and self.content_layer in offline.LUMA_LAYERS:
            why = (
                f". The offline encoder measures the content loss at {layer} (outlined), in "
                "its branch that sees only the luminance: it keeps the photo's edges and "
                "shapes but is blind to colour, which leaves the painting free to repaint "
                "the palette."
            )
        else:
            why = (
                ", which is why the content loss is measured at a deep layer "
                f"({layer}, outlined): it keeps the photo's layout and leaves the style free "
                "to repaint the surface."
            )
        note = (
            " With random weights the deep layers hold less of the layout than a "
            "trained VGG19's would."
            if self.random_weights
            else ""
        )
        body = fill(
            "content-reconstructions.html",
            {"gallery": _gallery(self.content_pics, "row"), "why_content_layer": why},
            recon_steps=self.recon_steps,
            recon_size=self.recon_size,
            random_note=note,
        )
        return self._section("content-reconstructions", body)

    def _style_recon(self) -> str:
        body = fill(
            "style-reconstructions.html",
            {"gallery": _gallery(self.style_pics, "row")},
            recon_steps=self.recon_steps,
            recon_size=self.recon_size,
        )
        return self._section("style-reconstructions", body)

    @property
    def middle_layer(self) -> str:
        """The style layer the Gram and where-from sections show."""
        return self.style_layers[len(self.style_layers) // 2]

    @functools.cached_property
    def middle_features(self) -> dict[str, torch.Tensor]:
        """(C, H, W) features of the photo, the painting and the result at the middle
        layer, each at the size the run saw it; read by two sections, computed once."""
        layer = self.middle_layer
        out_size = tuple(self.main.metrics["size"])
        styled = style_size(self.style_img, out_size, self.opts)
        return {
            key: features(self.encoder, img, size, [layer])[layer][0]
            for key, img, size in (
                ("photo", self.content_img, out_size),
                ("painting", self.style_img, styled),
                ("result", self.main.image, out_size),
            )
        }

    def _gram(self) -> str:
        layer = self.middle_layer
        meancov = self.opts.style_loss == "meancov"
        if meancov:  # what the loss compares: the covariances, beside the means
            grams = {
                key: losses.mean_and_covariance(losses.style_statistics(f[None], "meancov"))[1][0]
                for key, f in self.middle_features.items()
            }
        else:
            grams = {key: gram_mean(f[None])[0] for key, f in self.middle_features.items()}
        c = grams["painting"].shape[0]
        # The channels the painting uses most (largest diagonal), strongest first, so that
        # the 64 x 64 corner shows the correlations that carry most of the style.
        order = torch.argsort(torch.diagonal(grams["painting"]), descending=True)
        pick = order[: min(GRAM_CHANNELS, c)]
        sub = {k: g[pick][:, pick].numpy() for k, g in grams.items()}
        # Square root for display: a few large (diagonal) entries would otherwise leave
        # every correlation dark. One scale for all three so colours compare.
        # (A covariance has negative entries: its magnitude is shown.)
        shown = {k: np.sqrt(np.abs(g) if meancov else np.maximum(g, 0)) for k, g in sub.items()}
        vmax = max(float(np.percentile(g, 99.5)) for g in shown.values())
        cell = max(1, 192 // len(pick))
        pics = [
            Picture(heatmap(g, 0, vmax, VIRIDIS, cell), name)
            for name, g in (
                ("photo", shown["photo"]),
                ("painting (the target)", shown["painting"]),
                ("result", shown["result"]),
            )
        ]
        before = sub["photo"] - sub["painting"]
        after = sub["result"] - sub["painting"]
        dmax = float(np.percentile(np.abs(before), 99.5)) or 1.0
        energy = float((sub["painting"] ** 2).sum()) or 1.0
        diffs = [
            Picture(
                heatmap(before, -dmax, dmax, DIVERGING, cell),
                "photo − painting",
                f"relative error (part shown): {num(float((before**2).sum()) / energy)}",
            ),
            Picture(
                heatmap(after, -dmax, dmax, DIVERGING, cell),
                "result − painting",
                f"relative error (part shown): {num(float((after**2).sum()) / energy)}",
            ),
        ]
        hist = self.main.metrics["history"]
        body = fill(
            "covariance.html" if meancov else "gram.html",
            {"gallery": _gallery(pics + diffs, "row"), "scales": _scales()},
            layer=layer,
            channels=c,
            shown=len(pick),
            first=num(hist[0][f"style:{layer}"]),
            last=num(hist[-1][f"style:{layer}"]),
        )
        return self._section("gram", body)

    def _sources(self) -> str:
        layer = self.middle_layer
        out_size = tuple(self.main.metrics["size"])
        styled = style_size(self.style_img, out_size, self.opts)
        feats = self.middle_features
        painting = feats["painting"]
        found = {
            name: sources.nearest_places(feats[name], painting) for name in ("result", "photo")
        }
        grid = (painting.shape[1], painting.shape[2])  # (H, W) of its (C, H, W) features
        key, by_place, collage = sources.pictures(
            found["result"], grid, resize(self.style_img, styled), out_size
        )
        pics = [
            Picture(key, "painting, by place"),
            Picture(by_place, "result, by the place of its match"),
            Picture(collage, "result, rebuilt from the painting"),
        ]
        why = (
            "The nearest-neighbour style loss asks for exactly this: every part of the result "
            "close to some part of the painting, and every part of the painting somewhere in "
            "the result."
            if self.opts.style_loss == "nearest"
            else "The Gram loss did not ask for this: it matches how channels fire together, "
            "averaged over the image, so the matches may scatter (compare "
            "<code>--style-loss nearest</code>)."
        )
        body = fill(
            "sources.html",
            {"gallery": _gallery(pics, "three"), "why": why},
            layer=layer,
            positions=grid[0] * grid[1],
            coverage=f"{sources.coverage(found['result'], grid[0] * grid[1]):.0%}",
            photo_coverage=f"{sources.coverage(found['photo'], grid[0] * grid[1]):.0%}",
        )
        return self._section("sources", body)

    def _feature_maps(self) -> str:
        layer = self.content_layer
        out_size = tuple(self.main.metrics["size"])
        photo = features(self.encoder, self.content_img, out_size, [layer])[layer][0]
        result = features(self.encoder, self.main.image, out_size, [layer])[layer][0]
        c, fh, fw = photo.shape
        energy = (photo**2).mean(dim=(1, 2))
        pick = torch.argsort(energy, descending=True)[: min(FEATURE_MAPS, c)].tolist()
        cell = max(1, round(150 / max(fh, fw)))
        cells = []
        for ch in pick:
            p, r = photo[ch].numpy(), result[ch].numpy()
            vmax = float(max(np.percentile(p, 99.5), np.percentile(r, 99.5))) or 1.0
            cells.append(
                [
                    heatmap(p, 0, vmax, VIRIDIS, cell),
                    heatmap(r, 0, vmax, VIRIDIS, cell),
                    heatmap(r - p, -vmax, vmax, DIVERGING, cell),
                ]
            )
        rows = ("photo", "result", "result − photo")
        grid = ['<div class="fmaps">', '<div class="fhead"></div>']
        grid += [f'<div class="fhead">channel {ch}</div>' for ch in pick]
        for r_i, row in enumerate(rows):
            grid.append(f'<div class="frow">{row}</div>')
            grid += [f'<img src="{data_uri(col[r_i])}" alt="{row}">' for col in cells]
        grid.append("</div>")
        hist = self.main.metrics["history"]
        relative = (
            ", divided by the sum of the photo's squared activations"
            if self.opts.loss_form == "relative"
            else ""
        )
        body = fill(
            "features.html",
            {"grid": "".join(grid), "scales": _scales(), "relative": relative},
            shown=len(pick),
            channels=c,
            layer=layer,
            columns=fw,
            rows=fh,
            width=out_size[0],
            height=out_size[1],
            final=num(hist[-1]["content"]),
        )
        return self._section("features", body)

    def _settings(self, seconds: float) -> str:
        o = self.opts
        m = self.main.metrics
        rows = [
            ("encoder", self.encoder_words() + f" (<code>{html.escape(self.encoder.name)}</code>)"),
        ]
        if self.fallback_reason:
            rows.append(("why random weights", "pretrained weights not cached, download failed"))
        rows += [
            ("device", html.escape(m["device"])),
            (
                "stylisation",
                f"{m['size'][0]}×{m['size'][1]} px, {m['steps']} steps, "
                f"{m['seconds']:.1f} s ({m['ms_per_step']:.0f} ms/step)",
            ),
            (
                "reconstructions",
                f"long side {self.recon_size} px, {self.recon_steps} "
                f"L-BFGS steps each from noise, one term weighted {RECON_WEIGHT:g}, others 0",
            ),
        ]
        times = [f"{k} {v:.1f} s" for k, v in self.timings.items()]
        rows.append(("time", " · ".join([*times, f"whole report {seconds:.1f} s"])))
        rows.append(("painterly", __version__))
        opts_rows = []
        for name in Options.__dataclass_fields__:
            v = getattr(o, name)
            if isinstance(v, tuple):
                shown = ",".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v)
            elif isinstance(v, bool):
                shown = "yes" if v else "no"
            else:
                shown = "—" if v is None else str(v)
            opts_rows.append((f"--{name.replace('_', '-')}", html.escape(shown)))
        body = fill(
            "settings.html", {"table": _table(rows), "options": _table(opts_rows, code_keys=True)}
        )
        return self._section("settings", body)


def _init_words(init: str) -> str:
    return {"content": "photo itself", "noise": "random noise"}.get(init, f"image {init}")


def _code_list(names) -> str:
    """``a``, ``b`` and ``c`` as HTML code."""
    codes = [f"<code>{html.escape(n)}</code>" for n in names]
    return ", ".join(codes[:-1]) + f" and {codes[-1]}" if len(codes) > 1 else "".join(codes)


def _table(rows, code_keys: bool = False) -> str:
    cells = "".join(
        f"<tr><th>{f'<code>{html.escape(k)}</code>' if code_keys else html.escape(k)}</th>"
        f"<td>{v}</td></tr>"
        for k, v in rows
    )
    return f'<table class="settings">{cells}</table>'


def _gallery(pics: list[Picture], kind: str) -> str:
    items = []
    for p in pics:
        cls = ' class="hl"' if p.highlight else ""
        note = f'<span class="note">{html.escape(p.note)}</span>' if p.note else ""
        items.append(
            f'<figure{cls}><img src="{data_uri(p.image)}" alt="{html.escape(p.label)}">'
            f"<figcaption><b>{html.escape(p.label)}</b>{note}</figcaption></figure>"
        )
    columns = f' style="grid-template-columns:repeat({len(pics)}, 1fr)"' if kind == "row" else ""
    return f'<div class="gallery {kind}"{columns}>{"".join(items)}</div>'


def _scales() -> str:
    """The two colour scales under the heat maps: magnitude and signed difference."""
    return (
        f'<div class="scale"><span>0</span><img src="{data_uri(color_bar(VIRIDIS))}" '
        'alt="colour scale">'
        f'<span>high</span><span class="gap"></span><span>−</span><img src="'
        f'{data_uri(color_bar(DIVERGING))}" alt="difference scale"><span>+</span></div>'
    )
