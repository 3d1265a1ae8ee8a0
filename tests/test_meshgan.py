"""The textured-mesh GAN (lmnet.methods.meshgan): convmesh's layer names and sizes, symmetric outputs,
the masked hinge losses, UV mirroring, truncated noise, the pseudo-GT dataset, and a run that
trains, saves and resumes bit for bit on a pseudo-GT cache written beside a CUB stand-in tree, its FID in
training (best.pt by FID), and two torchrun processes on gloo."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import cmr_standin
from lmnet import registry
from lmnet.data import cmr_cache
from lmnet.data.cub import read_classes
from lmnet.errors import ConfigError, DataError
from lmnet.eval.textured_fid import textured_fid
from lmnet.methods.meshgan import Generator, MultiScaleDiscriminator, PseudoGTDataset, mirror_uv, truncated_noise
from lmnet.methods.meshgan.losses import discriminator_weights, hinge_d_loss, hinge_g_loss
from lmnet.methods.meshgan.model import ema_alpha, update_ema
from lmnet.runs import load_checkpoint
from lmnet.uvmesh import uv_sphere_template

# (key, shape) of convmesh's CUB class-conditional generator at 512 (a sample of its state dict)
GENERATOR_KEYS = {
    "emb_class.weight": (200, 64), "fc.weight": (16384, 128), "fc.bias": (16384,),
    "blk1.conv1.weight_orig": (512, 512, 3, 3), "blk1.conv1.weight_u": (512,), "blk1.conv1.weight_v": (4608,),
    "blk1.norm1.norm.running_mean": (512,), "blk1.norm1.norm.num_batches_tracked": (),
    "blk1.norm1.fc_gamma.weight": (512, 128), "blk1.norm2.fc_beta.bias": (512,),
    "blk2.shortcut.weight_orig": (256, 512, 1, 1), "blk3a.conv2.weight_orig": (256, 256, 3, 3),
    "blk3b.norm1.fc_gamma.weight": (256, 128), "blk4.conv1.weight_orig": (128, 256, 3, 3),
    "blk6.conv1.weight_orig": (64, 128, 3, 3), "conv_final.weight": (3, 64, 5, 5),
    "blk3_mesh.shortcut.weight_orig": (64, 256, 1, 1), "conv_mesh.weight": (3, 64, 5, 5), "conv_mesh.bias": (3,),
}
# (key, shape) of its three-scale discriminator
DISCRIMINATOR_KEYS = {
    "d1.conv1.weight_orig": (64, 8, 4, 4), "d1.conv5.weight_orig": (1, 512, 5, 5), "d1.projector.weight": (200, 512),
    "d2.conv1.weight_orig": (64, 11, 5, 5), "d2.conv4.bias": (1,), "d2.projector.weight": (200, 256),
    "d3.conv1.weight_orig": (64, 8, 5, 5), "d3.conv4.weight_v": (4096,),
}


def test_networks_have_the_original_keys_sizes_and_parameter_counts():
    gen = Generator(512, "class", (200,))
    state = gen.state_dict()
    for key, shape in GENERATOR_KEYS.items():
        assert tuple(state[key].shape) == shape, key
    assert "blk1.shortcut.weight_orig" not in state and "blk1.conv1.weight" not in state   # identity; spectral norm
    disc = MultiScaleDiscriminator(512, "class", (200,), num_discriminators=3).state_dict()
    for key, shape in DISCRIMINATOR_KEYS.items():
        assert tuple(disc[key].shape) == shape, key
    # the original's parameter counts: generator 13.06 M at 512 and 10.44 M at 128, discriminators
    # 6.49 M (three scales at 512) and 3.61 M (two at 128)
    count = lambda m: round(sum(p.numel() for p in m.parameters()) / 1e6, 2)  # noqa: E731
    assert count(gen) == 13.06 and count(Generator(128, "class", (200,))) == 10.44
    assert count(MultiScaleDiscriminator(512, "class", (200,), 3)) == 6.49
    assert count(MultiScaleDiscriminator(128, "class", (200,), 2)) == 3.61
    colour = Generator(128, "class_color", (11, 11), width=0.25).state_dict()
    assert colour["emb_class.weight"].shape == (11, 32) and colour["emb_color.weight"].shape == (11, 32)
    assert colour["blk1.conv1.weight_orig"].shape == (128, 128, 3, 3)   # width scales channels, not names


@pytest.mark.parametrize("resolution", [64, 128])
def test_generator_outputs_are_mirror_symmetric_and_start_at_the_sphere(resolution):
    torch.manual_seed(0)
    gen = Generator(resolution, "class", (5,), width=0.125)
    tex, disp = gen(torch.randn(3, 64), torch.tensor([[0], [4], [2]]))
    assert tex.shape == (3, 3, resolution, resolution) and disp.shape == (3, 3, 32, 32)
    assert tex.abs().max() <= 1
    half = resolution // 2   # the full map is symmetric about u = 1/4 and u = 3/4
    assert torch.equal(tex[..., :half], tex[..., :half].flip(-1))
    assert torch.equal(tex[..., half:], tex[..., half:].flip(-1))
    assert torch.count_nonzero(disp) == 0   # zero-initialised mesh head: the template itself
    template = uv_sphere_template(16)
    assert torch.equal(template.vertex_positions(disp, True)[0], template.tensor("vertices"))
    scores, masks = MultiScaleDiscriminator(resolution, "class", (5,), 2, width=0.125)(
        torch.cat((tex, torch.ones(3, 1, resolution, resolution)), 1), disp, torch.tensor([[0], [1], [2]]))
    side = resolution // 8   # d1: /8 (no stride-2 first layer below 512); d2: the 32² maps /4
    assert [s.shape for s in scores] == [m.shape for m in masks] == [(3, 1, side, side), (3, 1, 8, 8)]
    with pytest.raises(ValueError, match="needs class ids"):
        gen(torch.randn(1, 64))


def test_masked_hinge_losses_by_hand():
    d = torch.tensor([[[[2.0, -0.5]]], [[[0.0, -3.0]]]])          # (2, 1, 1, 2)
    m = torch.tensor([[[[1.0, 0.0]]], [[[0.5, 0.5]]]])
    # real: min(D - 1, 0) = [[0, -1.5], [-1, -4]] → per sample 0 and (-0.5 - 2)/1 = -2.5 → mean -1.25
    assert torch.isclose(hinge_d_loss([d], [m], real=True), torch.tensor(1.25))
    # fake: min(-D - 1, 0) = [[-3, 0], [-1, 0]] → per sample -3 and -0.5 → mean -1.75
    assert torch.isclose(hinge_d_loss([d], [m], real=False), torch.tensor(1.75))
    # generator: -mean_b(Σ D m / Σ m) = -(2 + (-1.5)) / 2
    assert torch.isclose(hinge_g_loss([d], [m]), torch.tensor(-0.25))
    # two discriminators weighted [2, 1]: (2·(-0.25) + 1·0) / 3 with the second scoring 0
    zero = torch.zeros(2, 1, 1, 1)
    assert torch.isclose(hinge_g_loss([d, zero], [m, torch.ones_like(zero)], [2.0, 1.0]), torch.tensor(-0.5 / 3))
    assert torch.isclose(hinge_g_loss([d, zero], [m, torch.ones_like(zero)]), torch.tensor(-0.125))
    assert discriminator_weights(2, 512) == [2.0, 1.0]
    assert discriminator_weights(3, 512) is None and discriminator_weights(2, 128) is None


def test_uv_mirroring_is_the_originals_and_an_involution():
    maps = torch.arange(2 * 3 * 8, dtype=torch.float32).reshape(2, 3, 8)

    def original(tr):   # the original's mirror_tex on a (C, H, W) map
        tr = torch.flip(tr, dims=(2,))
        tr = torch.cat((tr, tr), dim=2)
        return tr[:, :, tr.shape[2] // 4:-tr.shape[2] // 4]

    assert torch.equal(mirror_uv(maps), original(maps))
    assert torch.equal(mirror_uv(mirror_uv(maps)), maps)
    # a map of a symmetric model is its own mirror image
    sym = Generator(64, "none", (), width=0.125)(torch.randn(1, 64))[0]
    assert torch.equal(mirror_uv(sym), sym)


def test_truncated_noise_stays_inside_sigma():
    g = torch.Generator().manual_seed(3)
    for sigma in (0.05, 0.25, 1.0):
        z = truncated_noise(500, sigma, g)
        assert z.shape == (500, 64) and z.abs().max() <= sigma
    with pytest.raises(ValueError, match="sigma"):
        truncated_noise(1, 0.0)


def test_ema_schedule_and_update():
    assert ema_alpha(0, 0.999) == math.pow(0.999, 100) and ema_alpha(10, 0.999) == math.pow(0.999, 10)
    assert ema_alpha(100, 0.999) == 0.999
    avg, cur = torch.nn.BatchNorm1d(2), torch.nn.BatchNorm1d(2)
    with torch.no_grad():
        cur.weight.fill_(3.0)
    cur.num_batches_tracked.fill_(7)
    update_ema(avg, cur, 0.75)
    assert torch.allclose(avg.weight, torch.full((2,), 0.75 + 0.25 * 3.0)) and int(avg.num_batches_tracked) == 7


@pytest.mark.parametrize("bad, key", [({"texture_resolution": 32}, "texture_resolution"),
                                      ({"conditional": "class_color"}, "conditional"),
                                      ({"width": 0}, "width"), ({"d_steps": 0}, "d_steps"), ({"ema": 1.0}, "ema"),
                                      ({"truncation": -1.0}, "truncation"), ({"lr_d": 0}, "lr_d"),
                                      ({"dataset": "shapenet"}, "dataset"), ({"n_points": 2048}, "n_points")])
def test_bad_config_names_the_key(bad, key):
    with pytest.raises(ConfigError, match=key):
        registry.resolve_train_config("meshgan", bad)


def test_config_presets_and_defaults():
    faithful = registry.resolve_train_config("meshgan", {})
    assert (faithful["texture_resolution"], faithful["batch_size"], faithful["epochs"]) == (512, 32, 600)
    assert (faithful["lr"], faithful["lr_d"], faithful["beta1"], faithful["beta2"]) == (1e-4, 4e-4, 0.0, 0.9)
    assert faithful["truncation"] == 0.25 and faithful["d_steps"] == 2 and faithful["ema"] == 0.999
    cpu = registry.resolve_train_config("meshgan", {"preset": "cpu", "dataset": "p3d", "conditional": "class_color"})
    assert (cpu["texture_resolution"], cpu["width"]) == (64, 0.125) and cpu["truncation"] == 0.5


def _write_cache(cache, paths, resolution, seed=0):
    rng = np.random.default_rng(seed)
    n = len(paths)
    cmr_cache.write_poses_metadata(cache / cmr_cache.POSES_FILE, np.ones((n, 1)), np.zeros((n, 2)),
                                   np.tile([1.0, 0, 0, 0], (n, 1)), paths)
    for i in range(n):
        alpha = (rng.random((1, resolution, resolution)) > 0.3).astype(np.float32)
        cmr_cache.write_pseudogt(cmr_cache.pseudogt_path(cache, resolution, i),
                                 mesh=rng.normal(size=(3, 32, 32)) * 0.05,
                                 texture=np.clip(rng.normal(size=(3, resolution, resolution)), -1, 1) * alpha,
                                 texture_alpha=alpha, image=np.zeros((3, 8, 8)))


@pytest.fixture(scope="module")
def cub_cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("cub")
    cmr_standin.write_cub(root, n_train=6, n_testval=1)
    paths = [f"{i % 2 + 1:03d}.Bird_{i % 2}/bird_{i}.jpg" for i in range(6)]   # the stand-in's train images
    _write_cache(root / "cache", paths, 64)
    return root


def test_dataset_items_labels_and_mirroring(cub_cache):
    ds = PseudoGTDataset(cub_cache / "cache", cub_cache, "cub", 64, "class", mirror=True, seed=0)
    plain = PseudoGTDataset(cub_cache / "cache", cub_cache, "cub", 64, "class", mirror=False)
    classes = read_classes(cub_cache)
    paths = cmr_cache.read_poses_metadata(cub_cache / "cache" / cmr_cache.POSES_FILE)["path"]
    assert len(ds) == 6 and ds.num_classes == (200,)
    flips = []
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        flips.append(ds.flips.copy())
        for i in range(len(ds)):
            item, ref = ds[i], plain[i]
            assert item["texture"].shape == (3, 64, 64) and item["mesh"].shape == (3, 32, 32)
            assert item["class_id"].tolist() == [classes[paths[i]]] and item["index"] == i
            want = mirror_uv(ref["texture"]) if ds.flips[i] else ref["texture"]
            assert torch.equal(item["texture"], want)
    both = np.concatenate(flips)
    assert both.any() and not both.all() and not np.array_equal(*flips)   # a fresh draw per epoch
    with pytest.raises(DataError, match="pseudogt_128x128"):
        PseudoGTDataset(cub_cache / "cache", cub_cache, "cub", 128)


def test_p3d_keeps_imagenet_images_with_shape_and_colour(tmp_path):
    cmr_standin.write_p3d(tmp_path, n_train=3)
    paths = ["car_imagenet/n02814533_0.JPEG", "car_pascal/2008_000001.jpg", "car_imagenet/n02814533_1.JPEG"]
    _write_cache(tmp_path / "cache", paths, 64)
    ds = PseudoGTDataset(tmp_path / "cache", tmp_path, "p3d", 64, "class_color")
    assert len(ds) == 2 and ds.image_indices == [0, 2] and ds.num_classes == (2, 2)
    assert [ds[i]["class_id"].tolist() for i in range(2)] == [[0, 1], [1, 0]]   # (sedan, red), (suv, blue)


def _config(root, run_dir, **kw):
    return {"preset": "cpu", "data_root": str(root), "cache_dir": str(root / "cache"), "batch_size": 2,
            "d_steps": 1, "epochs": 2, "run_dir": str(run_dir), "progress": False, "amp": False, **kw}


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_run_trains_saves_and_resumes_bit_for_bit(cub_cache, tmp_path, one_thread):
    # 3 steps an epoch with d_steps 1: epoch 1 is G D G, epoch 2 D G D (the step count survives a resume);
    # the FID measured after every epoch (val_every 1) draws from none of the training's random streams
    full = registry.train("meshgan", _config(cub_cache, tmp_path / "full", epochs=2, val_every=1))
    registry.train("meshgan", _config(cub_cache, tmp_path / "part", epochs=1, val_every=1))
    resumed = registry.train("meshgan", _config(cub_cache, tmp_path / "part", epochs=2, resume=True, val_every=1))
    a, b = load_checkpoint(full / "checkpoints" / "last.pt"), load_checkpoint(resumed / "checkpoints" / "last.pt")
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert a["history"] == [{**row, "epoch_time_s": a["history"][i]["epoch_time_s"]}
                            for i, row in enumerate(b["history"])]
    # Adam steps: 3 of the generator (group 0) and 3 of the discriminators (group 1) in 6 batches
    opt = a["optimizer"]
    steps = [{float(opt["state"][i]["step"]) for i in g["params"] if i in opt["state"]} for g in opt["param_groups"]]
    assert steps == [{3.0}, {3.0}]
    row = a["history"][-1]
    for key in ("train_loss", "train_g", "train_flat", "train_d_fake", "train_d_real"):
        assert np.isfinite(row[key]), key
    state = a["model"]
    assert "generator_running_avg.blk1.conv1.weight_orig" in state and "discriminator.d2.projector.weight" in state
    assert not torch.equal(state["generator.fc.weight"], state["generator_running_avg.fc.weight"])
    assert not torch.equal(state["generator.conv_mesh.weight"], torch.zeros_like(state["generator.conv_mesh.weight"]))
    fids = [r["fid"] for r in a["history"]]
    assert all(np.isfinite(fids)) and fids[0] != fids[1]
    best = load_checkpoint(full / "checkpoints" / "best.pt")   # the epoch of the lowest FID
    assert best["best_metric_name"] == "fid" and best["epoch"] == 1 + int(np.argmin(fids))
    assert best["best_metric"] == min(fids)
    config = json.loads((full / "config.json").read_text())
    assert config["kind"] == "meshgan" and config["texture_resolution"] == 64
    model, _ = registry.load_model(full, "last")
    g = torch.Generator().manual_seed(0)
    tex, disp, vertices = model.sample(4, torch.tensor([[0], [1], [0], [1]]), generator=g)
    assert tex.shape == (4, 3, 64, 64) and vertices.shape == (4, uv_sphere_template(16).num_vertices, 3)
    assert a["model_config"]["num_classes"] == [200] and a["model_config"]["num_discriminators"] == 2


def test_fid_in_training_is_lmnet_eval_fids_full_row(cub_cache, tmp_path, one_thread):
    """The FID a run records for its last epoch is `lmnet eval fid --proxy --which last`'s Full row."""
    run = registry.train("meshgan", _config(cub_cache, tmp_path / "run", epochs=1))
    recorded = load_checkpoint(run / "checkpoints" / "last.pt")["history"][-1]["fid"]
    result = textured_fid(run, proxy=True, which="last", kid_subsets=2)
    assert result["rows"]["full"]["fid"] == pytest.approx(recorded, rel=1e-9)


def test_without_fid_best_is_the_latest_epoch(cub_cache, tmp_path, one_thread):
    cfg = registry.resolve_train_config("meshgan", _config(cub_cache, tmp_path / "run", fid_features="none"))
    assert cfg["best_metric"] == "train_loss"
    run = registry.train("meshgan", cfg)
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert "fid" not in last["history"][-1] and load_checkpoint(run / "checkpoints" / "best.pt")["epoch"] == 2
    with pytest.raises(ConfigError, match="fid_features"):
        registry.resolve_train_config("meshgan", {"fid_features": ""})


def test_a_missing_inception_file_is_refused_before_training(cub_cache, tmp_path):
    missing = tmp_path / "inception_v3_google.pth"
    with pytest.raises(DataError, match="inception_v3_google.pth: no such Inception-v3 weights file"):
        registry.train("meshgan", _config(cub_cache, tmp_path / "run", fid_features=str(missing)))
    assert not (tmp_path / "run" / "checkpoints").exists()


DDP_SCRIPT = """
import os, torch
from lmnet import registry
trainer = registry.get_method("meshgan").trainer(registry.resolve_train_config("meshgan", {config!r}))
trainer.fit()
torch.save(trainer.model.state_dict(), os.path.join({out!r}, f"rank{{os.environ['RANK']}}.pt"))
"""


def test_ddp_two_gloo_processes_train_one_model(cub_cache, tmp_path):
    """torchrun: each process its share of the batches and its own noise, gradients averaged by
    hand; both end with the same weights (BatchNorm statistics: rank 0's), and the run folder is
    rank 0's."""
    cfg = _config(cub_cache, tmp_path / "ddp", epochs=2, num_workers=0)
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT.format(config=cfg, out=str(tmp_path)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent.parent)}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(script)], env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0.keys() == r1.keys()
    for key in r0:
        assert torch.equal(r0[key], r1[key]), key
    saved = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "last.pt")
    for key in r0:
        assert torch.equal(saved["model"][key], r0[key]), key
    assert len(saved["rng"]) == 2 and json.loads((tmp_path / "ddp" / "config.json").read_text())["world_size"] == 2
    # 6 items, 2 processes, batch 2: 1 step per process and epoch, G in epoch 1 and D in epoch 2
    opt = saved["optimizer"]
    steps = [{float(opt["state"][i]["step"]) for i in g["params"] if i in opt["state"]} for g in opt["param_groups"]]
    assert steps == [{1.0}, {1.0}] and np.isfinite(saved["history"][-1]["fid"])
