"""convmesh reconstruction checkpoints import as meshrecon runs: a checkpoint in the original layout
(with and without ``epoch``, with and without pose offsets) loads into a run whose network gives
exactly the outputs of the module it was saved from; a pickle that would run code is refused unrun."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from lmnet import registry
from lmnet.cli import main
from lmnet.errors import ConfigError, CorruptFileError
from lmnet.methods.meshgan import model_config as meshgan_model_config
from lmnet.methods.meshrecon import DatasetParams, ReconstructionNetwork
from lmnet.weights.convmesh import import_convmesh, read_reconstruction


def _original(tmp_path, *, texture=64, size=64, symmetric=True, deltas=True, z0=False, epoch=True, dataset="cub"):
    torch.manual_seed(0)
    gen = ReconstructionNetwork(symmetric=symmetric, texture_res=texture, image_size=size)
    for m in gen.modules():   # non-trivial BN statistics and a non-zero mesh head
        if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    torch.nn.init.normal_(gen.conv_mesh.weight, std=0.01)
    params = DatasetParams(7, deltas, z0)
    for p in params.parameters():
        torch.nn.init.normal_(p, std=0.05)
    chk = {"generator": gen.state_dict(), "dataset_params": params.state_dict() if deltas or z0 else None,
           "optimizer": torch.optim.Adam(gen.parameters()).state_dict(),
           "args": {"dataset": dataset, "texture_resolution": texture, "symmetric": symmetric, "lr": 1e-4,
                    "name": "pretrained_reconstruction_cub", "optimize_deltas": deltas, "optimize_z0": z0}}
    if epoch:
        chk.update(epoch=1000, iteration=120000)
    path = tmp_path / "checkpoint_latest.pth"
    torch.save(chk, path)
    return path, gen.eval()


@pytest.mark.parametrize("kw", [{}, {"epoch": False, "deltas": False}, {"symmetric": False, "texture": 128},
                                {"dataset": "p3d", "z0": True}])
def test_an_original_checkpoint_imports_with_identical_outputs(tmp_path, kw):
    path, gen = _original(tmp_path, **kw)
    import_convmesh(path, tmp_path / "run")
    model, config = registry.load_model(tmp_path / "run")
    assert config["kind"] == "meshrecon" and config["source"]["format"] == "convmesh-reconstruction"
    x = torch.randn(2, 4, 64, 64)
    with torch.no_grad():
        want = gen(x)
        got = model.generator(x)
    assert all(torch.equal(a, b) for a, b in zip(want, got))
    assert model.rings == (31 if kw.get("dataset") == "p3d" else 16)
    assert model.dataset_params.has_z0 == bool(kw.get("z0"))


def test_the_cli_imports_and_refuses_a_second_time(tmp_path, capsys):
    path, _ = _original(tmp_path)
    argv = ["import-weights", "convmesh", "--checkpoint", str(path), "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    assert main(argv) == 2 and "already holds a run" in capsys.readouterr().err
    assert main(argv + ["--force"]) == 0


class _Boom:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ.get('LMNET_TEST_MARKER', '/nonexistent/x')}",))


def test_a_code_executing_pickle_is_refused_unrun(tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    monkeypatch.setenv("LMNET_TEST_MARKER", str(marker))
    path = tmp_path / "evil.pth"
    torch.save({"generator": {}, "payload": _Boom()}, path, pickle_module=pickle)
    with pytest.raises(CorruptFileError, match="refused"):
        import_convmesh(path, tmp_path / "run")
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_wrong_checkpoints_get_one_clear_error(tmp_path):
    path, _ = _original(tmp_path)
    chk = torch.load(path, weights_only=True)
    bad = tmp_path / "gan.pth"
    torch.save({"generator": chk["generator"], "generator_running_avg": {}, "discriminator": {}}, bad)
    with pytest.raises(ConfigError, match="GAN checkpoint"):
        read_reconstruction(bad)
    del chk["args"]
    torch.save(chk, bad)
    with pytest.raises(ConfigError, match="--dataset"):
        read_reconstruction(bad)
    assert read_reconstruction(bad, "cub")[0]["rings"] == 16
    chk["generator"]["fc1e.weight"] = torch.zeros(256, 100)
    torch.save(chk, bad)
    with pytest.raises(CorruptFileError, match="fc1e"):
        read_reconstruction(bad, "cub")
    chk["generator"]["fc1e.weight"] = torch.full((256, 64 * 4), float("nan"))
    torch.save(chk, bad)
    with pytest.raises(CorruptFileError, match="NaN"):
        read_reconstruction(bad, "cub")


def _original_gan(tmp_path, *, stripped=False, conditional="class", dataset="cub"):
    torch.manual_seed(1)
    classes = [5, 3] if conditional == "class_color" else [5]
    cfg = registry.resolve_train_config("meshgan", {"preset": "cpu", "dataset": dataset, "conditional": conditional})
    model = registry.build_model(meshgan_model_config(cfg, classes))
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
    with torch.no_grad():
        for p in model.generator_running_avg.parameters():
            p.add_(0.01 * torch.randn_like(p))
    chk = {"generator_running_avg": model.generator_running_avg.state_dict(),
           "args": {"dataset": dataset, "texture_resolution": 64}}
    if not stripped:
        chk.update(generator=model.generator.state_dict(), discriminator=model.discriminator.state_dict(), epoch=600,
                   iteration=1, g_curve=[1.0, 0.5])
    path = tmp_path / "checkpoint_latest.pth"
    torch.save(chk, path)
    return path, model


@pytest.mark.parametrize("kw", [{}, {"stripped": True}, {"conditional": "none"},
                                {"dataset": "p3d", "conditional": "class_color"}])
def test_an_original_gan_checkpoint_imports_and_samples_the_same(tmp_path, kw):
    path, original = _original_gan(tmp_path, **kw)
    written = import_convmesh(path, tmp_path / "run")
    assert list(written) == ["meshgan"]
    model, config = registry.load_model(tmp_path / "run")
    assert config["kind"] == "meshgan" and config["source"]["format"] == "convmesh-gan"
    assert ("freshly initialised" in config["source"]["conversion"]) == bool(kw.get("stripped"))
    n = 3
    classes = None if kw.get("conditional") == "none" else torch.zeros(n, 2 if kw.get("conditional") == "class_color"
                                                                      else 1, dtype=torch.long)
    want = original.sample(n, classes, 0.5, torch.Generator().manual_seed(0))
    got = model.sample(n, classes, 0.5, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(want, got))
