"""``painterly video``: stylise a clip frame by frame without flicker.

Ruder, Dosovitskiy and Brox, "Artistic style transfer for videos" (2016), for the
optimisation-based method: each frame after the first starts from the previous output
warped by the optical flow and is held to it by a temporal loss, weighted per pixel by
how reliable the flow is there.

* :mod:`painterly.video.io`: decode and encode with PyAV (frame rate, rotation, audio).
* :mod:`painterly.video.flow`: optical flow (OpenCV's DIS), warping, reliability masks.
* :mod:`painterly.video.temporal`: the temporal loss, the start image, the warping error.
* :mod:`painterly.video.run`: the frame loop, with finished frames kept for ``--resume``.
* :mod:`painterly.video.fast_model`: ``--model``: a fast model per frame, steadied by the flow.

PyAV and OpenCV are the ``video`` extra; nothing here is imported by ``painterly`` itself.
"""

# Defaults of painterly video, here so that the CLI can show them without importing torch.
FIRST_STEPS = 300  # the first frame: an ordinary coarse-to-fine stylisation
LATER_STEPS = 100  # each later frame: one scale, started from the warped previous output
BLEND = 0.8  # --model: how much of each reliable pixel comes from the previous output
TEMPORAL_WEIGHT = 1000.0  # docs/video.md: flicker as at 2000-5000, the style drifting less
