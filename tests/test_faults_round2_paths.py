"""Fault injection, round 2: paths and values read from data files (issue #31, the hostile probe).

A ``pix3d.json`` is data: its ``img``, ``mask`` and ``model`` names must stay inside the Pix3D root
(``lmnet.data.paths.resolve_inside``), and a file outside it is never opened, whatever the command
(``eval --dataset pix3d``, ``check-data --dataset pix3d``). An entry that would be evaluated wrongly
without a word (a non-string category, an all-zero mask) and one that used to end in a traceback
(a NaN / Infinity bbox, ``"img": 5``, a 20000x20000 mask) is one line naming the file, the entry and
the field, exit code 2 (``check-data``: listed as a problem, exit code 1). Split files, the
ShapeNet side's index of model folders, refuse ids that climb out of the root.

"Never opened" is proven with a Python audit hook (PEP 578) that records every file the process
opens, whatever the opener (``open``, ``pathlib``, Pillow, NumPy), while the command runs; the
target outside the root is a valid file of the right kind, so opening it would have worked.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import sys
import zlib
from pathlib import Path

import pytest
from conftest import write_tiny_shapenet
from test_eval import make_runs

from lmnet.cli import main as cli_main
from lmnet.data import pix3d
from lmnet.data.paths import PathOutsideRootError
from lmnet.data.splits import load_split
from lmnet.errors import CorruptFileError, DataError
from lmnet.synthetic.pix3d_synth import generate_pix3d

# ------------------------------------------------------------------------------ shared helpers

_OPENED: list[str] | None = None  # the paths opened while recording, else None


def _audit(event: str, args) -> None:
    if _OPENED is not None and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        _OPENED.append(os.path.realpath(os.fsdecode(args[0])))


sys.addaudithook(_audit)  # cannot be removed; inert unless _OPENED is a list


def _run_recording_opens(argv: list[str]) -> tuple[int, set[str]]:
    """``(exit code of lmnet argv, realpaths of every file opened meanwhile)``."""
    global _OPENED
    _OPENED = []
    try:
        rc = cli_main(argv)
    finally:
        opened, _OPENED = set(_OPENED), None
    return rc, opened


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("pix3d") / "pix3d"
    generate_pix3d(root, n_models=1, n_photos=4, seed=0)
    return root


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """An image run (random weights) to evaluate on Pix3D."""
    base = tmp_path_factory.mktemp("run")
    data = write_tiny_shapenet(base / "data", n_views=1, n_models=3, point_counts=(1024, 2048))
    return make_runs(base / "proj", data)


@pytest.fixture
def root(synth_root, tmp_path):
    dst = tmp_path / "pix3d"
    shutil.copytree(synth_root, dst)
    return dst


def _entries(root: Path) -> list[dict]:
    return json.loads((root / "pix3d.json").read_text())


def _first_used(entries: list[dict]) -> int:
    return next(i for i, e in enumerate(entries) if pix3d.is_used(e))


def _edit_first_used(root: Path, **values) -> tuple[int, dict]:
    """Set ``values`` in the first used entry of ``root/pix3d.json``; ``(its index, the old entry)``."""
    es = _entries(root)
    i = _first_used(es)
    old = dict(es[i])
    es[i].update(values)
    (root / "pix3d.json").write_text(json.dumps(es))  # NaN / Infinity as the JSON literals
    return i, old


def _eval_one_line(capsys, root: Path, run: Path) -> str:
    """``lmnet eval --dataset pix3d``: exit code 2 and one line on stderr, no traceback; the line."""
    rc = cli_main(["eval", "--dataset", "pix3d", "--root", str(root), "--run", str(run), "--workers", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith("lmnet eval: error: ") and "Traceback" not in err[0], err
    assert not list(run.glob("eval_pix3d*")), "no report may be written"
    return err[0]


def _check_data_problems(capsys, root: Path) -> str:
    """``lmnet check-data --dataset pix3d``: exit code 1 with a problem list; the printed report."""
    rc = cli_main(["check-data", "--dataset", "pix3d", "--root", str(root)])
    out = capsys.readouterr()
    assert rc == 1 and "Traceback" not in out.err, out
    assert "problem(s):" in out.out
    return out.out


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG that declares ``width x height`` 8-bit gray pixels and holds none: opening reads the
    size, only decoding would fail (or, for a real image this size, allocate width*height bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b""))
                     + chunk(b"IEND", b""))


# ------------------------------------------------------------------------------ 1. paths stay inside the root


def _outside_target(root: Path, entry: dict, field: str) -> Path:
    """A valid file of the kind ``field`` names (a copy of the entry's own), outside ``root``. The
    model goes in a shape folder without a point cloud in the root, so the OBJ would be read."""
    outside = root.parent / "outside"
    name = {"img": "photo" + Path(entry["img"]).suffix, "mask": "mask.png", "model": "SECRET/model.obj"}[field]
    target = outside / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(root / entry[field], target)
    return target


def _name_for(root: Path, target: Path, form: str) -> str:
    if form == "absolute":
        return str(target)
    if form == "dotdot":
        return "img/chair/../../../" + target.relative_to(root.parent).as_posix()
    link = root / "img" / "chair" / ("link" + target.suffix)
    link.symlink_to(target)
    return link.relative_to(root).as_posix()


@pytest.mark.parametrize("field", ["img", "mask", "model"])
@pytest.mark.parametrize("form", ["dotdot", "absolute", "symlink"])
def test_pix3d_entry_paths_outside_the_root_are_refused_and_never_opened(root, image_run, capsys, field, form):
    es = _entries(root)
    target = _outside_target(root, es[_first_used(es)], field)
    i, _ = _edit_first_used(root, **{field: _name_for(root, target, form)})
    inside_photo = os.path.realpath(root / [e for e in es if pix3d.is_used(e)][1]["img"])

    rc, opened = _run_recording_opens(["check-data", "--dataset", "pix3d", "--root", str(root)])
    out = capsys.readouterr().out
    assert rc == 1 and f"pix3d.json: entry {i}: {field} " in out and "the dataset root" in out, out
    assert str(target) not in opened
    assert inside_photo in opened  # the recorder sees the files check-data does read
    rc, opened = _run_recording_opens(["eval", "--dataset", "pix3d", "--root", str(root), "--run",
                                       str(image_run), "--workers", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and f"pix3d.json: entry {i}: {field} " in err[0], err
    assert str(target) not in opened
    with pytest.raises(PathOutsideRootError, match=rf"entry {i}: {field} "):
        pix3d.Pix3DDataset(root)


def test_the_library_refuses_an_unchecked_entry_outside_the_root(root, tmp_path):
    """Code that calls the readers with an entry of its own (not from load_index) is refused too."""
    e = dict(_entries(root)[_first_used(_entries(root))])
    with pytest.raises(PathOutsideRootError, match="pix3d.json: entry '/etc/passwd': img '/etc/passwd' is not"):
        pix3d.read_photo(root, dict(e, img="/etc/passwd"))
    with pytest.raises(PathOutsideRootError, match=f"pix3d.json: entry '{e['img']}': mask '/etc/passwd' is not"):
        pix3d.read_photo(root, dict(e, mask="/etc/passwd"))
    with pytest.raises(PathOutsideRootError, match="model"):
        pix3d.load_gt(root, dict(e, model="../../model.obj"))
    with pytest.raises(PathOutsideRootError, match="category, model"):
        pix3d.pointcloud_path(root, dict(e, category="../.."))


@pytest.mark.parametrize("split, match", [
    ({"03001627": ["03001627/../../../etc"]}, "is not 'synset/model_id'"),
    ({"03001627": [".."]}, "is not 'synset/model_id'"),
    ("../../etc/passwd\n", "is not 'synset/model_id'"),
    ("03001627/..\n", "is not 'synset/model_id'"),
    ("03001627/a\\..\\..\\x\n", "is not 'synset/model_id'"),
])
def test_split_file_ids_that_leave_the_dataset_root_are_refused(tmp_path, split, match):
    """The ShapeNet side's index: a split id becomes ``<root>/<tree>/<synset>/<model>``."""
    path = tmp_path / ("split.json" if isinstance(split, dict) else "split.txt")
    path.write_text(json.dumps(split) if isinstance(split, dict) else split)
    with pytest.raises(DataError, match=match) as e:
        load_split(path)
    assert str(path) in str(e.value)


# ------------------------------------------------------------------------------ 2. no silent wrong results


@pytest.mark.parametrize("category", [5, None, ["chair"], ""])
def test_a_non_string_category_is_refused_not_dropped(root, image_run, capsys, category):
    i, old = _edit_first_used(root, category=category)
    expected = f"pix3d.json: entry {i} ({old['img']}): category must be a name such as chair, sofa, table"
    assert expected in _eval_one_line(capsys, root, image_run)
    assert expected in _check_data_problems(capsys, root)


@pytest.mark.parametrize("where", ["everywhere", "inside the bbox"])
def test_an_empty_mask_is_refused_not_evaluated_as_a_black_image(root, image_run, capsys, where):
    from PIL import Image

    i, e = _edit_first_used(root)
    path = root / e["mask"]
    with Image.open(path) as m:
        blank = Image.new("L", m.size, 0)
    if where != "everywhere":
        blank.putpixel((0, 0), 255)  # an object pixel, but not in the bbox
        _edit_first_used(root, bbox=[1, 1, m.size[0], m.size[1]])
    blank.save(path)
    expected = f"{path}: the mask of entry '{e['img']}' " + ("is all zero" if where == "everywhere"
                                                           else "has no non-zero pixel inside the bbox")
    assert expected in _eval_one_line(capsys, root, image_run)
    assert expected in _check_data_problems(capsys, root)
    with pytest.raises(CorruptFileError, match="mask of entry"):
        pix3d.Pix3DDataset(root)[0]


# ------------------------------------------------------------------------------ 3. one line, not a traceback


@pytest.mark.parametrize("field, value, expected", [
    ("bbox", [float("nan"), 0, 10, 10], "bbox must be [x0, y0, x1, y1], finite numbers, got [nan, 0, 10, 10]"),
    ("bbox", [0, 0, float("inf"), 10], "bbox must be [x0, y0, x1, y1], finite numbers, got [0, 0, inf, 10]"),
    ("bbox", [float("-inf"), 0, 10, 10], "bbox must be [x0, y0, x1, y1], finite numbers, got [-inf, 0, 10, 10]"),
    ("bbox", [True, 0, 10, 10], "bbox must be [x0, y0, x1, y1], finite numbers, got [True, 0, 10, 10]"),
    ("img", 5, "entry {i}: img must be a relative path (a string), got int 5"),
    ("mask", None, "entry {i}: mask must be a relative path (a string), got NoneType None"),
    ("model", ["model.obj"], "entry {i}: model must be a relative path (a string), got list ['model.obj']"),
    ("img_size", [True, 1], "img_size must be [width, height] > 0, got [True, 1]"),
])
def test_bad_entry_values_are_one_line_naming_entry_and_field(root, image_run, capsys, field, value, expected):
    i, _ = _edit_first_used(root, **{field: value})
    assert json.dumps(value) in (root / "pix3d.json").read_text()  # e.g. the literals NaN, Infinity
    expected = expected.format(i=i)
    line = _eval_one_line(capsys, root, image_run)
    assert f"pix3d.json: entry {i}" in line and expected in line, line
    assert expected in _check_data_problems(capsys, root)


@pytest.mark.parametrize("case", ["20000x20000 mask", "photo over LMNET_MAX_IMAGE_PIXELS"])
def test_images_over_the_pixel_limit_are_refused_before_decoding(root, image_run, capsys, monkeypatch, case):
    """Pillow's own DecompressionBombError used to escape as a traceback (the mask had no limit)."""
    _, e = _edit_first_used(root)
    if case.startswith("20000"):
        path = root / e["mask"]
        _png_header_only(path, 20000, 20000)  # decoding it would fail: the message proves it was not tried
        expected = (f"{path}: image of 20000x20000 = 400,000,000 pixels is larger than the 50,000,000-pixel "
                    f"limit; set LMNET_MAX_IMAGE_PIXELS=400000000 (or 0 for no limit) to allow it")
    else:
        path = root / e["img"]
        w, h = e["img_size"]
        monkeypatch.setenv("LMNET_MAX_IMAGE_PIXELS", "1000")
        expected = f"{path}: image of {w}x{h} = {w * h:,} pixels is larger than the 1,000-pixel limit"
    assert expected in _eval_one_line(capsys, root, image_run)
    assert expected in _check_data_problems(capsys, root)
    if case.startswith("20000"):
        monkeypatch.setenv("LMNET_MAX_IMAGE_PIXELS", "0")  # no limit: then it is decoded, and fails as such
        with pytest.raises(CorruptFileError, match=f"{path}: cannot decode image"):
            pix3d.read_photo(root, e)
