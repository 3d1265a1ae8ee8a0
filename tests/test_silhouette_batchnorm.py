"""BatchNorm running statistics of mask-only runs: re-estimated with each epoch's final weights
(lmnet.train.batchnorm, the silhouette trainer). The running averages had lagged the weights so far
that the evaluation-mode clouds of unknown-pose runs were several times too large (issue #30)."""

import json

import pytest
import torch
from torch import nn

from conftest import batch_norm_gaps

from lmnet.methods import silhouette as sil
from lmnet.methods.silhouette.data import build_multiview_dataset
from lmnet.registry import resolve_train_config
from lmnet.runs import checkpoint_path
from lmnet.methods.silhouette import model as network
from lmnet.train.data import set_dataset_epoch
from lmnet.train.batchnorm import batch_norm_layers, recalibrate_batch_norm


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 7), nn.BatchNorm1d(7), nn.ReLU(), nn.Linear(7, 3))


def test_recalibration_gives_the_batch_statistics_of_the_current_weights():
    net = _net()
    g = torch.Generator().manual_seed(1)
    batches = [torch.randn(8, 5, generator=g) * 2 + 1 for _ in range(3)]
    net.train()
    with torch.no_grad():
        for x in batches * 5:           # running averages under the first weights
            net(x)
        net[0].weight.mul_(6.0)         # the weights move: those averages are now stale
        net[0].bias.add_(3.0)
    bn = net[1]
    pre = [net[0](x).detach() for x in batches]
    want_mean = torch.stack([p.mean(0) for p in pre]).mean(0)
    want_var = torch.stack([p.var(0, unbiased=True) for p in pre]).mean(0)
    assert (bn.running_mean - want_mean).abs().max() > 1.0   # stale: the failure this guards against
    net.eval()
    used = recalibrate_batch_norm(net, iter(batches * 2), lambda x: net(x), max_batches=3)
    assert used == 3 and not net.training and bn.momentum == 0.1
    torch.testing.assert_close(bn.running_mean, want_mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(bn.running_var, want_var, rtol=1e-5, atol=1e-5)
    # evaluation mode now matches training mode on a large batch of the same distribution
    big = torch.cat(batches)
    with torch.no_grad():
        out_eval = net(big)
        net.train()
        out_train = net(big)
    assert (out_eval - out_train).abs().max() < 0.1 * out_train.abs().max()


def test_recalibration_with_no_batches_leaves_the_statistics():
    net = _net()
    net.train()
    with torch.no_grad():
        net(torch.randn(8, 5))
    bn = net[1]
    before = (bn.running_mean.clone(), bn.running_var.clone(), int(bn.num_batches_tracked))
    assert recalibrate_batch_norm(net, [], lambda x: net(x), max_batches=4) == 0
    assert recalibrate_batch_norm(net, [torch.randn(8, 5)], lambda x: net(x), max_batches=0) == 0
    assert torch.equal(bn.running_mean, before[0]) and torch.equal(bn.running_var, before[1])
    assert int(bn.num_batches_tracked) == before[2] and bn.momentum == 0.1 and net.training
    assert batch_norm_layers(net) == [bn]


def _split(tiny, path):
    path.write_text(json.dumps({s: [f"{s}/{m}" for m in tiny.models[s]] for s in tiny.synsets}))
    return str(path)


@pytest.mark.parametrize("recalibrate", [True, False])
def test_unknown_pose_checkpoint_batch_norm_matches_its_final_weights(tiny_shapenet, tmp_path, recalibrate):
    """One step at a large lr moves the weights far; the checkpoint's running statistics must be
    those of the final weights (the one training batch: 4 items, 1 step), not the lagging average."""
    split = _split(tiny_shapenet, tmp_path / "split.json")
    cfg = {"data_root": str(tiny_shapenet.root), "train_split": split, "val_split": split, "epochs": 1,
           "batch_size": 4, "max_train_items": 4, "max_val_items": 2, "image_cache": False, "num_workers": 0,
           "progress": False, "amp": False, "lr": 0.05, "run_dir": str(tmp_path / "run"), "n_views": 2,
           "silhouette_size": 16, "depth_bins": 16, "pose": "unknown", "n_pose_candidates": 2,
           "pose_image_size": 16, "bn_recalibration_batches": 32 if recalibrate else 0}
    run_dir = sil.train_silhouette(cfg)
    ck = torch.load(checkpoint_path(run_dir, "last"), map_location="cpu", weights_only=False)
    model = network.build_model(ck["model_config"])
    model.load_state_dict(ck["model"])
    ds = build_multiview_dataset(resolve_train_config("silhouette", dict(cfg)), "train")
    set_dataset_epoch(ds, 0)  # the views of epoch 1, the one the run trained and recalibrated on
    assert len(ds) == 4
    batch = torch.utils.data.default_collate([ds[i] for i in range(4)])
    layers = batch_norm_layers(model)
    assert len(layers) > 10  # encoder, decoder and pose network

    def forward():
        model(batch["image"].float())
        model.pose_net(batch["sup_image"].float().flatten(0, 1))

    model.train()
    # float32, and the trainer runs the encoder channels_last: equal to ~0.3 %
    mean_gap, var_gap = batch_norm_gaps(layers, forward)
    if recalibrate:
        assert mean_gap < 1e-2 and var_gap < 1e-2, (mean_gap, var_gap)
    else:  # the lagging running averages are off by standard deviations: what made the collapse
        assert mean_gap > 1.0, mean_gap
