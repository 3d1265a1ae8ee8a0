"""Mask-supervised training (docs/training.md#mask-supervised-training): projection vs real renders,
multi-view items, pose winner selection, gradients, config validation, and short end-to-end runs of both
pose modes."""

import json

import numpy as np
import pytest
import torch

from lmnet import projection
from lmnet.methods.silhouette.data import MultiViewDataset
from lmnet.errors import ConfigError
from lmnet.methods.silhouette.pose_losses import pose_errors, select_pose_winner, student_loss
from lmnet.methods.silhouette.losses import (mask_coverage_loss, mask_distance_field, mask_distance_loss, project_views,
                                             winning_candidate_silhouettes)
from lmnet.models import ImageToPointCloud
from lmnet.camera import wrap_degrees
from lmnet.methods.silhouette.model import PoseNet, SilhouetteNetwork
from lmnet.methods import silhouette as sil
from lmnet.registry import resolve_train_config
from lmnet.methods.autoencoder import DEFAULTS as AE_DEFAULTS
from lmnet.methods.image import DEFAULTS as IMAGE_DEFAULTS
from lmnet.synthetic import generate_dataset
from lmnet.data.dataset import ShapeNetDataset
from lmnet.commands.train import resolve_cli_config
from lmnet.registry import load_model
from lmnet.runs import read_history
from lmnet import camera


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """One synthetic chair and one airplane rendered by lmnet.synthetic (~3 s)."""

    out = tmp_path_factory.mktemp("synth") / "data"
    generate_dataset(out, ["chair", "airplane"], n_models=1, seed=0, workers=1, progress=False)
    return out


# --------------------------------------------------------------------- the promised projection test
def test_projected_gt_cloud_matches_alpha_mask_of_its_render(synth):
    # the renderer's alpha and the splatted GT cloud agree: every mask pixel is covered (same camera,
    # same frame) and IoU > 0.8. Dense cloud (16384) and a 128 grid: at 64 px the trilinear splat's
    # one-voxel footprint dilates thin parts (legs, wings) enough to cost ~0.1 IoU.

    ds = ShapeNetDataset(synth, views=[0, 9, 17], n_points=16384, image_cache=False)
    ious = []
    for i in range(len(ds)):
        it = ds[i]
        mask = projection.mask_to_grid_resolution(it["mask"][None], 128)
        pred = projection.soft_silhouette(it["points"][None], it["azimuth"], it["elevation"],
                                          it["distance_ratio"], it["fov"], size=128, depth_bins=64, sigma=0.2)
        m, p = mask[0] > 0.5, pred[0] > 0.5
        assert (m & p).sum() >= 0.97 * m.sum(), it["key"]
        ious.append(float(projection.silhouette_iou(pred, mask)))
    assert min(ious) > 0.78 and np.mean(ious) > 0.8, ious


# --------------------------------------------------------------------- multi-view items
def _tiny_split(tiny, path):
    path.write_text(json.dumps({s: [f"{s}/{m}" for m in tiny.models[s]] for s in tiny.synsets}))
    return str(path)


def test_multiview_items_are_seeded_input_first_and_distinct(tiny_shapenet):

    base = ShapeNetDataset(tiny_shapenet.root, views="all", image_cache=False)
    ds = MultiViewDataset(base, n_views=4, input_views="random", seed=3, mask_size=16, pose_images=True,
                              pose_image_size=32)
    assert len(ds) == len(tiny_shapenet.keys)
    it = ds[1]
    assert it["sup_mask"].shape == (4, 16, 16) and it["sup_image"].shape == (4, 3, 32, 32)
    assert it["sup_azimuth"].shape == (4,) and int(it["sup_view"][0]) == it["view"]
    assert len(set(it["sup_view"].tolist())) == 4
    assert float(it["sup_azimuth"][0]) == float(it["azimuth"])
    ref = projection.mask_to_grid_resolution(base[base_index(base, it["key"], int(it["sup_view"][2]))]["mask"][None], 16)
    assert torch.allclose(it["sup_mask"][2], ref[0])
    again = ds[1]
    assert torch.equal(again["sup_view"], it["sup_view"])
    views_e0 = [ds.supervising_views(i) for i in range(len(ds))]
    ds.set_epoch(1)
    assert [ds.supervising_views(i) for i in range(len(ds))] != views_e0
    fixed = MultiViewDataset(base, n_views=2, input_views=[5, 7])
    assert len(fixed) == 2 * len(tiny_shapenet.keys) and {fixed[i]["view"] for i in range(len(fixed))} == {5, 7}


def base_index(base, key, view):
    return next(i for i in range(len(base)) if base.item_key(i) == (key, view))


# --------------------------------------------------------------------- pose winner, gradients
def _asymmetric_cloud(n=600, seed=0):
    g = torch.Generator().manual_seed(seed)
    body = (torch.rand(n, 3, generator=g) - 0.5) * torch.tensor([0.15, 0.5, 0.12])
    arm = (torch.rand(n // 2, 3, generator=g) - 0.5) * torch.tensor([0.1, 0.1, 0.3]) + torch.tensor([0.0, 0.2, 0.15])
    return torch.cat([body, arm])[None]


def test_pose_winner_is_the_true_pose_and_only_it_gets_gradient():
    pts = _asymmetric_cloud()
    dr, fov = torch.tensor([[0.8]]), torch.tensor([[25.0]])
    target = project_views(pts, torch.tensor([[40.0]]), torch.tensor([[25.0]]), dr, fov, sigma=0.5, size=32,
                               depth_bins=32)  # (1, 1, 32, 32)
    cand = torch.tensor([[130.0, 25.0], [220.0, 25.0], [40.0, 25.0], [310.0, 25.0]], requires_grad=True)
    sils = project_views(pts, cand[None, :, 0], cand[None, :, 1], dr.expand(1, 4), fov.expand(1, 4),
                             sigma=0.5, size=32, depth_bins=32)
    losses = ((sils - target) ** 2).flatten(2).mean(-1).view(1, 1, 4)  # (B, V, K)
    # brute force: the argmin of the per-candidate losses, and the true pose is it
    best, idx = select_pose_winner(losses)
    assert int(idx) == 2 and int(losses[0, 0].argmin()) == 2 and float(best) < 1e-9
    losses2 = losses.detach().clone()
    losses2[0, 0, 0] = -1.0
    assert int(select_pose_winner(losses2)[1]) == 0
    # gradient through the min reaches the winner only (perturb the winner so it is non-zero)
    cand2 = torch.tensor([[130.0, 25.0], [220.0, 25.0], [47.0, 26.0], [310.0, 25.0]], requires_grad=True)
    sils = project_views(pts, cand2[None, :, 0], cand2[None, :, 1], dr.expand(1, 4), fov.expand(1, 4),
                             sigma=0.5, size=32, depth_bins=32)
    best, idx = select_pose_winner(((sils - target) ** 2).flatten(2).mean(-1).view(1, 1, 4))
    best.sum().backward()
    assert int(idx) == 2 and cand2.grad[2].abs().sum() > 0
    assert cand2.grad[[0, 1, 3]].abs().sum() == 0


def test_winning_candidate_silhouettes_equal_the_full_graph():
    """Selection without autograd + one projection of the winners = a min over all K losses, in
    value and in the gradients of the points and of every candidate (the naive reference)."""
    g = torch.Generator().manual_seed(3)
    B, V, K, S = 2, 3, 4, 16
    kw = dict(sigma=0.8, size=S, depth_bins=16)
    base = _asymmetric_cloud(256)  # (1, 384, 3)
    pts0 = base.expand(B, -1, -1) + 0.01 * torch.randn(B, base.shape[1], 3, generator=g)
    dr, fov = torch.full((B, V), 0.8), torch.full((B, V), 25.0)
    az_true = torch.tensor([[40.0, 160.0, 300.0], [10.0, 95.0, 250.0]])
    masks = (project_views(pts0, az_true, torch.full((B, V), 25.0), dr, fov, **kw) > 0.5).float()
    cand0 = torch.stack([torch.rand(B, V, K, generator=g) * 360.0, 15.0 + 20.0 * torch.rand(B, V, K, generator=g)], -1)
    pts_a, cand_a = pts0.clone().requires_grad_(), cand0.clone().requires_grad_()
    loss, sil, win, idx = winning_candidate_silhouettes(pts_a, masks, cand_a, dr, fov, **kw)
    (loss.sum() + 0.1 * sil.sum()).backward()
    pts_b, cand_b = pts0.clone().requires_grad_(), cand0.clone().requires_grad_()
    rep = lambda t: t.unsqueeze(-1).expand(B, V, K).reshape(B, V * K)
    full = project_views(pts_b, cand_b[..., 0].reshape(B, V * K), cand_b[..., 1].reshape(B, V * K), rep(dr), rep(fov),
                         **kw).view(B, V, K, S, S)
    best, ref_idx = select_pose_winner(((full - masks.unsqueeze(2)) ** 2).flatten(3).mean(-1))
    ref_sil = full.gather(2, ref_idx[..., None, None, None].expand(B, V, 1, S, S)).squeeze(2)
    (best.sum() + 0.1 * ref_sil.sum()).backward()
    assert torch.equal(idx, ref_idx) and len(set(idx.flatten().tolist())) > 1
    assert torch.allclose(loss, best, atol=1e-6) and torch.allclose(sil, ref_sil, atol=1e-6)
    assert torch.equal(win, cand0.gather(2, ref_idx[..., None, None].expand(B, V, 1, 2)).squeeze(2))
    assert pts_a.grad.abs().sum() > 0 and torch.allclose(pts_a.grad, pts_b.grad, atol=1e-6, rtol=1e-4)
    assert torch.allclose(cand_a.grad, cand_b.grad, atol=1e-6, rtol=1e-4)
    losers = torch.ones(B, V, K, dtype=torch.bool).scatter(2, idx[..., None], False)
    assert cand_a.grad[losers].abs().sum() == 0 and cand_a.grad[~losers].abs().sum() > 0


def test_pose_errors_wrap_and_align():
    gt = torch.tensor([[10.0, 25.0], [350.0, 30.0], [180.0, 27.0]])
    pred = torch.tensor([[350.0, 26.0], [10.0, 30.0], [190.0, 27.0]])
    e = pose_errors(pred, gt)
    assert e["azimuth_mean_deg"] == pytest.approx(50 / 3) and e["elevation_mean_deg"] == pytest.approx(1 / 3)
    shifted = pose_errors(torch.stack([(gt[:, 0] + 90) % 360, gt[:, 1]], 1), gt)
    assert shifted["azimuth_mean_deg"] == pytest.approx(90) and shifted["aligned_azimuth_mean_deg"] == pytest.approx(0)
    assert shifted["azimuth_offset_deg"] == 90
    assert torch.allclose(wrap_degrees(torch.tensor([190.0, -190.0, 180.0])), torch.tensor([-170.0, 170.0, -180.0]))


def test_student_loss_matches_reference_and_pose_net_shapes():
    st = torch.tensor([[0.0, 20.0], [90.0, 40.0]])
    tg = torch.tensor([[180.0, 20.0], [90.0, 10.0]])
    ref = ((4.0 + 0.0) + (0.0 + 1.0)) / 2  # |u(0)-u(180)|² = 4; (30/30)² = 1
    assert float(student_loss(st, tg)) == pytest.approx(ref, abs=1e-6)
    net = PoseNet(n_candidates=4, image_size=32, elevation_range=(10, 50)).eval()
    cand, student = net(torch.rand(3, 3, 32, 32) * 255)
    assert cand.shape == (3, 4, 2) and student.shape == (3, 2)
    # at initialisation the candidates cover the circle evenly and lie in the elevation range
    assert torch.allclose(cand[0, :, 0], torch.tensor([0.0, 90.0, 180.0, 270.0]), atol=1.0)
    assert ((cand[..., 1] >= 10) & (cand[..., 1] <= 50)).all()


def test_gradients_reach_encoder_decoder_and_pose_net():
    torch.manual_seed(0)
    model = SilhouetteNetwork(n_pose_candidates=2, pose_image_size=32).train()
    images = torch.rand(2, 3, 128, 128) * 255
    pts = model(images)
    assert pts.shape == (2, 2048, 3) and isinstance(model, ImageToPointCloud)
    masks = torch.zeros(2, 2, 16, 16)
    masks[..., 5:11, 6:10] = 1
    az = torch.tensor([[30.0, 200.0], [90.0, 300.0]])
    cams = dict(sigma=1.0, size=16, depth_bins=16)
    loss_known = ((project_views(pts, az, torch.full_like(az, 25.0), torch.full_like(az, 0.8),
                                     torch.full_like(az, 25.0), **cams) - masks) ** 2).mean()
    cand, student = model.pose_net(torch.rand(4, 3, 32, 32) * 255)
    c = cand.view(2, 2, 2, 2)
    s = project_views(pts, c[..., 0].reshape(2, 4), c[..., 1].reshape(2, 4), torch.full((2, 4), 0.8),
                          torch.full((2, 4), 25.0), **cams).view(2, 2, 2, 16, 16)
    best, idx = select_pose_winner(((s - masks.unsqueeze(2)) ** 2).flatten(3).mean(-1))
    win = cand.view(2, 2, 2, 2).gather(2, idx[..., None, None].expand(2, 2, 1, 2)).reshape(-1, 2)
    (loss_known + best.mean() + student_loss(student, win)).backward()
    for name in ("encoder.convs.0.weight", "encoder.fc.weight", "decoder.mlp.0.weight", "decoder.mlp.6.weight",
                 "pose_net.convs.0.weight", "pose_net.candidates_head.weight", "pose_net.student_head.weight"):
        g = dict(model.named_parameters())[name].grad
        assert g is not None and g.abs().sum() > 0, name


# --------------------------------------------------------------------- config
def test_config_validation_and_existing_kinds_unchanged():
    cfg = resolve_train_config("silhouette", {})
    assert cfg["pose"] == "known" and cfg["n_views"] == 4 and cfg["weight_chamfer"] == 0.0
    assert cfg["best_metric"] == "val_silhouette_loss"
    bad = [({"pose": "maybe"}, "pose"), ({"n_views": 0}, "n_views"), ({"n_views": 25}, "n_views"),
           ({"sigma_start": 0.1, "sigma_end": 0.2}, "sigma"), ({"best_metric": "val_iou"}, "val_iou"),
           ({"best_metric": "val_azimuth_err_deg"}, "unknown"), ({"elevation_range": [50, 10]}, "elevation_range"),
           ({"weight_silhouette": 0.0, "weight_mask_distance": 0.0, "weight_mask_coverage": 0.0}, "nothing to train"), ({"pose_image_size": 40}, "pose_image_size"),
           ({"nonsense": 1}, "valid keys"), ({"views": [30]}, "views"), ({"weight_student": -1.0}, "weight_student")]
    for override, match in bad:
        with pytest.raises(ConfigError, match=match):
            resolve_train_config("silhouette", override)
    assert resolve_train_config("silhouette", {"pose": "unknown", "best_metric": "val_azimuth_err_deg"})
    assert resolve_train_config("autoencoder", {}) == AE_DEFAULTS
    assert resolve_train_config("image", {"ae_run": "x"}) == {**IMAGE_DEFAULTS, "ae_run": "x"}


    kind, c = resolve_cli_config("silhouette", None, ["pose=unknown", "n_views=2"])
    assert kind == "silhouette" and c["pose"] == "unknown" and c["n_views"] == 2


# --------------------------------------------------------------------- end to end, both modes
@pytest.mark.parametrize("pose", ["known", "unknown"])
def test_end_to_end_run_loads_as_image_model(tiny_shapenet, tmp_path, pose):

    split = _tiny_split(tiny_shapenet, tmp_path / "split.json")
    cfg = {"data_root": str(tiny_shapenet.root), "train_split": split, "val_split": split, "epochs": 2,
           "batch_size": 2, "max_train_items": 2, "max_val_items": 2, "image_cache": False, "num_workers": 0, "progress": False,
           "run_dir": str(tmp_path / "run"), "n_views": 2, "silhouette_size": 16, "depth_bins": 16,
           "pose": pose, "n_pose_candidates": 2, "pose_image_size": 16, "weight_chamfer": 0.5}
    if pose == "known":  # 1 epoch, then resume continues the same run folder for a 2nd
        run_dir = sil.train_silhouette({**cfg, "epochs": 1})
        sil.train_silhouette({**cfg, "resume": True})
    else:
        run_dir = sil.train_silhouette(cfg)
        hist = read_history(run_dir)
        assert hist[0]["train_sigma"] > hist[1]["train_sigma"]  # annealed
    hist = read_history(run_dir)
    assert [r["epoch"] for r in hist] == [1, 2]
    assert all(np.isfinite(r["train_loss"]) and r["train_chamfer_loss"] > 0 for r in hist)
    assert (hist[-1].get("val_azimuth_err_deg") is not None) == (pose == "unknown")
    assert 0 <= hist[-1]["val_iou"] <= 1
    for f in ("config.json", "loss_curve.png", "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (run_dir / f).is_file()
    model, config = load_model(run_dir)
    assert isinstance(model, ImageToPointCloud) and config["kind"] == "image" and config["train_kind"] == "silhouette"
    assert (model.pose_net is not None) == (pose == "unknown")
    with torch.no_grad():
        assert model(torch.rand(2, 3, 128, 128) * 255).shape == (2, 2048, 3)


def test_mask_distance_field_and_loss_against_brute_force():
    g = torch.Generator().manual_seed(0)
    masks = (torch.rand(2, 8, 8, generator=g) > 0.85).float()
    masks[1] = 0.0
    masks[1, 2, 5] = 1.0
    field = mask_distance_field(masks)
    for v in range(2):
        on = torch.nonzero(masks[v] > 0.5).float()
        for i in range(8):
            for j in range(8):
                ref = (on - torch.tensor([i, j], dtype=torch.float32)).norm(dim=1).min() / 8
                assert abs(float(field[v, i, j]) - float(ref)) < 1e-6
    assert float(mask_distance_field(torch.zeros(1, 4, 4)).abs().sum()) == 0.0  # empty mask: no signal
    # a point projecting to the centre of the crop samples the field at the centre (bilinear)

    pts = torch.zeros(1, 1, 3, requires_grad=True)
    cams = [torch.tensor([[30.0]]), torch.tensor([[25.0]]), torch.tensor([[0.8]]), torch.tensor([[25.0]])]
    uv, _ = camera.project_points(pts.detach(), *[c[0] for c in cams], crop_offset=camera.CROP_OFFSET)
    assert torch.allclose(uv, torch.full((1, 1, 2), 64.5), atol=1e-4)  # optical axis: 137/2 − 4 crop px
    loss = mask_distance_loss(pts, field[1:2].unsqueeze(1), *cams)
    x = y = 64.5 * 8 / 128 - 0.5  # continuous pixel-centre coordinates on the 8×8 field
    i0, f = int(x), x - int(x)
    F_ = field[1]
    ref = ((1 - f) * (1 - f) * F_[i0, i0] + f * (1 - f) * (F_[i0, i0 + 1] + F_[i0 + 1, i0])
           + f * f * F_[i0 + 1, i0 + 1])
    assert float(loss) == pytest.approx(float(ref), abs=1e-6)
    loss.backward()
    assert pts.grad.abs().sum() > 0


def test_mask_coverage_loss_against_brute_force():

    g = torch.Generator().manual_seed(1)
    pts = ((torch.rand(1, 7, 3, generator=g) - 0.5) * 0.5).requires_grad_(True)
    masks = torch.zeros(1, 2, 8, 8)
    masks[0, 0, 2:5, 3:7] = 1.0
    masks[0, 1, 6, 1] = 0.9
    az, el = torch.tensor([[30.0, 140.0]]), torch.tensor([[25.0, 28.0]])
    dr, fov = torch.tensor([[0.8, 0.7]]), torch.tensor([[25.0, 25.0]])
    loss = mask_coverage_loss(pts, masks, az, el, dr, fov)
    per_view = []
    for v in range(2):
        uv, _ = camera.project_points(pts.detach()[0], az[0, v], el[0, v], dr[0, v], fov[0, v],
                                      crop_offset=camera.CROP_OFFSET)
        ds = []
        for i in range(8):
            for j in range(8):
                if masks[0, v, i, j] > 0.5:
                    centre = torch.tensor([(j + 0.5) * 16, (i + 0.5) * 16])
                    ds.append(float((uv - centre).norm(dim=1).min()) / 128)
        per_view.append(sum(ds) / len(ds))
    assert float(loss) == pytest.approx(sum(per_view) / 2, rel=1e-5)
    loss.backward()
    assert pts.grad.abs().sum() > 0
    # the gradient equals autograd through a brute-force min over all points
    ref_pts = pts.detach().clone().requires_grad_(True)
    total = 0.0
    for v in range(2):
        uv, _ = camera.project_points(ref_pts[0], az[0, v], el[0, v], dr[0, v], fov[0, v],
                                      crop_offset=camera.CROP_OFFSET)
        ds = [(uv - torch.tensor([(j + 0.5) * 16, (i + 0.5) * 16])).norm(dim=1).min() / 128
              for i in range(8) for j in range(8) if masks[0, v, i, j] > 0.5]
        total = total + torch.stack(ds).mean() / 2
    total.backward()
    torch.testing.assert_close(pts.grad, ref_pts.grad, rtol=1e-4, atol=1e-7)


def test_mask_coverage_loss_batched_views_with_different_mask_sizes():
    """Views with many, few and no foreground pixels in one batch: each view's mean uses only its own
    pixels (padding never counts) and an empty view contributes 0."""
    g = torch.Generator().manual_seed(2)
    pts = ((torch.rand(2, 50, 3, generator=g) - 0.5) * 0.6)
    masks = torch.zeros(2, 3, 16, 16)
    masks[0, 0, 3:13, 2:14] = 1.0
    masks[0, 1, 8, 8] = 1.0
    masks[1, 0, 0:16, 0:3] = 1.0
    masks[1, 2, 5:7, 5:9] = 1.0  # masks[0, 2] and masks[1, 1] stay empty
    az = torch.tensor([[10.0, 100.0, 200.0], [300.0, 45.0, 170.0]])
    el = torch.full((2, 3), 25.0)
    dr, fov = torch.full((2, 3), 0.8), torch.full((2, 3), 25.0)
    both = mask_coverage_loss(pts, masks, az, el, dr, fov)
    singles = [mask_coverage_loss(pts[b:b + 1], masks[b:b + 1, v:v + 1], az[b:b + 1, v:v + 1], el[b:b + 1, v:v + 1],
                                      dr[b:b + 1, v:v + 1], fov[b:b + 1, v:v + 1]) for b in range(2) for v in range(3)]
    assert float(singles[2]) == 0.0 and float(singles[4]) == 0.0
    assert float(both) == pytest.approx(float(torch.stack(singles).mean()), rel=1e-5)
