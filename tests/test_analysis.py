"""lmnet.analysis: the logic behind the notebooks, against brute-force references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lmnet import analysis
from lmnet.models.point_ae import PointAutoencoder
from lmnet.data import layout
from lmnet.eval.baselines import medoid_index
from lmnet.methods.autoencoder import train_autoencoder
from lmnet.registry import load_model


def test_chamfer_x100_matches_brute_force():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 50, 3)), rng.normal(size=(2, 40, 3))
    got = analysis.chamfer_x100(a, b)
    for i in range(2):
        d = np.sqrt(((a[i][:, None] - b[i][None]) ** 2).sum(-1))
        assert got[i] == pytest.approx(100 * (d.min(1).mean() + d.min(0).mean()), rel=1e-4)
    assert analysis.chamfer_x100(a[0], a[0])[0] == pytest.approx(0.0, abs=1e-4)


def test_sample_spread():
    rng = np.random.default_rng(1)
    base = rng.normal(size=(100, 3))
    assert analysis.sample_spread(np.stack([base] * 4)) == pytest.approx(0.0, abs=1e-12)
    s = np.stack([base + [0.1, 0, 0], base - [0.1, 0, 0]])   # every point ±0.1 along x
    assert analysis.sample_spread(s) == pytest.approx(0.1)
    k = rng.normal(size=(5, 30, 3))
    ref = np.mean([np.sqrt(np.mean([np.sum((k[j, i] - k[:, i].mean(0)) ** 2) for j in range(5)])) for i in range(30)])
    assert analysis.sample_spread(k) == pytest.approx(ref)
    with pytest.raises(ValueError):
        analysis.sample_spread(np.zeros((4, 3)))


def test_round_robin_and_binned_mean():
    keys = ["a/1", "a/2", "a/3", "b/1", "c/1", "c/2"]
    assert analysis.round_robin(keys, 4) == ["a/1", "b/1", "c/1", "a/2"]
    assert analysis.round_robin(keys, 10) == ["a/1", "b/1", "c/1", "a/2", "c/2", "a/3"]
    c, m = analysis.binned_mean([10, 20, 100, 350], [1, 3, 5, 7], bins=4)
    assert list(c) == [45, 135, 225, 315]
    assert m[0] == 2 and m[1] == 5 and math.isnan(m[2]) and m[3] == 7


def test_round_robin_rows_takes_one_category_after_another():
    rows = [{"category": c, "view": v} for c, v in [("plane", 0), ("plane", 1), ("plane", 2), ("car", 0), ("car", 1),
                                                    ("lamp", 0)]]
    got = analysis.round_robin_rows(rows, 5)
    assert [(r["category"], r["view"]) for r in got] == [("car", 0), ("lamp", 0), ("plane", 0), ("car", 1), ("plane", 1)]
    assert got[0] is rows[3]  # the rows themselves, not copies
    assert analysis.round_robin_rows(rows, 0) == []


def test_best_worst_and_tables():
    recs = [{"cd": v, "key": str(i)} for i, v in enumerate([0.3, float("nan"), 0.1, 0.5, 0.2])]
    best, worst = analysis.best_worst(recs, n=2)
    assert [r["cd"] for r in best] == [0.1, 0.2] and [r["cd"] for r in worst] == [0.5, 0.3]
    res = {"run A": {"tables": {"model": [{"category": "chair", "cd_x100": 5.0}, {"category": "mean", "cd_x100": 5.0}],
                                "mean shape": [{"category": "chair", "cd_x100": 9.0}, {"category": "mean", "cd_x100": 9.0}]}}}
    rows = analysis.compare_tables(res)
    assert rows == [{"run": "run A", "method": "model", "chair": 5.0, "mean": 5.0},
                    {"run": "run A", "method": "mean shape", "chair": 9.0, "mean": 9.0}]
    md = analysis.rows_to_markdown(rows)
    assert md.splitlines()[0] == "| run | method | chair | mean |" and "| run A | model | 5.00 | 5.00 |" in md


def test_interpolate_latents_endpoints():

    torch.manual_seed(0)
    ae = PointAutoencoder().eval()
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(2048, 3)).astype(np.float32), rng.normal(size=(2048, 3)).astype(np.float32)
    out = analysis.interpolate_latents(ae, a, b, steps=3)
    assert out.shape == (3, 2048, 3)
    with torch.no_grad():
        ra, rb = ae(torch.from_numpy(a)[None])[0].numpy(), ae(torch.from_numpy(b)[None])[0].numpy()
        za, zb = ae.encode(torch.from_numpy(np.stack([a, b])))
        mid = ae.decode(((za + zb) / 2)[None])[0].numpy()
    np.testing.assert_allclose(out[0], ra, atol=1e-5)
    np.testing.assert_allclose(out[2], rb, atol=1e-5)
    np.testing.assert_allclose(out[1], mid, atol=1e-5)


def test_autoencoder_vs_mean_shape(tiny_shapenet_factory, tmp_path):
    """Each column equals a brute-force recomputation: the AE's own reconstructions, the medoid
    of all training shapes, the medoid of the input's category; plus the class-mean row."""
    import json


    t = tiny_shapenet_factory(n_models=4, point_counts=(1024,))
    train = {s: ms[:3] for s, ms in t.models.items()}
    val = {s: ms[3:] for s, ms in t.models.items()}
    (tmp_path / "train.json").write_text(json.dumps(train))
    (tmp_path / "val.json").write_text(json.dumps(val))
    run = train_autoencoder({"data_root": str(t.root), "train_split": str(tmp_path / "train.json"),
                             "val_split": str(tmp_path / "val.json"), "n_points": 1024, "epochs": 1,
                             "batch_size": 2, "num_workers": 0, "progress": False, "run_dir": str(tmp_path / "ae")})
    rows = analysis.autoencoder_vs_mean_shape(run, split="val")
    assert [r["category"] for r in rows] == ["airplane", "chair", "class mean"]

    def cloud(s, m):
        return layout.read_pointcloud(layout.pointcloud_path(t.root, s, m, 1024), 1024)

    tr_keys = sorted((s, m) for s, ms in train.items() for m in ms)
    tr = np.stack([cloud(s, m) for s, m in tr_keys])
    medoid_all = tr[medoid_index(tr)]
    ae, _ = load_model(run)
    for row, s in zip(rows, sorted(t.models)):
        gt = np.stack([cloud(s, m) for m in val[s]])
        own = np.stack([cloud(s, m) for m in train[s]])
        with torch.no_grad():
            rec = ae(torch.from_numpy(gt)).numpy()
        assert row["shapes"] == 1
        assert row["autoencoder"] == pytest.approx(analysis.chamfer_x100(rec, gt).mean(), rel=1e-5)
        assert row["mean_shape_all"] == pytest.approx(analysis.chamfer_x100(medoid_all[None], gt).mean(), rel=1e-5)
        assert row["mean_shape_category"] == pytest.approx(
            analysis.chamfer_x100(own[medoid_index(own)][None], gt).mean(), rel=1e-5)
    for key in ("autoencoder", "mean_shape_all", "mean_shape_category"):
        assert rows[-1][key] == pytest.approx(np.mean([r[key] for r in rows[:-1]]))


def test_spread_summary_groups_views_by_azimuth():
    r = {"azimuth_deg": np.array([170.0, 200.0, 185.0, 0.0, 90.0, 359.0]),
         "spread": np.array([1.0, 2.0, 3.0, 10.0, 20.0, 30.0]),
         "sigma_mean": np.array([0.1, 0.2, 0.3, 1.0, 2.0, 3.0])}
    s = analysis.spread_summary(r, theta_deg=20.0)
    assert s["items"] == 6 and s["items_near_180"] == 3
    assert s["spread_near_180"] == pytest.approx(2.0) and s["spread_elsewhere"] == pytest.approx(20.0)
    assert s["sigma_near_180"] == pytest.approx(0.2) and s["sigma_elsewhere"] == pytest.approx(2.0)
    assert s["spread_all"] == pytest.approx(11.0)
    assert math.isnan(analysis.spread_summary(r, theta_deg=5.0)["spread_near_180"]) is False
    assert math.isnan(analysis.spread_summary({k: v[3:] for k, v in r.items()})["spread_near_180"])
