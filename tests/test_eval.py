"""The evaluation protocol (docs/evaluation.md) against brute-force references and hand-computed values."""

from __future__ import annotations

import csv
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment
from scipy.spatial.transform import Rotation

from lmnet.errors import ConfigError
from lmnet.eval import baselines, report
from lmnet.eval.parallel import evaluate_pairs
from lmnet.eval.protocol import Protocol, emd, emd_scipy, evaluate_pair, icp, kabsch, normalize_cloud, subsample
from lmnet.eval.runner import EvalOptions
from lmnet.losses.chamfer_numpy import chamfer_terms as chamfer
from lmnet import atomic_io
from lmnet.data.splits import write_splits
from lmnet.models import ImageToPointCloud, PointAutoencoder
from lmnet.runs import CHECKPOINT_FORMAT
from lmnet.eval.run import evaluate_run
from lmnet.registry import load_model
from lmnet.data.dataset import ShapeNetDataset
from lmnet.cli import main
from lmnet.eval.protocol import icp_reference


def _asym_cloud(n=400, seed=0):
    rng = np.random.default_rng(seed)
    pts = rng.normal(size=(n, 3)) * np.array([0.5, 0.25, 0.1])
    pts[: n // 4, 0] += 0.6  # a lump that breaks symmetry
    return pts


def _brute_nn(a, b):
    d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    return d.min(axis=1)


# -------------------------------------------------------------------------------- normalisation
def test_normalize_matches_spec():
    rng = np.random.default_rng(1)
    pts = rng.uniform([-3, 1, 2], [5, 2, 2.5], size=(500, 3))
    out = normalize_cloud(pts)
    lo, hi = out.min(0), out.max(0)
    np.testing.assert_allclose((lo + hi) / 2, 0, atol=1e-12)          # bbox centred
    assert np.isclose((hi - lo).max(), 1.0)                              # longest side 1
    assert np.all(out >= -0.5 - 1e-12) and np.all(out <= 0.5 + 1e-12)
    ext = pts.max(0) - pts.min(0)
    np.testing.assert_allclose(hi - lo, ext / ext.max(), rtol=1e-9)  # one uniform scale
    # invariant to translation and scale of the input
    np.testing.assert_allclose(normalize_cloud(pts * 3.7 + 11.0), out, atol=1e-12)


def test_normalize_rejects_degenerate():
    with pytest.raises(ValueError, match="coincide"):
        normalize_cloud(np.ones((5, 3)))
    with pytest.raises(ValueError, match="NaN"):
        normalize_cloud(np.array([[0, 0, np.nan]]))


# -------------------------------------------------------------------------------- subsampling
def test_subsample_seeded_per_key():
    pts = np.arange(2048 * 3, dtype=np.float32).reshape(2048, 3)
    a = subsample(pts, 1024, seed=0, key="03001627/abc/00")
    b = subsample(pts, 1024, seed=0, key="03001627/abc/00")
    c = subsample(pts, 1024, seed=0, key="03001627/abc/01")
    d = subsample(pts, 1024, seed=1, key="03001627/abc/00")
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)
    assert len(np.unique(a[:, 0])) == 1024  # without replacement
    assert subsample(pts[:1024], 1024) is not None and np.array_equal(subsample(pts[:1024], 1024), pts[:1024])
    with pytest.raises(ValueError, match="cannot subsample"):
        subsample(pts[:10], 1024)


# -------------------------------------------------------------------------------- ICP
def test_kabsch_exact():
    src = _asym_cloud(50)
    r = Rotation.from_euler("xyz", [30, -50, 70], degrees=True).as_matrix()
    t = np.array([0.3, -1.0, 2.0])
    r_est, t_est = kabsch(src, src @ r.T + t)
    np.testing.assert_allclose(r_est, r, atol=1e-10)
    np.testing.assert_allclose(t_est, t, atol=1e-10)
    assert np.isclose(np.linalg.det(r_est), 1.0)


def test_icp_recovers_known_rigid_motion():
    gt = _asym_cloud(500)
    r = Rotation.from_euler("xyz", [8, -6, 10], degrees=True).as_matrix()
    t = np.array([0.05, -0.03, 0.04])
    moved = (gt - t) @ r  # gt = moved @ r.T + t
    res = icp(moved, gt, max_iter=100, tol=1e-12)
    np.testing.assert_allclose(res.rotation, r, atol=1e-4)
    np.testing.assert_allclose(res.translation, t, atol=1e-4)
    np.testing.assert_allclose(res.aligned, gt, atol=1e-4)
    assert res.converged and res.mean_dist < 1e-6


def test_icp_is_rigid_no_scale():
    gt = _asym_cloud(300)
    res = icp(gt * 0.8, gt, max_iter=30)
    assert np.isclose(np.linalg.det(res.rotation), 1.0)
    np.testing.assert_allclose(res.rotation @ res.rotation.T, np.eye(3), atol=1e-10)
    # pairwise distances are preserved (no scaling)
    d0 = np.linalg.norm(gt[0] * 0.8 - gt[1] * 0.8)
    assert np.isclose(np.linalg.norm(res.aligned[0] - res.aligned[1]), d0)


# -------------------------------------------------------------------------------- Chamfer / EMD
def test_self_distances_are_zero():
    pts = _asym_cloud(256)
    c = chamfer(pts, pts)
    assert c["cd"] == 0 and c["cd_sq"] == 0
    assert emd_scipy(pts, pts) == 0
    rec = evaluate_pair(pts, pts, Protocol(n_points=256))
    assert rec["cd"] < 1e-12 and rec["emd"] < 1e-12 and rec["cd_sq"] < 1e-20


def test_chamfer_hand_computed():
    # gt: (0,0,0), (1,0,0); pred: (0,0,0), (0,2,0), (3,0,0)
    gt = np.array([[0, 0, 0], [1, 0, 0]], float)
    pred = np.array([[0, 0, 0], [0, 2, 0], [3, 0, 0]], float)
    c = chamfer(pred, gt)
    # gt->pred: 0, 1            mean 0.5
    # pred->gt: 0, 2, 2         mean 4/3
    assert math.isclose(c["cd_gt2pred"], 0.5)
    assert math.isclose(c["cd_pred2gt"], 4 / 3)
    assert math.isclose(c["cd"], 0.5 + 4 / 3)            # a sum, not an average
    assert math.isclose(c["cd_sq"], (0 + 1) / 2 + (0 + 4 + 4) / 3)  # squared distances


def test_emd_hand_computed():
    # best matching crosses: a0->b1 (1), a1->b0 (1) vs identity (sqrt(1+4)=..., ...)
    a = np.array([[0, 0, 0], [2, 0, 0]], float)
    b = np.array([[3, 0, 0], [1, 0, 0]], float)
    assert math.isclose(emd_scipy(a, b), 1.0)  # 0->1 (1) and 2->3 (1)
    # 4 points: unit square vs the same square shifted by 0.5 in z → every match 0.5
    sq = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], float)
    assert math.isclose(emd_scipy(sq, sq[::-1] + [0, 0, 0.5]), 0.5)


def test_emd_against_brute_force_and_chamfer_bound():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(7, 3)), rng.normal(size=(7, 3))
    import itertools

    cost = np.linalg.norm(a[:, None] - b[None], axis=-1)
    best = min(cost[np.arange(7), list(p)].mean() for p in itertools.permutations(range(7)))
    assert math.isclose(emd_scipy(a, b), best, rel_tol=1e-12)
    assert math.isclose(emd(a, b, "auto"), best, rel_tol=1e-5)
    # EMD >= each one-sided Chamfer term
    c = chamfer(a, b)
    assert emd_scipy(a, b) >= max(c["cd_gt2pred"], c["cd_pred2gt"]) - 1e-12


def test_lmnet_emd_backend_matches_scipy():
    rng = np.random.default_rng(8)
    for n in (5, 300):
        a, b = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
        assert math.isclose(emd(a, b, "lmnet"), emd_scipy(a, b), rel_tol=1e-5)


def test_chamfer_matches_brute_force():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(300, 3)), rng.normal(size=(200, 3))
    c = chamfer(a, b)
    assert math.isclose(c["cd"], _brute_nn(a, b).mean() + _brute_nn(b, a).mean(), rel_tol=1e-12)


# -------------------------------------------------------------------------------- full pair / toggles
def test_evaluate_pair_toggles():
    gt = _asym_cloud(1024, seed=5)
    r = Rotation.from_euler("z", 6, degrees=True).as_matrix()
    pred = np.concatenate([gt, gt]) @ r.T * 2.0 + 5.0  # 2048 points, rotated, scaled, shifted
    full = evaluate_pair(pred, gt, Protocol(), key="k")
    no_icp = evaluate_pair(pred, gt, Protocol(icp=False), key="k")
    no_norm = evaluate_pair(pred, gt, Protocol(normalize=False, icp=False), key="k")
    no_emd = evaluate_pair(pred, gt, Protocol(emd=False), key="k")
    # normalisation removes scale + shift; ICP removes the rotation
    assert full["cd"] < no_icp["cd"] < no_norm["cd"]
    assert no_icp["icp_iters"] == 0 and full["icp_iters"] >= 1
    assert math.isnan(no_emd["emd"]) and no_emd["cd"] == full["cd"]
    # brute-force reproduction of the full protocol's final numbers without ICP
    p = normalize_cloud(subsample(pred, 1024, key="k"))
    g = normalize_cloud(gt)
    assert math.isclose(no_icp["cd"], _brute_nn(g, p).mean() + _brute_nn(p, g).mean(), rel_tol=1e-9)
    cost = np.linalg.norm(p[:, None] - g[None], axis=-1)
    i, j = linear_sum_assignment(cost)
    assert math.isclose(no_icp["emd"], cost[i, j].mean(), rel_tol=1e-5)


def test_protocol_describe_states_steps():
    on = Protocol().describe()
    off = Protocol(icp=False, normalize=False, emd=False).describe()
    assert "ICP pred->GT: on" in on and "normalisation (longest side 1): on" in on
    assert "ICP pred->GT: OFF" in off and "normalisation (longest side 1): OFF" in off and "OFF;" in off


def test_evaluate_pairs_parallel_equals_serial():
    rng = np.random.default_rng(6)
    gts = [rng.normal(size=(64, 3)) for _ in range(6)]
    preds = [g.repeat(2, axis=0) + rng.normal(scale=0.05, size=(128, 3)) for g in gts]
    keys = [f"s/m{i}/00" for i in range(6)]
    proto = Protocol(n_points=64, emd_backend="scipy")  # workers then never import torch/numba
    serial = evaluate_pairs(preds, gts, keys, protocol=proto, workers=1)
    par = evaluate_pairs(preds, gts, keys, protocol=proto, workers=2, chunksize=2)
    assert [r["key"] for r in par] == keys
    for a, b in zip(serial, par):
        assert a == b


# -------------------------------------------------------------------------------- report
def test_aggregate_and_write(tmp_path):
    recs = [
        {"key": "a", "category": "02691156", "cd": 0.01, "emd": 0.02, "cd_sq": 0.001},
        {"key": "b", "category": "02691156", "cd": 0.03, "emd": 0.04, "cd_sq": 0.003},
        {"key": "c", "category": "03001627", "cd": 0.10, "emd": 0.20, "cd_sq": 0.010},
    ]
    rows = report.aggregate(recs)
    assert [r["category"] for r in rows] == ["airplane", "chair", "mean"]
    assert math.isclose(rows[0]["cd_x100"], 2.0) and math.isclose(rows[1]["cd_x100"], 10.0)
    assert math.isclose(rows[2]["cd_x100"], 6.0)  # class mean = mean of category means, not of pairs
    assert rows[2]["n_pairs"] == 3
    paths = report.write_report(tmp_path, "test", {"model": recs, "mean shape": recs[:2]},
                                protocol_line=Protocol().describe())
    with open(paths["csv"]) as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 3 + 2
    assert table[2]["method"] == "model" and table[2]["category"] == "mean"
    assert math.isclose(float(table[2]["emd_x100"]), (3.0 + 20.0) / 2)
    md = paths["md"].read_text()
    assert "Protocol: GT pointcloud_1024" in md and "| **class mean** |" in md and "CD² ×100" in md
    with open(paths["pairs"]) as fh:
        assert len(list(csv.DictReader(fh))) == 5
    assert not list(tmp_path.glob(".*tmp"))


# -------------------------------------------------------------------------------- baselines
def test_medoid_is_brute_force_minimiser():
    rng = np.random.default_rng(7)
    base = rng.normal(size=(32, 3))
    clouds = np.stack([base + rng.normal(scale=s, size=base.shape) for s in (0.5, 0.05, 0.3, 0.4, 0.6)])
    idx = baselines.medoid_index(clouds, n_points=32)
    def cd(a, b):
        return _brute_nn(a, b).mean() + _brute_nn(b, a).mean()
    score = [np.mean([cd(clouds[i], clouds[j]) for j in range(5) if j != i]) for i in range(5)]
    assert idx == int(np.argmin(score)) == 1
    out = baselines.medoid_shapes({"03001627": clouds}, n_points=32)
    np.testing.assert_array_equal(out["03001627"], clouds[1].astype(np.float32))


def test_mean_latent_and_nearest():
    lat = {"b": np.array([[0.0, 2.0], [2.0, 0.0]]), "a": np.array([[1.0, 1.0]])}
    out = baselines.mean_latent_shapes(lat, lambda z: z[:, None, :].repeat(1, 4, 1).expand(-1, -1, 2)
                                       .reshape(-1, 4, 2)[..., [0, 1, 1]])
    np.testing.assert_allclose(out["b"][0], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(out["a"].shape, (4, 3))
    train = torch.tensor([[0.0, 0.0], [5.0, 5.0], [1.0, 0.0]])
    idx = baselines.nearest_training_shape(np.array([[0.9, 0.1], [4.0, 4.0], [-1.0, 0.0]]), train)
    np.testing.assert_array_equal(idx, [2, 1, 0])


# -------------------------------------------------------------------------------- run folders end to end
def make_runs(tmp_path, data, variant="l1"):
    """Write an AE run and an image run (random weights, the lmnet run-folder format) on ``data``;
    split files: 2 models per category train, 1 test. Returns the image run dir."""
    import json


    torch.manual_seed(0)
    splits = {"train": {s: [f"{s}/{m}" for m in ms[:2]] for s, ms in data.models.items()},
              "val": {}, "test": {s: [f"{s}/{m}" for m in ms[2:]] for s, ms in data.models.items()}}
    paths = write_splits(tmp_path / "splits", splits, prefix="tiny")
    ae = PointAutoencoder(n_points=2048).eval()
    ae_dir = tmp_path / "runs" / "ae"
    atomic_io.save_torch({"format": CHECKPOINT_FORMAT, "kind": "autoencoder",
                          "model_config": {"kind": "autoencoder", "n_points": 2048}, "model": ae.state_dict()},
                         ae_dir / "checkpoints" / "best.pt")
    atomic_io.write_json(ae_dir / "config.json", {"kind": "autoencoder", "n_points": 2048,
                                                  "data_root": str(data.root)})
    img = ImageToPointCloud(variant=variant, decoder=ae.decoder).eval()
    img_dir = tmp_path / "runs" / "img"
    atomic_io.save_torch({"format": CHECKPOINT_FORMAT, "kind": "image",
                          "model_config": {"kind": "image", "variant": variant, "image_scaling": "unit",
                                           "latent_dim": 512, "n_points": 2048}, "model": img.state_dict()},
                         img_dir / "checkpoints" / "best.pt")
    atomic_io.write_json(img_dir / "config.json", {
        "kind": "image", "data_root": str(data.root), "train_split": str(paths["train"]),
        "val_split": str(paths["val"]), "categories": None, "ae_run": str(ae_dir), "ae_which": "best",
        "image_cache": False, "background": 255.0, "variant": variant})
    assert json.loads((img_dir / "config.json").read_text())["ae_run"]
    return img_dir


@pytest.fixture(scope="session")
def tiny_project(tmp_path_factory):
    """One fake dataset (2 categories × 3 models, 2 views) and its Variant I and II runs, written
    once per session (the image checkpoint is ~100 MB): ``(data, l1_run, probabilistic_run)``."""
    from conftest import write_tiny_shapenet

    base = tmp_path_factory.mktemp("tiny_project")
    data = write_tiny_shapenet(base / "data", n_views=2, point_counts=(1024, 2048))
    return data, make_runs(base / "l1", data), make_runs(base / "prob", data, variant="probabilistic")


def test_evaluate_run_end_to_end(tmp_path, tiny_project):

    data, run, _ = tiny_project
    res = evaluate_run(run, split="test", views=[0, 1], workers=1, protocol=Protocol(icp_max_iter=10))
    tables = res["tables"]
    assert set(tables) == {"model", baselines.MEAN_LATENT_LABEL, baselines.NEAREST_LABEL, FLOOR_LABEL,
                           baselines.AE_CEILING_LABEL}
    rows = tables["model"]
    assert [r["category"] for r in rows] == ["airplane", "chair", "mean"] and rows[-1]["n_pairs"] == 4
    assert all(r["cd_x100"] > 0 and r["emd_x100"] > 0 for r in rows)
    for name in ("eval_test.csv", "eval_test.md", "eval_test_pairs.csv"):
        assert (run / name).is_file()
    # the model rows reproduce a direct evaluation of the same predictions
    model, _ = load_model(run)

    ds = ShapeNetDataset(data.root, split=run.parent.parent / "splits" / "tiny_test_models.json", views=[0, 1],
                         n_points=1024, image_cache=False)
    items = [ds[i] for i in range(len(ds))]
    with torch.no_grad():
        preds = model(torch.stack([it["image"] for it in items])).numpy()
    keys = [f"{it['key']}/{it['view']:02d}" for it in items]
    direct = evaluate_pairs(preds, [it["points"].numpy() for it in items], keys,
                            protocol=Protocol(icp_max_iter=10, emd=False), workers=1)
    got = {r["key"]: r["cd"] for r in res["records"]["model"]}
    for r in direct:
        assert math.isclose(got[r["key"]], r["cd"], rel_tol=1e-5)
    # nearest-training-shape rows: the retrieved clouds are training shapes, never test shapes
    assert len(res["records"][baselines.NEAREST_LABEL]) == 4
    md = (run / "eval_test.md").read_text()
    assert "ICP pred->GT: on" in md and "decoded mean AE latent" in md
    _check_reference_rows(res, run)


FLOOR_LABEL = "floor (own GT pointcloud_2048)"


def _check_reference_rows(res, run):
    """The floor and the AE ceiling answer every pair of the model; F-score and gap-closed columns
    in the CSV and the markdown (their values: tests/test_eval_gap.py, on shapes whose clouds agree)."""
    assert [r["key"] for r in res["records"][FLOOR_LABEL]] == [r["key"] for r in res["records"]["model"]]
    assert len(res["records"][baselines.AE_CEILING_LABEL]) == len(res["records"]["model"])
    floor = res["tables"][FLOOR_LABEL][-1]
    assert math.isclose(floor["cd_gap_closed_pct"], 100.0) and math.isclose(floor["emd_gap_closed_pct"], 100.0)
    with open(run / "eval_test.csv") as fh:
        header = next(csv.reader(fh))
    assert header[-4:] == ["fscore_1pct_x100", "fscore_2pct_x100", "cd_gap_closed_pct", "emd_gap_closed_pct"]
    md = (run / "eval_test.md").read_text()
    assert "## F-score@1% ×100" in md and "## CD gap closed, %" in md and "## EMD gap closed, %" in md
    header_lines = [ln for ln in md.splitlines() if ln.startswith("| category |")]
    assert header_lines and all(FLOOR_LABEL in ln and baselines.AE_CEILING_LABEL in ln for ln in header_lines)


def test_cli_eval_toggles(tmp_path, tiny_project, capsys):

    run = tiny_project[1]
    assert main(["eval", "--run", str(run), "--split", "val", "--split-file",
                 str(run.parent.parent / "splits" / "tiny_test_models.json"), "--views", "0", "--no-icp", "--no-emd", "--no-baselines",
                 "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "ICP pred->GT: OFF" in out and "EMD ×100" in out and "n/a" in out
    with open(run / "eval_val.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["method"] for r in rows} == {"model"} and rows[-1]["emd_x100"] == ""
    assert main(["eval", "--run", str(tmp_path / "missing")]) == 2


@pytest.mark.parametrize("kw, match", [
    ({"batch_size": 0}, "batch_size must be a whole number >= 1, got 0"),
    ({"batch_size": True}, "batch_size must be a whole number >= 1, got True"),
    ({"max_items": -1}, r"max_items must be a whole number >= 0 \(0 = all\), got -1"),
    ({"max_items": 2.5}, "max_items must be a whole number >= 0"),
    ({"medoid_max_shapes": 0}, "medoid_max_shapes must be a whole number >= 1, got 0"),
])
def test_eval_options_refuse_bad_counts(kw, match):
    with pytest.raises(ConfigError, match=match):
        EvalOptions(**kw)


def test_eval_options_default_to_lmnet_protocol():
    opts = EvalOptions()
    assert opts.protocol == Protocol() and not opts.official


def test_evaluate_run_without_autoencoder_uses_medoid(tmp_path, tiny_project):
    import json


    data, run, _ = tiny_project
    run2 = tmp_path / "run_no_ae"
    run2.mkdir()
    (run2 / "checkpoints").symlink_to(run / "checkpoints")
    cfg = json.loads((run / "config.json").read_text())
    cfg["ae_run"] = str(tmp_path / "no_such_ae")
    (run2 / "config.json").write_text(json.dumps(cfg))
    res = evaluate_run(run2, split="test", views=[0], workers=1, protocol=Protocol(emd=False, icp=False))
    assert set(res["records"]) == {"model", baselines.MEDOID_LABEL, FLOOR_LABEL}  # no AE: no AE ceiling
    assert any("nearest training shape" in n and "skipped" in n for n in res["notes"])
    # the medoid answer is a training shape (models 000 and 001 of each category), never a test shape
    assert sorted(res["medoid_keys"]) == sorted(data.models)
    for s, key in res["medoid_keys"].items():
        assert key in {f"{s}/{m}" for m in data.models[s][:2]}
    assert len(res["records"][baselines.MEDOID_LABEL]) == len(res["records"]["model"]) == 2
    md = (run2 / "eval_test.md").read_text()
    assert "medoid training shape" in md and "EMD = exact assignment, mean Euclidean: OFF" in md
    # gap closed against the medoid alone; EMD off: its gap is not defined
    assert "## CD gap closed, %" in md
    assert math.isnan(res["tables"]["model"][-1]["emd_gap_closed_pct"])


# -------------------------------------------------------------------- fast ICP vs the reference


def _reference_icp_by_hand(src, tgt, max_iter, tol):
    """The protocol's ICP written out plainly: KD-tree NN, Kabsch by SVD with the reflection fix."""
    from scipy.spatial import cKDTree

    tree = cKDTree(tgt)
    cur, r_tot, t_tot = src.copy(), np.eye(3), np.zeros(3)
    dist, idx = tree.query(cur)
    prev, it, conv = dist.mean(), 0, False
    for it in range(1, max_iter + 1):
        a, b = cur, tgt[idx]
        ca, cb = a.mean(0), b.mean(0)
        u, _, vt = np.linalg.svd((a - ca).T @ (b - cb))
        d = 1.0 if np.linalg.det(vt.T @ u.T) >= 0 else -1.0
        r = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
        t = cb - r @ ca
        cur = cur @ r.T + t
        r_tot, t_tot = r @ r_tot, r @ t_tot + t
        dist, idx = tree.query(cur)
        if prev - dist.mean() < tol:
            conv = True
            break
        prev = dist.mean()
    return cur, r_tot, t_tot, it, conv, dist.mean()


def _eval_like_pair(seed, n_pred=1024, n_gt=1024, deg=8.0):
    rng = np.random.default_rng(seed)
    gt = _asym_cloud(n_gt, seed)
    pred = _asym_cloud(n_pred, seed + 100) + 0.01 * rng.normal(size=(n_pred, 3))
    r = Rotation.from_rotvec(rng.normal(size=3) / np.sqrt(3) * np.deg2rad(deg)).as_matrix()
    return normalize_cloud(pred @ r.T + 0.02 * rng.normal(size=3)), normalize_cloud(gt)


@pytest.mark.parametrize("seed", range(6))
def test_icp_matches_straightforward_reference(seed):

    p, g = _eval_like_pair(seed, n_pred=1024 if seed % 2 == 0 else 700, n_gt=1024)
    for max_iter, tol in ((50, 1e-6), (5, 1e-6), (100, 0.0)):
        res = icp(p, g, max_iter=max_iter, tol=tol)
        cur, r, t, it, conv, err = _reference_icp_by_hand(p, g, max_iter, tol)
        assert (res.iterations, res.converged) == (it, conv)
        np.testing.assert_allclose(res.aligned, cur, atol=1e-10)
        np.testing.assert_allclose(res.rotation, r, atol=1e-10)
        np.testing.assert_allclose(res.translation, t, atol=1e-10)
        assert abs(res.mean_dist - err) < 1e-12
        ref = icp_reference(p, g, max_iter=max_iter, tol=tol)  # the kept reference implementation
        assert (ref.iterations, ref.converged) == (it, conv)
        np.testing.assert_allclose(ref.aligned, cur, atol=1e-10)


def test_evaluate_pair_matches_reference_pipeline():
    """Full protocol = subsample + normalise + reference ICP + KD-tree Chamfer + LSA EMD."""
    from scipy.spatial import cKDTree


    rng = np.random.default_rng(40)
    gt = _asym_cloud(1024, 40)
    pred = _asym_cloud(2048, 41) @ Rotation.from_euler("z", 6, degrees=True).as_matrix().T
    pred = pred + 0.01 * rng.normal(size=pred.shape)
    for proto in (Protocol(), Protocol(icp=False), Protocol(normalize=False, icp_max_iter=7)):
        rec = evaluate_pair(pred, gt, proto, key="ref/pair")
        p = subsample(pred, 1024, seed=proto.seed, key="ref/pair")
        g = gt
        if proto.normalize:
            p, g = normalize_cloud(p), normalize_cloud(g)
        if proto.icp:
            res = icp_reference(p, g, max_iter=proto.icp_max_iter, tol=proto.icp_tol)
            p = res.aligned
            assert (rec["icp_iters"], rec["icp_converged"]) == (res.iterations, res.converged)
        d_pg, d_gp = cKDTree(g).query(p)[0], cKDTree(p).query(g)[0]
        assert math.isclose(rec["cd_pred2gt"], d_pg.mean(), rel_tol=1e-10)
        assert math.isclose(rec["cd_gt2pred"], d_gp.mean(), rel_tol=1e-10)
        assert math.isclose(rec["cd_sq"], (d_pg ** 2).mean() + (d_gp ** 2).mean(), rel_tol=1e-10)
        assert abs(rec["emd"] - emd_scipy(p, g)) < 1e-9


def test_the_evaluation_package_loads_no_torch():
    """The ``spawn`` workers of :mod:`lmnet.eval.parallel` import ``lmnet.eval``: it and the protocols
    stay torch-free, so a worker starts without paying for torch."""
    code = "import sys, lmnet.eval, lmnet.eval.parallel; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
