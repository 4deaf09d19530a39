"""What a request to ``POST /api/jobs`` may ask for, and the :class:`Job` it becomes: the
rules a job must meet before it is queued (paintings or a fast model, the options the
form offers, the server's limits), each refused with a one-line 422."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from pydantic import BaseModel, Field

from painterly.api import make_options, resolve_device
from painterly.config import PRESETS, Options
from painterly.errors import ModelError, OptionsError
from painterly.pipeline import output_size
from painterly.web.form import field_label, parse_options
from painterly.web.jobs import Job
from painterly.web.limits import Limits
from painterly.web.models import MODEL_FIELDS, ModelShelf
from painterly.web.uploads import UploadStore, new_id


class StyleRef(BaseModel):
    id: str
    weight: float = Field(default=1.0, ge=0, le=1000)


class JobRequest(BaseModel):
    content: str
    styles: list[StyleRef] = Field(default_factory=list)
    model: str | None = Field(default=None, max_length=200)  # a fast model's id, or paintings
    preset: str = "default"
    options: dict[str, Any] = Field(default_factory=dict)


def job_of(req: JobRequest, uploads: UploadStore, limits: Limits, shelf: ModelShelf) -> Job:
    """The job ``req`` asks for, checked; HTTPException (404, 422) if it may not run."""
    if len(req.styles) > limits.max_styles:
        raise HTTPException(422, f"use at most {limits.max_styles} paintings")
    uploads.touch([req.content, *(s.id for s in req.styles)])  # evicted last
    try:
        content = uploads.info(req.content)
        styles = [dict(uploads.info(s.id), weight=s.weight) for s in req.styles]
    except KeyError:
        raise HTTPException(
            404, "an uploaded image is gone; add the photo and paintings again"
        ) from None
    if req.model is not None:
        return _model_job(req, content, limits, shelf)
    return _painting_job(req, content, styles, limits)


def _check_size(content: dict, opts: Options, limits: Limits) -> None:
    w, h = output_size((content["width"], content["height"]), opts)
    if max(w, h) > limits.max_side:
        raise HTTPException(
            422,
            f"the result would be {w}x{h} px; this server makes at most "
            f"{limits.max_side} px on the long side, so set a smaller Size",
        )


def _model_job(req: JobRequest, content: dict, limits: Limits, shelf: ModelShelf) -> Job:
    """A job for the fast model ``req.model``: the model carries the style, so only the
    fields of MODEL_FIELDS apply."""
    assert req.model is not None  # called only for a request that names a model
    if req.styles:
        raise HTTPException(422, "a fast model carries its own style: send no paintings")
    try:
        _, info = shelf.find(req.model)
        other = sorted(set(req.options) - set(MODEL_FIELDS))
        if other:
            raise OptionsError(f"{field_label(other[0])} does not apply to a fast model")
        opts = make_options(**parse_options(req.options, PRESETS["default"]))
        device = resolve_device(opts.device)
    except (OptionsError, ModelError) as err:
        raise HTTPException(422, str(err)) from None
    _check_size(content, opts, limits)
    return Job(
        id=new_id(),
        device=str(device),
        content={"id": content["id"], "name": content["name"]},
        styles=[],
        options={name: getattr(opts, name) for name in MODEL_FIELDS},
        model={"id": req.model, "styles": [s["name"] for s in info.styles]},
    )


def _painting_job(req: JobRequest, content: dict, styles: list[dict], limits: Limits) -> Job:
    if not styles:
        raise HTTPException(422, "add at least one painting, or choose a fast model")
    if sum(s["weight"] for s in styles) <= 0:
        raise HTTPException(422, "give at least one painting a weight above 0")
    try:
        if req.preset not in PRESETS:
            raise OptionsError(f"unknown preset '{req.preset}'; choose one of {', '.join(PRESETS)}")
        changed = parse_options(req.options, PRESETS[req.preset])
        opts = make_options(preset=req.preset, **changed)
        device = resolve_device(opts.device)
    except OptionsError as err:
        raise HTTPException(422, str(err)) from None
    if opts.steps > limits.max_steps:
        raise HTTPException(422, f"Steps: this server runs at most {limits.max_steps}")
    _check_size(content, opts, limits)
    return Job(
        id=new_id(),
        device=str(device),
        content={"id": content["id"], "name": content["name"]},
        styles=[{"id": s["id"], "name": s["name"], "weight": s["weight"]} for s in styles],
        options={"preset": req.preset, **changed},
        total_steps=opts.steps,
    )
