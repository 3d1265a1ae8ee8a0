"""Mesh estimation (lmnet.methods.meshrecon): the network has convmesh's layers and sizes, the pose
offsets follow the mirrored-index convention, and a run trains, validates and resumes bit for bit
on a CUB stand-in tree."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import cmr_standin
from lmnet import registry
from lmnet.cli import main
from lmnet.errors import ConfigError
from lmnet.methods.meshrecon import DatasetParams, ReconstructionNetwork, mean_iou
from lmnet.runs import load_checkpoint
from lmnet.uvmesh import uv_sphere_template

# (key, shape) of convmesh's generator state dict at texture 128, input 256 (a sample of its 200+ keys)
ORIGINAL_KEYS = {
    "conv1e.weight": (64, 4, 5, 5), "bn1e.running_mean": (64,), "conv5e.weight": (64, 512, 3, 3),
    "fc1e.weight": (256, 4096), "bnfc1e.weight": (256,), "fc3e.weight": (1024, 256), "bnfc3e.bias": (1024,),
    "fc1_tex.weight": (2048, 1024), "fc1_tex.bias": (2048,), "blk1.conv1.weight": (256, 256, 3, 3),
    "blk1.conv2.weight": (512, 256, 3, 3), "blk1.shortcut.weight": (512, 256, 1, 1), "blk1.bn2.running_var": (512,),
    "blk3b_tex.conv1.weight": (256, 256, 3, 3), "blk4_tex.shortcut.weight": (128, 256, 1, 1),
    "blk5_tex.conv2.weight": (64, 128, 3, 3), "conv_tex.weight": (3, 64, 5, 5), "conv_tex.bias": (3,),
    "blk4_mesh.conv2.weight": (64, 256, 3, 3), "conv_mesh.weight": (3, 64, 5, 5), "conv_mesh.bias": (3,),
}


def test_network_has_the_original_layers_sizes_and_parameter_count():
    net = ReconstructionNetwork(symmetric=True, texture_res=128, image_size=256)
    state = net.state_dict()
    for key, shape in ORIGINAL_KEYS.items():
        assert tuple(state[key].shape) == shape, key
    assert "blk3c_tex.conv1.weight" not in state and "blk2.shortcut.weight" in state
    assert "blk3.shortcut.weight" not in state   # 256 → 256: identity shortcut, no weights
    assert round(sum(p.numel() for p in net.parameters()) / 1e6, 2) == 15.11   # convmesh prints 15.11M


def test_first_prediction_is_the_template_and_outputs_are_symmetric():
    torch.manual_seed(0)
    net = ReconstructionNetwork(symmetric=True, texture_res=64, image_size=64).eval()
    tex, disp = net(torch.randn(2, 4, 64, 64))
    assert tex.shape == (2, 3, 64, 64) and disp.shape == (2, 3, 32, 32)
    assert torch.count_nonzero(disp) == 0              # zero-initialised mesh head
    assert tex.abs().max() <= 1
    # mirror-symmetric about u = 1/4 (column c ↔ N-1-c of the full map, N = half width)
    assert torch.equal(tex[..., :32], tex[..., :32].flip(-1))
    with pytest.raises(ValueError, match="input must be"):
        net(torch.randn(2, 3, 64, 64))


def test_pose_offsets_share_a_row_between_an_image_and_its_mirror():
    dp = DatasetParams(3, optimize_deltas=True, optimize_z0=True)
    with torch.no_grad():
        dp.ds_translation.copy_(torch.tensor([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]))
        dp.ds_scale.copy_(torch.tensor([[1.0], [2.0], [3.0]]))
    t, s = dp.deltas(torch.tensor([1, 4]))
    assert torch.allclose(t, torch.tensor([[0.3, 0.4, 0.0], [-0.3, 0.4, 0.0]]))
    assert torch.equal(s, torch.tensor([[2.0], [2.0]]))
    t, s = dp.deltas(None)
    assert torch.allclose(t, torch.tensor([[0.3, 0.4, 0.0]])) and torch.allclose(s, torch.tensor([[2.0]]))
    assert torch.allclose(dp.z0(torch.tensor([0])), 1 + torch.exp(torch.tensor([[1.0]])))


def test_mean_iou_is_per_image():
    a = torch.zeros(2, 1, 4, 4)
    m = torch.zeros(2, 1, 4, 4)
    a[0, 0, :2] = 1
    m[0, 0, :1] = 1
    assert torch.allclose(mean_iou(a, m), torch.tensor([0.5, 1.0]))


def test_config_presets_and_checks():
    cfg = registry.resolve_train_config("meshrecon", {"preset": "cpu", "dataset": "p3d"})
    assert (cfg["image_size"], cfg["texture_resolution"], cfg["render_size"]) == (64, 64, 64)
    assert cfg["optimize_z0"] is True and cfg["val_split"] == "val"
    faithful = registry.resolve_train_config("meshrecon", {})
    assert (faithful["image_size"], faithful["texture_resolution"], faithful["batch_size"], faithful["epochs"]) == \
        (256, 128, 50, 1000)
    assert faithful["optimize_z0"] is False and faithful["val_split"] == "testval"
    assert registry.resolve_train_config("meshrecon", {"preset": "cpu", "image_size": 96})["image_size"] == 96
    for bad, match in (({"image_size": 100}, "image_size"), ({"texture_resolution": 32}, "texture_resolution"),
                       ({"preset": "gpu"}, "preset"), ({"n_points": 2048}, "unknown key 'n_points'"),
                       ({"optimize_z0": 1}, "optimize_z0"), ({"best_metric": "val_iou"}, "higher-is-better")):
        with pytest.raises(ConfigError, match=match):
            registry.resolve_train_config("meshrecon", bad)


@pytest.fixture(scope="module")
def cub_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("cub")
    cmr_standin.write_cub(root, n_train=6, n_testval=3)
    return root


def _config(root, run_dir, **kw):
    return {"preset": "cpu", "data_root": str(root), "batch_size": 3, "epochs": 2, "run_dir": str(run_dir),
            "progress": False, "amp": False, **kw}


@pytest.fixture
def one_thread():
    """Bit-exact comparisons on one thread: multi-threaded CPU convolutions may split their
    reductions differently from run to run on a loaded machine (last-bit differences)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_run_trains_validates_and_resumes_bit_for_bit(cub_tree, tmp_path, one_thread):
    full = registry.train("meshrecon", _config(cub_tree, tmp_path / "full", epochs=3))
    registry.train("meshrecon", _config(cub_tree, tmp_path / "part", epochs=2))
    resumed = registry.train("meshrecon", _config(cub_tree, tmp_path / "part", epochs=3, resume=True))
    a, b = load_checkpoint(full / "checkpoints" / "last.pt"), load_checkpoint(resumed / "checkpoints" / "last.pt")
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert a["history"][-1]["train_loss"] == b["history"][-1]["train_loss"]
    row = a["history"][-1]
    assert 0 <= row["val_iou"] <= 1 and np.isfinite(row["val_recon_loss"])
    assert a["model_config"]["num_images"] == 6 and a["model_config"]["rings"] == 16
    assert "generator.conv1e.weight" in a["model"] and "dataset_params.ds_translation" in a["model"]
    config = json.loads((full / "config.json").read_text())
    assert config["kind"] == "meshrecon" and config["image_size"] == 64
    model, cfg = registry.load_model(full, "last")
    x = torch.zeros(1, 4, 64, 64)
    tex, disp, vertices = model.predict(x)
    assert vertices.shape == (1, uv_sphere_template(16).num_vertices, 3)


def test_the_pose_offsets_learn_and_the_network_lr_halves(cub_tree, tmp_path):
    run = registry.train("meshrecon", _config(cub_tree, tmp_path / "r", epochs=3, lr_decay_every=2))
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert [row["lr"] for row in ckpt["history"]] == [1e-4, 1e-4, 5e-5]
    assert ckpt["model"]["dataset_params.ds_translation"].abs().sum() > 0


def test_cli_prints_the_config(capsys):
    assert main(["train", "meshrecon", "--set", "preset=cpu", "--print-config"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["image_size"] == 64 and out["dataset"] == "cub"
