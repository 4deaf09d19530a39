"""Optical flow between frames (OpenCV's DIS), warping by it, and where it can be trusted.

A flow ``flow_ab`` is given on frame A's pixel grid: pixel (x, y) of A shows what B
shows at (x + u, y + v). :func:`warp` uses it to bring B onto A's grid, and
:func:`reliable` marks the pixels of A where that is right, by Ruder et al.'s
forward-backward check: following ``flow_ab`` and then ``flow_ba`` must come back to
the start (else the pixel is disoccluded: hidden in B), and the flow must not change
sharply there (else it is on a motion boundary, where flow is least accurate).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from painterly import files


def _gray(img: Image.Image | np.ndarray) -> np.ndarray:
    rgb = np.asarray(img, dtype=np.uint8)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def flow(a: Image.Image | np.ndarray, b: Image.Image | np.ndarray) -> np.ndarray:
    """The flow from A to B on A's grid, (H, W, 2) float32 in pixels (DIS, medium preset:
    about 10 ms at 320 px on one core, and dense, which the warp needs)."""
    # OpenCV's stubs leave out the module-level factory, which the runtime has.
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)  # type: ignore[attr-defined]
    return dis.calc(_gray(a), _gray(b), None)


def _sample_grid(flow_ab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = flow_ab.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return xs + flow_ab[..., 0], ys + flow_ab[..., 1]


def warp(b: np.ndarray, flow_ab: np.ndarray) -> np.ndarray:
    """B (H, W, C) float32 brought onto A's grid by ``flow_ab`` (bilinear; outside the
    frame the nearest edge pixel, which :func:`reliable` marks as unreliable)."""
    map_x, map_y = _sample_grid(flow_ab)
    return cv2.remap(b, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def reliable(flow_ab: np.ndarray, flow_ba: np.ndarray) -> np.ndarray:
    """(H, W) float32 on A's grid: 1 where B warped by ``flow_ab`` can be trusted, 0 at
    disocclusions, motion boundaries and where the flow leaves the frame.

    The thresholds are Ruder et al.'s (section 3.1), in pixels:
    ``|w~ + w|^2 > 0.01 (|w~|^2 + |w|^2) + 0.5`` with ``w~`` the flow back from where
    ``w`` lands, and ``|grad u|^2 + |grad v|^2 > 0.01 |w|^2 + 0.002``.
    """
    h, w = flow_ab.shape[:2]
    back = warp(flow_ba, flow_ab)
    there = np.sum(flow_ab**2, -1)
    round_trip = np.sum((back + flow_ab) ** 2, -1)
    occluded = round_trip > 0.01 * (np.sum(back**2, -1) + there) + 0.5
    du_y, du_x = np.gradient(flow_ab[..., 0])
    dv_y, dv_x = np.gradient(flow_ab[..., 1])
    boundary = du_x**2 + du_y**2 + dv_x**2 + dv_y**2 > 0.01 * there + 0.002
    map_x, map_y = _sample_grid(flow_ab)
    outside = (map_x < 0) | (map_x > w - 1) | (map_y < 0) | (map_y > h - 1)
    return (~(occluded | boundary | outside)).astype(np.float32)


class FlowCache:
    """Flows and masks of frame pairs, computed once and kept in ``folder`` as
    ``A_B.npz`` (A's grid), so that a resumed run does not compute them again; with no
    folder, computed each time and not kept."""

    def __init__(self, folder: Path | None):
        self.folder = folder
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def pair(self, a: int, b: int, frame_a, frame_b) -> tuple[np.ndarray, np.ndarray]:
        """(flow from frame ``a`` to frame ``b``, reliability on ``a``'s grid)."""
        if self.folder is None:
            flow_ab = flow(frame_a, frame_b)
            return flow_ab, reliable(flow_ab, flow(frame_b, frame_a))
        path = self.folder / f"{a:06d}_{b:06d}.npz"
        if path.exists():
            try:
                with np.load(path) as data:
                    return data["flow"], data["mask"].astype(np.float32)
            except (OSError, ValueError, KeyError, EOFError):
                os.unlink(path)  # damaged: compute it again
        flow_ab, flow_ba = flow(frame_a, frame_b), flow(frame_b, frame_a)
        mask = reliable(flow_ab, flow_ba)
        with files.atomic_writer(path) as f:
            np.savez_compressed(f, flow=flow_ab, mask=mask.astype(np.uint8))
        return flow_ab, mask
