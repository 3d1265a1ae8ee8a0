"""Pix3D in its released layout: filtering, the input preprocessing (pixel-exact against hand-computed
cases), the GT rotation and OBJ sampling, errors naming the bad entry/file, check-data, and the
synthetic set evaluated end to end."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import torch
from conftest import write_tiny_shapenet
from test_eval import make_runs

from lmnet.data import inputs, pix3d
from lmnet.data.meshes import sample_surface
from lmnet.data.pix3d_check import check_pix3d
from lmnet.errors import CorruptFileError, DataError, NonFiniteError
from lmnet.eval.pix3d_run import evaluate_pix3d
from lmnet.runs import checkpoint_path
from lmnet.synthetic.pix3d_synth import generate_pix3d
from lmnet.cli import main
from lmnet.eval.pix3d_run import Pix3DSource, evaluate_pix3d, pix3d_case_rows
from lmnet.eval.baselines import AE_CEILING_LABEL
from lmnet.render.grids import make_grid


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):

    root = tmp_path_factory.mktemp("pix3d") / "pix3d"
    generate_pix3d(root, n_models=1, n_photos=4, seed=0)
    return root


@pytest.fixture
def root(synth_root, tmp_path):
    dst = tmp_path / "pix3d"
    shutil.copytree(synth_root, dst)
    return dst


def _entries(root):
    return json.loads((root / "pix3d.json").read_text())


def _write_entries(root, entries):
    (root / "pix3d.json").write_text(json.dumps(entries))


# ------------------------------------------------------------------ filtering


def test_filter_keeps_untruncated_unoccluded_chair_sofa_table():
    base = {"truncated": False, "occluded": False, "slightly_occluded": False}
    es = [dict(base, category="chair"), dict(base, category="bed"), dict(base, category="sofa", truncated=True),
          dict(base, category="table", occluded=True), dict(base, category="table", slightly_occluded=True),
          dict(base, category="table")]
    assert [e["category"] for e in pix3d.select(es)] == ["chair", "table"]
    assert pix3d.select(es, "table") == [es[5]]
    with pytest.raises(DataError, match="bed"):
        pix3d.select(es, "chair,bed")


def test_synthetic_set_layout_and_flags(synth_root):
    es = _entries(synth_root)
    assert {e["category"] for e in es} == {"chair", "sofa", "table"}
    assert any(e["truncated"] for e in es) and any(e["occluded"] for e in es)
    assert {e["img"].rsplit(".", 1)[1] for e in es} == {"jpg", "png"}
    for e in es:
        assert (synth_root / e["img"]).is_file() and (synth_root / e["mask"]).is_file()
        assert (synth_root / e["model"]).is_file() and pix3d.pointcloud_path(synth_root, e).is_file()
    sizes = {tuple(e["img_size"]) for e in es}
    assert len(sizes) == len(es) and len({round(w / h, 1) for w, h in sizes}) > 3  # varied sizes / aspects
    ds = pix3d.Pix3DDataset(synth_root)
    assert len(ds) == len(pix3d.select(es)) < len(es)


# ------------------------------------------------------------------ preprocessing


def test_preprocess_no_resample_is_crop_mask_pad():
    """A 93 x 31 bbox needs no resampling: the output is the masked crop at top = (128-31)//2 = 48,
    left = (128-93)//2 = 17, black elsewhere."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(1, 256, (100, 200, 3), dtype=np.uint8)
    mask = rng.random((100, 200)) > 0.3
    x0, y0, x1, y1 = 50, 20, 143, 51
    out = inputs.prepare_pix3d(rgb, mask, (x0, y0, x1, y1))
    expected = np.zeros((128, 128, 3), np.float32)
    expected[48:79, 17:110] = rgb[y0:y1, x0:x1] * mask[y0:y1, x0:x1, None]
    assert out.shape == (3, 128, 128) and out.dtype == np.float32
    np.testing.assert_array_equal(out, expected.transpose(2, 0, 1))


def test_preprocess_halving_is_the_mean_of_2x2_blocks():
    """A 2 x 186 crop becomes 1 x 93: OpenCV's INTER_LINEAR samples at (x + 0.5) * 2 - 0.5 = 2x + 0.5,
    i.e. the mean of each 2 x 2 block (values multiples of 4: the mean is an integer), placed at
    top = (128 - 1) // 2 = 63, left = (128 - 93) // 2 = 17."""
    rng = np.random.default_rng(1)
    rgb = (rng.integers(0, 64, (6, 190, 3)) * 4).astype(np.uint8)
    mask = np.ones(rgb.shape[:2], bool)
    out = inputs.prepare_pix3d(rgb, mask, (2, 3, 188, 5)).transpose(1, 2, 0)
    crop = rgb[3:5, 2:188].astype(np.float64)
    means = crop.reshape(2, 93, 2, 3).mean(axis=(0, 2))
    expected = np.zeros((128, 128, 3), np.float32)
    expected[63, 17:110] = means
    np.testing.assert_array_equal(out, expected)


def test_resize_equals_opencv_when_shrinking():
    cv2 = pytest.importorskip("cv2")  # OpenCV is not an lmnet dependency: checked where installed
    rng = np.random.default_rng(2)
    for h, w, nh, nw in [(400, 300, 93, 69), (1000, 800, 93, 74), (333, 517, 59, 93), (93, 93, 93, 93)]:
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        np.testing.assert_array_equal(inputs.resize_bilinear(img, nh, nw), cv2.resize(img, (nw, nh)))
    small = rng.integers(0, 256, (7, 10, 3), dtype=np.uint8)  # enlarging: border rows within 1
    d = np.abs(inputs.resize_bilinear(small, 65, 93).astype(int) - cv2.resize(small, (93, 65)).astype(int))
    assert d.max() <= 1


@pytest.mark.parametrize("h, w, nh, nw", [(120, 200, 55, 93), (186, 62, 93, 31), (10, 7, 93, 65)])
def test_preprocess_resize_sizes_and_padding(h, w, nh, nw):
    """A constant-colour crop resized to int(side * 93 / longest) per side (also upsampling), then
    padded with top = (128 - nh) // 2, left = (128 - nw) // 2; pixels off the mask are black."""
    rgb = np.zeros((h + 20, w + 30, 3), np.uint8)
    rgb[:] = (10, 200, 30)
    mask = np.zeros(rgb.shape[:2], bool)
    mask[5:5 + h, 7:7 + w] = True
    rgb[~mask] = (250, 250, 250)  # the mask removes it
    out = inputs.prepare_pix3d(rgb, mask, (7, 5, 7 + w, 5 + h)).transpose(1, 2, 0)
    top, left = (128 - nh) // 2, (128 - nw) // 2
    expected = np.zeros((128, 128, 3), np.float32)
    expected[top:top + nh, left:left + nw] = (10, 200, 30)
    np.testing.assert_array_equal(out, expected)


# ------------------------------------------------------------------ ground truth


def test_gt_rotation_is_the_released_composition():
    p = np.array([[1.0, 2.0, 3.0], [-0.5, 0.25, 4.0]])
    np.testing.assert_allclose(pix3d.to_lmnet_frame(p), np.stack([-p[:, 1], -p[:, 0], -p[:, 2]], 1), atol=1e-12)
    # rotate(p, x, y) = p @ Rx(x) @ Ry(y), written out for x = -90, y = -90
    rx = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]])     # Rx(-90°)
    ry = np.array([[0, 0, 1], [0, 1, 0], [-1, 0, 0]])     # Ry(-90°)
    np.testing.assert_allclose(pix3d.rotate(p, -90, -90), p @ rx @ ry, atol=1e-12)


def test_gt_from_official_file_else_sampled_from_obj(root):
    e = pix3d.select(_entries(root))[0]
    raw = np.load(pix3d.pointcloud_path(root, e))
    pts, src = pix3d.load_gt(root, e)
    assert src == "official"
    np.testing.assert_allclose(pts, pix3d.to_lmnet_frame(raw), atol=1e-6)
    pix3d.pointcloud_path(root, e).unlink()
    a, src = pix3d.load_gt(root, e)
    b, _ = pix3d.load_gt(root, e)
    assert src == "sampled" and a.shape == (1024, 3)
    np.testing.assert_array_equal(a, b)  # seeded
    # the samples lie on the OBJ's surface: each is within rounding of some triangle's plane patch
    v, f = pix3d.read_obj(root / e["model"])
    from scipy.spatial import cKDTree

    dense = sample_surface(v, f, 200_000, np.random.default_rng(1), face_draw="choice")
    d, _ = cKDTree(pix3d.to_lmnet_frame(dense)).query(a)
    assert np.median(d) < 0.01


def test_sampling_is_area_weighted():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 5], [3, 0, 5], [0, 3, 5]], float)
    f = np.array([[0, 1, 2], [3, 4, 5]])                 # areas 0.5 and 4.5
    pts = sample_surface(v, f, 20000, np.random.default_rng(0), face_draw="choice")
    frac_big = (pts[:, 2] > 2.5).mean()
    assert abs(frac_big - 0.9) < 0.01
    small = pts[pts[:, 2] < 2.5]
    assert (small[:, 0] + small[:, 1] <= 1 + 1e-9).all() and (small[:, :2] >= -1e-12).all()


def test_pointcloud_suffix_follows_the_obj_name(tmp_path):
    e = {"category": "table", "model": "model/table/IKEA_X/model2.obj"}
    assert pix3d.pointcloud_path(tmp_path, e) == tmp_path / "pix3d_pointclouds/table/IKEA_X/pcl_10242.npy"


# ------------------------------------------------------------------ errors and check-data


def test_missing_key_names_entry_and_key(root):
    es = _entries(root)
    del es[2]["bbox"]
    _write_entries(root, es)
    with pytest.raises(DataError, match=r"entry 2 .*no key 'bbox'"):
        pix3d.load_index(root)
    rep = check_pix3d(root)
    assert not rep.ok and any("no key 'bbox'" in p for p in rep.problems)


def test_bbox_outside_image(root):
    es = _entries(root)
    i = next(k for k, e in enumerate(es) if pix3d.is_used(e))
    w, h = es[i]["img_size"]
    es[i]["bbox"] = [0, 0, w + 5, h]
    _write_entries(root, es)
    with pytest.raises(DataError, match=f"outside the {w}x{h} image"):
        pix3d.Pix3DDataset(root)[0]
    rep = check_pix3d(root)
    assert any(es[i]["img"] in p and "outside" in p for p in rep.problems)


def test_missing_mask_and_corrupt_obj_are_named(root):
    es = pix3d.select(_entries(root))
    (root / es[0]["mask"]).unlink()
    obj = root / es[1]["model"]
    obj.write_text("v 0 0 0\nv 1 0 0\nf 1 2 x\n")
    pix3d.pointcloud_path(root, es[1]).unlink()
    with pytest.raises(CorruptFileError, match="line 3"):
        pix3d.read_obj(obj)
    rep = check_pix3d(root)
    text = rep.table()
    assert str(root / es[0]["mask"]) in text and "does not exist" in text
    assert str(obj) in text and "line 3" in text
    assert not rep.ok


def test_check_data_cli(root, capsys):

    assert main(["check-data", "--dataset", "pix3d", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "no problems found" in out and "| chair |" in out
    first = pix3d.select(_entries(root))[0]["img"]
    (root / first).write_bytes(b"not an image")
    assert main(["check-data", "--dataset", "pix3d", "--root", str(root)]) == 1
    assert f"{root / first}: cannot decode image" in capsys.readouterr().out
    assert main(["check-data", "--dataset", "pix3d", "--root", str(root / "nowhere")]) == 1
    assert "pix3d.json: missing" in capsys.readouterr().out


# ------------------------------------------------------------------ end to end


def test_synth_then_eval_pix3d_end_to_end(tmp_path, capsys):
    """lmnet synth --format pix3d, then lmnet eval --dataset pix3d with both protocols on a tiny run."""
    import csv

    from conftest import write_tiny_shapenet
    from test_eval import make_runs

    data = write_tiny_shapenet(tmp_path / "data", n_views=1, n_models=2, point_counts=(1024, 2048))
    run = make_runs(tmp_path / "proj", data)
    d = tmp_path / "pix3d"
    assert main(["synth", "--format", "pix3d", "--out", str(d), "--models", "1", "--photos", "3"]) == 0
    assert main(["check-data", "--dataset", "pix3d", "--root", str(d)]) == 0
    n_used = len(pix3d.select(_entries(d)))
    assert main(["eval", "--dataset", "pix3d", "--root", str(d), "--run", str(run), "--workers", "1"]) == 0
    md = (run / "eval_pix3d.md").read_text()
    assert md.splitlines()[0] == "# Evaluation on Pix3D — protocol: lmnet"
    with open(run / "eval_pix3d.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["method"] == "model"]
    assert [r["category"] for r in rows] == ["chair", "sofa", "table", "mean"]
    assert int(rows[-1]["n_pairs"]) == n_used and all(float(r["cd_x100"]) > 0 for r in rows)
    assert main(["eval", "--dataset", "pix3d", "--root", str(d), "--run", str(run), "--workers", "1",
                 "--protocol", "official", "--categories", "chair,table", "--no-emd"]) == 0
    out = capsys.readouterr().out
    assert "protocol: official" in out
    for name in ("chair", "table"):
        assert (run / "eval_pix3d_official" / f"{name}.csv").read_text().startswith("Chamfer, Fwd, Bwd, Emd\n")
    assert not (run / "eval_pix3d_official" / "sofa.csv").exists()
    assert main(["eval", "--dataset", "pix3d", "--run", str(run)]) == 2  # no --root
    # best / worst cases as images (the notebook's Pix3D section)

    res = evaluate_pix3d(run, d, workers=1)
    # references: the floor (each photograph's own shape, 2048 points of its own) beats the model;
    # the run's autoencoder gives the AE ceiling; no baselines, so no gap-closed columns
    assert set(res["records"]) == {"model", Pix3DSource.floor_label, AE_CEILING_LABEL}
    assert res["tables"][Pix3DSource.floor_label][-1]["cd_x100"] < res["tables"]["model"][-1]["cd_x100"]
    assert "gap closed" not in (run / "eval_pix3d.md").read_text()
    recs = sorted(res["records"]["model"], key=lambda r: r["cd"])[:2]
    rows = pix3d_case_rows(run, d, recs)
    assert [r["model_id"] for r in rows] == [r["key"] for r in recs]
    assert rows[0]["input"].shape == (3, 128, 128) and rows[0]["gt"].shape == (1024, 3)
    assert make_grid(rows, cell=96).size[0] == 3 * 96


def test_pix3d_eval_refuses_non_finite_predictions(synth_root, tmp_path):
    """A run that predicts NaN stops the Pix3D evaluation with an error naming the first photograph,
    before any report is written (the check ShapeNet's evaluation always had)."""
    data = write_tiny_shapenet(tmp_path / "data", n_views=1, n_models=2, point_counts=(1024, 2048))
    run = make_runs(tmp_path / "proj", data)
    path = checkpoint_path(run, "best")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    name = next(k for k, v in ckpt["model"].items() if k.startswith("encoder") and v.is_floating_point())
    ckpt["model"][name] = torch.full_like(ckpt["model"][name], float("nan"))
    torch.save(ckpt, path)
    first = pix3d.entry_key(pix3d.Pix3DDataset(synth_root).entries[0])
    with pytest.raises(NonFiniteError, match=rf"\(checkpoint best\) predicted NaN or infinite points for {re.escape(first)} "):
        evaluate_pix3d(run, synth_root, workers=1)
    assert not list(run.glob("eval_*"))


def test_mask_of_another_size_is_resized_and_noted(root):
    from PIL import Image

    e = pix3d.select(_entries(root))[0]
    m = Image.open(root / e["mask"])
    big = m.resize((m.size[0] * 2, m.size[1] * 2), Image.NEAREST)
    big.save(root / e["mask"])
    rgb, mask = pix3d.read_photo(root, e)
    assert mask.shape == rgb.shape[:2]
    np.testing.assert_array_equal(mask, np.asarray(m) != 0)  # 2x nearest, resized back: the same mask
    rep = check_pix3d(root)
    assert rep.ok and any("resized to it" in n for n in rep.notes)
