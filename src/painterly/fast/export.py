"""A fast model as ONNX, to run where PyTorch is not (onnxruntime, a browser, a phone).

The graph takes ``photo`` (N, 3, H, W) float RGB in 0..1 and returns ``painted`` of the
same shape, with batch, height and width dynamic. The model's metadata goes into the
ONNX file's metadata properties when the ``onnx`` package is installed.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import torch

from painterly import files
from painterly.errors import PainterlyError
from painterly.fast.model_file import ModelInfo
from painterly.fast.network import TransformerNet

OPSET = 17


def onnx_bytes(net: TransformerNet, info: ModelInfo | None = None) -> bytes:
    """The ONNX serialisation of ``net`` (traced on a 64 px probe; sizes stay dynamic)."""
    net = net.cpu().eval()
    buf = io.BytesIO()
    dynamic = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shape arithmetic
        torch.onnx.export(
            net,
            (torch.rand(1, 3, 64, 64),),
            # The TorchScript exporter (dynamo=False) also writes to a file object;
            # torch's annotation of ``f`` names only paths.
            buf,  # type: ignore[arg-type]
            dynamo=False,
            input_names=["photo"],
            output_names=["painted"],
            dynamic_axes={"photo": dynamic, "painted": dynamic},
            opset_version=OPSET,
        )
    data = buf.getvalue()
    if info is None:
        return data
    try:
        import onnx
    except ImportError:
        return data
    model = onnx.load_from_string(data)
    for key, value in info.metadata().items():
        model.metadata_props.add(key=key, value=value)
    return model.SerializeToString()


def export_onnx(net: TransformerNet, info: ModelInfo, path: str | os.PathLike) -> Path:
    path = Path(path)
    try:
        data = onnx_bytes(net, info)
    except Exception as err:  # the exporter's many failure types, as one line
        raise PainterlyError(f"ONNX export failed ({type(err).__name__}: {err})") from None
    files.write_bytes(path, data)
    return path
