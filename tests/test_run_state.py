"""The records resumable runs keep (the Ray batch's manifest, the run folders'
``run.json``): of the right format but damaged, each is one
line that names the file and says how to start over, never a traceback. Property tests
throw any JSON and any bytes at them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from painterly.cluster.plan import MANIFEST, Manifest
from painterly.errors import PainterlyError
from painterly.runstate import frame_name, frame_number, open_run_folder


@pytest.mark.parametrize(
    "data",
    [
        {"format": 1, "outputs": [], "failed": {}},
        {"format": 1, "outputs": None, "failed": {}},
        {"format": 1, "outputs": "x", "failed": {}},
        {"format": 1, "outputs": {"a.png": 3}, "failed": {}},
        {"format": 1, "outputs": {}, "failed": []},
        {"format": 2, "outputs": {}, "failed": {}},
        [1, 2],
        "text",
    ],
)
def test_a_damaged_manifest_is_one_line(tmp_path, data):
    (tmp_path / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(PainterlyError) as err:
        Manifest(tmp_path)
    message = str(err.value)
    assert MANIFEST in message and "move it away" in message and "\n" not in message


def test_a_manifest_that_is_not_json_is_one_line(tmp_path):
    (tmp_path / MANIFEST).write_bytes(b"\xff\xfe{garbage")
    with pytest.raises(PainterlyError, match="cannot be read"):
        Manifest(tmp_path)


@pytest.mark.parametrize("garbage", ["{", "[]", "null", "7", ""])
def test_a_damaged_run_record_is_one_line_on_resume(tmp_path, garbage):
    folder = tmp_path / "out.mp4.frames"
    open_run_folder(folder, "run.json", {"frames": 3}, resume=False, overwrite=False)
    (folder / "run.json").write_text(garbage)
    with pytest.raises(PainterlyError) as err:
        open_run_folder(folder, "run.json", {"frames": 3}, resume=True, overwrite=False)
    assert "run.json" in str(err.value) and "--overwrite" in str(err.value)
    # Starting afresh is still possible.
    open_run_folder(folder, "run.json", {"frames": 3}, resume=False, overwrite=True)
    assert json.loads((folder / "run.json").read_text()) == {"frames": 3}


# --------------------------------------------------------------------------- fuzzing

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=True) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.one_of(
        json_values,
        st.fixed_dictionaries(
            {"format": st.just(1), "outputs": json_values, "failed": json_values}
        ),
    )
)
def test_any_json_as_a_manifest_is_read_or_one_line(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("manifest")
    (folder / MANIFEST).write_text(json.dumps(data))
    try:
        Manifest(folder)
    except PainterlyError as err:
        assert "\n" not in str(err) and MANIFEST in str(err)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
@example(raw=b'{"\\n": false}')  # a setting's name with a line break in it
def test_any_bytes_as_a_run_record_resume_or_one_line(tmp_path_factory, raw):
    folder = tmp_path_factory.mktemp("run") / "out.frames"
    open_run_folder(folder, "run.json", {"frames": 3}, resume=False, overwrite=False)
    (folder / "run.json").write_bytes(raw)
    try:
        open_run_folder(folder, "run.json", {"frames": 3}, resume=True, overwrite=False)
    except PainterlyError as err:
        assert "\n" not in str(err)


@given(st.integers(0, 999_997))  # six digits: 11 hours at 24 frames/s
def test_frame_names_sort_as_frames_and_read_back(index):
    assert frame_number(Path(frame_name(index))) == index
    assert frame_name(index) < frame_name(index + 1)


@pytest.mark.parametrize(
    "name", ["frame_000000.png", "frame_1.png", "x_000001.png", "frame_00000a.png"]
)
def test_other_names_are_not_frames(name):
    assert frame_number(Path(name)) is None
