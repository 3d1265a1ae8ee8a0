"""The reference rows and extra columns of the evaluation tables (docs/evaluation.md#reference-rows-and-extra-columns):
F-score against a brute-force NumPy computation, the gap-closed formula on a hand-computed example,
and a tiny run whose floor (own GT pointcloud_2048) is the best row and whose AE ceiling is present."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lmnet.eval import baselines
from lmnet.eval.gap import add_gap_columns, gap_closed
from lmnet.eval.protocol import FSCORE_TAUS, Protocol, evaluate_pair, fscore_terms, icp, normalize_cloud, subsample
from lmnet.eval.run import evaluate_run

FLOOR_LABEL = "floor (own GT pointcloud_2048)"


def _brute_fscore(pred, gt, tau):
    d = np.sqrt(((pred[:, None, :] - gt[None, :, :]) ** 2).sum(-1))  # (N, M) all pairwise distances
    p = float((d.min(axis=1) <= tau).mean())
    r = float((d.min(axis=0) <= tau).mean())
    return p, r, (2 * p * r / (p + r) if p + r > 0 else 0.0)


@pytest.mark.parametrize("seed", range(3))
def test_fscore_matches_brute_force(seed):
    """evaluate_pair's F-score = precision / recall / F computed directly from all pairwise distances
    of the clouds as the protocol leaves them (subsampled, normalised, after ICP)."""
    rng = np.random.default_rng(seed)
    gt = rng.uniform(-0.5, 0.5, (300, 3))
    pred = np.repeat(gt, 2, axis=0)[:500] + rng.normal(scale=0.01 * (seed + 1), size=(500, 3))
    proto = Protocol(n_points=300, emd=False)
    rec = evaluate_pair(pred, gt, proto, key=f"s/m/{seed:02d}")
    p = normalize_cloud(subsample(pred, 300, seed=proto.seed, key=f"s/m/{seed:02d}"))
    g = normalize_cloud(gt)
    p = icp(p, g, max_iter=proto.icp_max_iter, tol=proto.icp_tol).aligned
    for tau, k in zip(FSCORE_TAUS, ("1pct", "2pct")):
        bp, br, bf = _brute_fscore(p, g, tau)
        assert rec[f"precision_{k}"] == pytest.approx(bp, abs=1e-12)
        assert rec[f"recall_{k}"] == pytest.approx(br, abs=1e-12)
        assert rec[f"fscore_{k}"] == pytest.approx(bf, abs=1e-12)
        assert 0.0 < bf < 1.0  # the example is neither trivial nor hopeless


def test_fscore_hand_computed_and_zero():
    # precision 2/4, recall 1/2 at tau 0.01; F = 2 * 0.5 * 0.5 / 1.0 = 0.5
    out = fscore_terms(np.array([0.005, 0.5]), np.array([0.0, 0.01, 0.02, 0.3]), taus=(0.01,))
    assert out == {"precision_1pct": 0.5, "recall_1pct": 0.5, "fscore_1pct": 0.5}
    assert fscore_terms(np.array([1.0]), np.array([1.0]), taus=(0.02,))["fscore_2pct"] == 0.0


def test_gap_closed_hand_computed():
    # baselines 10 and 8 (B = 8), floor 2: a method at 5 closes (8 - 5) / (8 - 2) = 50 %
    assert gap_closed(8.0, 5.0, 2.0) == pytest.approx(50.0)
    assert gap_closed(8.0, 8.0, 2.0) == 0.0 and gap_closed(8.0, 2.0, 2.0) == 100.0
    assert gap_closed(8.0, 11.0, 2.0) == pytest.approx(-50.0)
    assert math.isnan(gap_closed(2.0, 1.0, 2.0)) and math.isnan(gap_closed(float("nan"), 1.0, 0.5))
    rows = lambda a, b: [{"category": "chair", "cd_x100": a}, {"category": "mean", "cd_x100": b}]  # noqa: E731
    tables = {"model": rows(5.0, 4.0), "mean": rows(10.0, 9.0), "nearest": rows(8.0, 10.0), "floor": rows(2.0, 1.0)}
    assert add_gap_columns(tables, baselines=["mean", "nearest"], floor="floor", metrics=("cd", "emd")) == ["cd"]
    assert tables["model"][0]["cd_gap_closed_pct"] == pytest.approx(50.0)   # chair: B = 8 (nearest)
    assert tables["model"][1]["cd_gap_closed_pct"] == pytest.approx(62.5)   # mean: B = 9 (mean), (9-4)/(9-1)
    assert tables["nearest"][1]["cd_gap_closed_pct"] == pytest.approx(-12.5)
    assert add_gap_columns({"model": rows(1.0, 1.0)}, baselines=["mean"], floor=None) == []


def _shape_clouds(data, seed=1):
    """Rewrite every model's pointcloud_1024 / _2048 as two independent samples of one surface of
    its own (an ellipsoid with random axes), so the floor is a real second sample of the GT."""
    rng = np.random.default_rng(seed)
    for key in data.keys:
        axes = rng.uniform(0.1, 0.5, 3)
        for n in (1024, 2048):
            u = rng.normal(size=(n, 3))
            pts = (u / np.linalg.norm(u, axis=1, keepdims=True) * axes).astype(np.float32)
            np.save(data.root / "ShapeNet_pointclouds" / key / f"pointcloud_{n}.npy", pts)


@pytest.fixture(scope="module")
def shaped_run(tmp_path_factory):
    from conftest import write_tiny_shapenet
    from test_eval import make_runs

    base = tmp_path_factory.mktemp("gap_project")
    data = write_tiny_shapenet(base / "data", n_views=1, point_counts=(1024, 2048))
    _shape_clouds(data)
    return data, make_runs(base / "l1", data)


def test_floor_is_best_and_ae_ceiling_present(shaped_run):
    res = evaluate_run(shaped_run[1], split="test", views=[0], workers=1, protocol=Protocol(icp_max_iter=10))
    tables = res["tables"]
    assert {FLOOR_LABEL, baselines.AE_CEILING_LABEL} <= set(tables)
    assert len(res["records"][baselines.AE_CEILING_LABEL]) == len(res["records"]["model"]) == 2
    floor, model = tables[FLOOR_LABEL], tables["model"]
    for m in ("cd", "emd"):
        col = f"{m}_x100"
        for i, row in enumerate(model):  # every category and the class mean
            best = min(tables[b][i][col] for b in (baselines.MEAN_LATENT_LABEL, baselines.NEAREST_LABEL))
            assert floor[i][col] < row[col] and floor[i][col] < best
            assert floor[i][col] < tables[baselines.AE_CEILING_LABEL][i][col]  # an untrained AE
            assert row[f"{m}_gap_closed_pct"] == pytest.approx(100 * (best - row[col]) / (best - floor[i][col]))
            assert floor[i][f"{m}_gap_closed_pct"] == pytest.approx(100.0)
    # two samples of one surface: the floor covers most points within 2 % of the size, the model few
    assert floor[-1]["fscore_2pct_x100"] > 50.0 > model[-1]["fscore_2pct_x100"]
    assert any("own ground-truth pointcloud_2048" in n for n in res["notes"])
    assert any("AE ceiling" in n and "encodes each test shape's own GT" in n for n in res["notes"])


def test_no_baselines_means_no_reference_rows(shaped_run):
    run = shaped_run[1]
    res = evaluate_run(run, split="test", views=[0], workers=1, baselines=False,
                       protocol=Protocol(icp=False, emd=False))
    assert set(res["records"]) == {"model"}
    assert "gap closed" not in (run / "eval_test.md").read_text()


def test_a_test_shape_without_pointcloud_2048_skips_the_references(shaped_run):
    """No floor over some shapes only: one missing pointcloud_2048 of the split drops the floor and
    the AE ceiling, and a note names the file; the baselines stay."""
    data, run = shaped_run
    s = data.synsets[0]
    path = data.root / "ShapeNet_pointclouds" / s / data.models[s][2] / "pointcloud_2048.npy"  # a test shape
    path.rename(path.with_suffix(".away"))
    try:
        res = evaluate_run(run, split="test", views=[0], workers=1, protocol=Protocol(icp=False, emd=False))
    finally:
        path.with_suffix(".away").rename(path)
    assert set(res["records"]) == {"model", baselines.MEAN_LATENT_LABEL, baselines.NEAREST_LABEL}
    assert any(n.startswith("floor and AE ceiling skipped: 1 of 2 shapes") and str(path) in n for n in res["notes"])
    assert "gap closed" not in (run / "eval_test.md").read_text()
