"""The records resumable runs keep (the Ray batch's manifest, ``video --ray``'s
``ray.json``): of the right format but damaged, each is one line that names the file
and says how to start over, never a traceback."""

from __future__ import annotations

import json

import pytest

from painterly.cluster.plan import MANIFEST, Manifest
from painterly.errors import PainterlyError
from painterly.runstate import open_run_folder


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
    open_run_folder(folder, "ray.json", {"frames": 3}, resume=False, overwrite=False)
    (folder / "ray.json").write_text(garbage)
    with pytest.raises(PainterlyError) as err:
        open_run_folder(folder, "ray.json", {"frames": 3}, resume=True, overwrite=False)
    assert "ray.json" in str(err.value) and "--overwrite" in str(err.value)
    # Starting afresh is still possible.
    open_run_folder(folder, "ray.json", {"frames": 3}, resume=False, overwrite=True)
    assert json.loads((folder / "ray.json").read_text()) == {"frames": 3}
