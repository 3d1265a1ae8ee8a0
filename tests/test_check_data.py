"""check-data: counts per category, every bad file named, exit codes, CLI table."""

import json
import shutil

import numpy as np

from lmnet.cli import main as cli_main
from lmnet.data.check import check_data
from lmnet.data.splits import write_split


def test_clean_root_is_ok(tiny_shapenet):
    t = tiny_shapenet
    r = check_data(t.root)
    assert r.ok and r.n_models == len(t.keys) and not r.problems
    for c in r.categories:
        assert (c.models, c.all_views, c.metadata, c.usable) == (3, 3, 3, 3)
        assert c.points == {1024: 3, 2048: 3, 16384: 3}
    assert "OK: all 6 models are usable" in r.table()


def test_every_problem_is_named(tiny_shapenet):
    t = tiny_shapenet
    k = t.keys
    rd = lambda i: t.model_dir(k[i]) / "rendering"  # noqa: E731
    pd = lambda i: t.model_dir(k[i], "ShapeNet_pointclouds")  # noqa: E731
    trunc = rd(0) / "11.png"
    trunc.write_bytes(trunc.read_bytes()[:300])
    from PIL import Image
    small = rd(0) / "12.png"
    Image.new("RGBA", (64, 64)).save(small)
    missing_png = rd(1) / "00.png"
    missing_png.unlink()
    meta = rd(2) / "rendering_metadata.txt"
    meta.write_text("\n".join(meta.read_text().splitlines()[:23]) + "\n")
    shape = pd(3) / "pointcloud_1024.npy"
    np.save(shape, np.zeros((1000, 3), np.float32))
    nan = pd(3) / "pointcloud_16384.npy"
    a = np.load(nan)
    a[0, 0] = np.nan
    np.save(nan, a)
    shutil.rmtree(pd(4))
    r = check_data(t.root, workers=2)
    assert not r.ok and r.n_usable == 1
    got = {(p.path, p.reason.split(" (")[0] if "PNG" in p.reason else p.reason) for p in r.problems}
    assert got == {
        (str(trunc), "unreadable or truncated PNG"),
        (str(small), "expected a 137x137 image, got 64x64"),
        (str(missing_png), "missing image"),
        (str(meta), "expected 24 metadata lines, found 23"),
        (str(shape), "expected shape (1024, 3), got (1000, 3)"),
        (str(nan), "contains NaN or infinite values"),
        (str(pd(4)), "missing point-cloud folder"),
    }
    chair, plane = {c.name: c for c in r.categories}["chair"], {c.name: c for c in r.categories}["airplane"]
    assert (plane.all_views, plane.metadata, plane.usable) == (1, 2, 0)
    assert chair.points == {1024: 1, 2048: 2, 16384: 1} and chair.usable == 1
    table = r.table()
    for p in r.problems:
        assert str(p.path) in table
    # only 2048 required: the model with bad 1024/16384 clouds becomes usable
    r2 = check_data(t.root, n_points=[2048], categories="chair")
    assert r2.n_models == 3 and r2.n_usable == 2
    assert {p.required for p in r2.problems if p.path in (str(shape), str(nan))} == {False}


def test_split_with_missing_model_and_cli_exit_codes(tiny_shapenet, tmp_path, capsys):
    t = tiny_shapenet
    good = tmp_path / "good.json"
    write_split(good, {"03001627": [k for k in t.keys if k.startswith("03001627")]})
    assert cli_main(["check-data", "--root", str(t.root), "--split", str(good), "--n-points", "2048"]) == 0
    out = capsys.readouterr().out
    assert "chair" in out and "airplane" not in out and "OK: all 3 models" in out
    bad = tmp_path / "bad.txt"
    write_split(bad, {"03001627": ["03001627/nope"] + [k for k in t.keys if k.startswith("03001627")]})
    js = tmp_path / "r.json"
    assert cli_main(["check-data", "--root", str(t.root), "--split", str(bad), "--json", str(js)]) == 1
    out = capsys.readouterr().out
    assert "NOT USABLE: 1 of 4 models have missing or corrupt required" in out and "03001627/nope" in out and "missing rendering folder" in out
    rep = json.loads(js.read_text())
    assert rep["ok"] is False and rep["n_models"] == 4
    # points-only check ignores renderings
    shutil.rmtree(t.root / "ShapeNetRendering")
    assert cli_main(["check-data", "--root", str(t.root), "--no-images"]) == 0
    assert cli_main(["check-data", "--root", str(t.root)]) == 1
    assert cli_main(["check-data", "--root", str(tmp_path / "nowhere")]) == 2
