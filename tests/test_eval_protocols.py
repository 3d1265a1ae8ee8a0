"""The other papers' protocols (``lmnet eval --protocol pix3d | meshrcnn | p2m``) against direct
ports of those papers' evaluation code (tests/reference_pix3d_eval.py,
tests/reference_meshrcnn_metrics.py), on synthetic pairs and end to end on a tiny run."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

import reference_meshrcnn_metrics as ref_mr
import reference_pix3d_eval as ref_p3
from lmnet.cli import main
from lmnet.data.dataset import ShapeNetDataset
from lmnet.errors import ConfigError
from lmnet.eval import official
from lmnet.eval.camera_frame import move_pairs, to_camera_frame
from lmnet.eval.protocol import emd_scipy, subsample
from lmnet.eval.protocol_meshrcnn import MeshRCNNProtocol, sampling_metrics
from lmnet.eval.protocol_pix3d import Pix3DProtocol, pix3d_chamfer, pix3d_clouds
from lmnet.eval.protocols import check_protocol_name, paper_protocol
from lmnet.registry import load_model
from test_eval import tiny_project  # noqa: F401 (the session fixture: a tiny dataset and its runs)

METADATA = ("53.4148856456 25.1270260505 0 0.850870070084 25", "301.2 29.5 0 0.77 25", "0 25 0 0.9 25")


def _pair(seed: int, n_pred: int = 1024, n_gt: int = 1024, offset: float = 0.05):
    """A GT-like cloud (an anisotropic box surface) and a noisy, shifted prediction of it."""
    rng = np.random.default_rng(seed)
    gt = rng.uniform(-1, 1, (n_gt, 3)) * [0.3, 0.15, 0.2]
    pred = gt[rng.integers(0, n_gt, n_pred)] + rng.normal(0, 0.02, (n_pred, 3)) + offset
    return pred, gt


# ------------------------------------------------------------------------------------------ pix3d


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pix3d_chamfer_equals_the_port(seed):
    pred, gt = _pair(seed)
    p, g = pix3d_clouds(pred, gt)
    np.testing.assert_allclose(p, ref_p3.normalize_points(pred).astype(np.float32), rtol=0, atol=0)
    np.testing.assert_allclose(g, ref_p3.normalize_points(gt).astype(np.float32), rtol=0, atol=0)
    cd, _, _ = pix3d_chamfer(p, g)
    assert math.isclose(cd, float(ref_p3.cd_dis(p[None], g[None])[0]), rel_tol=1e-6)


@pytest.mark.parametrize("seed", [0, 3])
def test_pix3d_emd_equals_the_port_within_the_auction_bound(seed):
    """256 points keep the pure-Python auction port fast; the schedule does not depend on N."""
    pred, gt = _pair(seed, 256, 256)
    p, g = (ref_p3.normalize_points(c).astype(np.float32) for c in (pred, gt))
    ours, eps = official.auction_emd_bound(p, g)
    ref = float(ref_p3.emd_dis(p[None], g[None])[0])
    exact = emd_scipy(p, g)
    assert eps == pytest.approx(1e-4, rel=1e-6) or eps == pytest.approx(1e-2, rel=1e-6)
    assert exact - 1e-6 <= ours <= exact + eps + 1e-6
    assert exact - 1e-6 <= ref <= exact + eps + 1e-6
    assert abs(ours - ref) <= eps
    _, _, bids = ref_p3.auction_match(p[None], g[None])
    assert official.auction_eps_last(int(bids[0]), 256) == pytest.approx(eps)


def test_pix3d_matching_is_the_ports_matching():
    pred, gt = _pair(5, 128, 128)
    p, g = (ref_p3.normalize_points(c).astype(np.float32) for c in (pred, gt))
    ours, bids = official._k.auction_match(p, g)
    matchl, _, ref_bids = ref_p3.auction_match(p[None], g[None])
    np.testing.assert_array_equal(ours, matchl[0])
    assert bids == ref_bids[0]


def test_pix3d_protocol_pair_subsamples_prediction_only():
    pred, gt = _pair(7, 2048, 1024)
    rec = Pix3DProtocol(seed=3).evaluate_pair(pred, gt, key="s/m/00")
    p, g = pix3d_clouds(pred, gt, seed=3, key="s/m/00")
    assert len(p) == len(g) == 1024
    np.testing.assert_array_equal(g, ref_p3.normalize_points(gt).astype(np.float32))
    cd_ref = float(ref_p3.cd_dis(p[None], g[None])[0])
    assert math.isclose(rec["cd"], cd_ref, rel_tol=1e-6)
    assert math.isclose(rec["cd"], rec["cd_pred2gt"] + rec["cd_gt2pred"], rel_tol=1e-12)
    exact = emd_scipy(p, g)
    assert exact - 1e-6 <= rec["emd"] <= exact + rec["emd_eps"] + 1e-6
    off = Pix3DProtocol(emd=False).evaluate_pair(pred, gt, key="s/m/00")
    assert math.isnan(off["emd"]) and off["cd"] == pytest.approx(Pix3DProtocol().evaluate_pair(pred, gt, "s/m/00")["cd"])


# ------------------------------------------------------------------------------------ Mesh R-CNN


@pytest.mark.parametrize("line", METADATA)
def test_camera_frame_is_mesh_rcnn_extrinsics(line):
    _, gt = _pair(0)
    az, el, _, ratio, _ = (float(v) for v in line.split())
    ours = to_camera_frame(gt, az, el, ratio)
    ref = ref_mr.lmnet_cloud_to_camera(gt, line).numpy()
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("line", METADATA)
@pytest.mark.parametrize("variant", ["meshrcnn", "p2m"])
def test_mesh_rcnn_metrics_equal_the_port(line, variant):
    pred, gt = _pair(int(float(line.split()[0])), 2048, 1024, offset=0.01)
    az, el, _, ratio, _ = (float(v) for v in line.split())
    rec = MeshRCNNProtocol(variant).evaluate_pair(to_camera_frame(pred, az, el, ratio),
                                                  to_camera_frame(gt, az, el, ratio), key="k")
    p_cam = ref_mr.lmnet_cloud_to_camera(pred, line)[None]
    g_cam = ref_mr.lmnet_cloud_to_camera(gt, line)[None]
    ref = (ref_mr.evaluate_test if variant == "meshrcnn" else ref_mr.evaluate_test_p2m)(p_cam, g_cam)
    assert math.isclose(rec["chamfer_l2"], float(ref["chamfer"][0]), rel_tol=1e-6)
    f1_keys = [k for k in ref if k.startswith("f1")]
    assert len(f1_keys) == (3 if variant == "meshrcnn" else 2)
    for k in f1_keys:
        assert math.isclose(100.0 * rec[k], float(ref[k][0]), rel_tol=1e-6, abs_tol=1e-9), k
    assert 0.0 < rec[f1_keys[-1]] <= 1.0
    if variant == "p2m":
        assert rec["scale"] == 0.57 and rec["chamfer_l2_x10"] == pytest.approx(10 * rec["chamfer_l2"])
    else:  # the GT's longest bbox edge in the camera frame becomes 10
        g = to_camera_frame(gt, az, el, ratio) * rec["scale"]
        assert (g.max(0) - g.min(0)).max() == pytest.approx(10.0)


def test_mesh_rcnn_scale_depends_on_the_view_but_p2m_does_not():
    pred, gt = _pair(11, 2048, 1024, offset=0.0)
    recs = {}
    for variant in ("meshrcnn", "p2m"):
        recs[variant] = [MeshRCNNProtocol(variant).evaluate_pair(to_camera_frame(pred, a, 25, 0.8),
                                                                 to_camera_frame(gt, a, 25, 0.8)) for a in (0, 45)]
    assert recs["meshrcnn"][0]["scale"] != pytest.approx(recs["meshrcnn"][1]["scale"])
    assert recs["p2m"][0]["chamfer_l2"] == pytest.approx(recs["p2m"][1]["chamfer_l2"], rel=1e-9)


def test_sampling_metrics_by_hand():
    """Two points each, hand-computed: distances 0.05 and 0.4 both ways."""
    pred = np.array([[0.0, 0, 0], [1.0, 0, 0]])
    gt = np.array([[0.05, 0, 0], [1.4, 0, 0]])
    m = sampling_metrics(pred, gt, [0.1, 0.5])
    assert m["chamfer_l2"] == pytest.approx((0.05 ** 2 + 0.4 ** 2) / 2 * 2)
    assert m["precision"] == pytest.approx([50.0, 100.0]) and m["recall"] == pytest.approx([50.0, 100.0])
    assert m["f1"][0] == pytest.approx(50.0) and m["f1"][1] == pytest.approx(100.0)


def test_move_pairs_needs_views():
    pred, gt = _pair(0, 16, 16)
    with pytest.raises(ConfigError, match="--protocol p2m needs each pair's R2N2 view"):
        move_pairs([pred], [gt], [{"category": "03001627"}], "p2m")


def test_protocol_names():
    assert check_protocol_name("p2m") == "p2m"
    with pytest.raises(ConfigError, match="unknown protocol 'icp'; valid protocols: lmnet, official, pix3d, "
                                          "meshrcnn, p2m"):
        check_protocol_name("icp")
    with pytest.raises(ConfigError, match="not one of the other papers' protocols"):
        paper_protocol("lmnet")
    with pytest.raises(ConfigError, match="variant must be one of meshrcnn, p2m"):
        MeshRCNNProtocol("pix3d")
    assert paper_protocol("pix3d", seed=4, emd=False) == Pix3DProtocol(seed=4, emd=False)


# ------------------------------------------------------------------------------------ end to end


def _run_items(run):
    """The tiny run's test items (views 0, 1) and its predictions ``(4, 2048, 3)``."""
    model, config = load_model(run)
    ds = ShapeNetDataset(config["data_root"], split=run.parent.parent / "splits" / "tiny_test_models.json",
                         views=[0, 1], n_points=1024, image_cache=False)
    items = [ds[i] for i in range(len(ds))]
    with torch.no_grad():
        preds = model(torch.stack([it["image"] for it in items])).numpy()
    return items, preds


def _records(path):
    with open(path) as fh:
        return {r["key"]: r for r in csv.DictReader(fh) if r["method"] == "model"}


@pytest.mark.parametrize("name", ["meshrcnn", "p2m"])
def test_cli_mesh_rcnn_protocols_end_to_end(tiny_project, capsys, name):  # noqa: F811
    _, run, _ = tiny_project
    assert main(["eval", "--run", str(run), "--split", "test", "--views", "0", "--protocol", name,
                 "--no-baselines", "--workers", "1"]) == 0
    md = (run / f"eval_test_{name}.md").read_text()
    assert md.splitlines()[0] == f"# Evaluation on split 'test' — protocol: {name}"
    heads = [ln for ln in md.splitlines() if ln.startswith("## ")]
    assert len(heads) == (4 if name == "meshrcnn" else 3) and all(f"— {name} protocol" in h for h in heads)
    assert ("Chamfer-L2 ×100" if name == "meshrcnn" else "Chamfer-L2 ×1000") in heads[0]
    assert all("F1@" in h and "%" in h for h in heads[1:])
    recs = _records(run / f"eval_test_{name}_pairs.csv")
    items, preds = _run_items(run)
    assert len(recs) == 2
    for it, pred in ((it, p) for it, p in zip(items, preds) if it["view"] == 0):
        line = f"{float(it['azimuth'])} {float(it['elevation'])} 0 {float(it['distance_ratio'])} 25"
        p_cam = ref_mr.lmnet_cloud_to_camera(pred, line)[None]
        g_cam = ref_mr.lmnet_cloud_to_camera(it["points"].numpy(), line)[None]
        ref = (ref_mr.evaluate_test if name == "meshrcnn" else ref_mr.evaluate_test_p2m)(p_cam, g_cam)
        rec = recs[f"{it['key']}/{it['view']:02d}"]
        # the pair travels to the workers in float32 and the CSV keeps 8 digits: measured ~1e-8
        assert float(rec["chamfer_l2"]) == pytest.approx(float(ref["chamfer"][0]), rel=1e-6)
        for k in (k for k in ref if k.startswith("f1")):
            assert 100 * float(rec[k]) == pytest.approx(float(ref[k][0]), rel=1e-6, abs=1e-5)


def test_cli_pix3d_protocol_end_to_end(tiny_project, capsys):  # noqa: F811
    _, run, _ = tiny_project
    assert main(["eval", "--run", str(run), "--split", "test", "--views", "0", "--protocol", "pix3d",
                 "--no-baselines", "--workers", "1", "--seed", "2"]) == 0
    md = (run / "eval_test_pix3d.md").read_text()
    lines = md.splitlines()
    assert lines[0] == "# Evaluation on split 'test' — protocol: pix3d"
    assert "xingyuansun/pix3d" in md and "no ICP" in md
    heads = [ln for ln in lines if ln.startswith("## ")]
    assert heads[0].startswith("## CD ×100 (Pix3D benchmark") and heads[1].startswith("## EMD ×100 (Pix3D benchmark")
    recs = _records(run / "eval_test_pix3d_pairs.csv")
    items, preds = _run_items(run)
    assert len(recs) == 2
    for it, pred in [(it, p) for it, p in zip(items, preds) if it["view"] == 0][:1]:  # the port is slow
        key = f"{it['key']}/00"
        sub = subsample(pred.astype(np.float32).astype(np.float64), 1024, seed=2, key=key)  # lmnet's step 1
        cd_ref, emd_ref = ref_p3.evaluate(sub[None], it["points"].numpy()[None])
        rec = recs[key]
        assert float(rec["cd"]) == pytest.approx(float(cd_ref[0]), rel=1e-6)
        assert abs(float(rec["emd"]) - float(emd_ref[0])) <= float(rec["emd_eps"]) + 1e-6
    with open(run / "eval_test_pix3d.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["protocol"] for r in rows} == {"pix3d"} and "cd_x100" in rows[0] and "emd_x100" in rows[0]


def test_cli_refuses_unknown_protocol_and_icp_switches(tiny_project, capsys):  # noqa: F811
    run = tiny_project[1]
    assert main(["eval", "--run", str(run), "--protocol", "chamfer"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["lmnet eval: error: unknown protocol 'chamfer'; valid protocols: lmnet, official, pix3d, "
                   "meshrcnn, p2m"]
    assert main(["eval", "--run", str(run), "--protocol", "pix3d", "--no-icp"]) == 2
    assert "--protocol pix3d has no ICP" in capsys.readouterr().err
    assert main(["eval", "--run", str(run), "--protocol", "p2m", "--dataset", "pix3d", "--root", str(run)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "lmnet eval: error: --protocol p2m needs each pair's R2N2 view (rendering_metadata.txt); --dataset pix3d "
        "has none: use --protocol lmnet, official or pix3d"]
