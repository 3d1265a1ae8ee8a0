"""Methods: a toy method added from its own folder (``tests/toy_method/``) with one registry line
trains, saves, resumes and loads like the built-in ones; and run folders written before the
one-folder-per-method layout (``tests/data/old_runs/``, made at commit 599d46e by the script beside
them) still load, to the same network outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import toy_method
import torch

from lmnet import registry, runs
from lmnet.cli import main as cli_main
from lmnet.errors import ConfigError
from lmnet.runs.config import strip_meta

OLD_RUNS = Path(__file__).parent / "data" / "old_runs"


@pytest.fixture
def toy_registered():
    registry.register(toy_method.METHOD)  # the one registry line
    yield toy_method.METHOD
    registry.unregister("toy")


def test_a_toy_method_from_its_own_folder_trains_saves_resumes_and_loads(toy_registered, tiny_shapenet, tmp_path):
    cfg = {"data_root": str(tiny_shapenet.root), "epochs": 2, "batch_size": 2, "num_workers": 0, "progress": False,
           "template_points": 64, "run_dir": str(tmp_path / "toy"), "n_points": 1024}
    run = registry.train("toy", {**cfg, "epochs": 1})
    run = registry.train("toy", {**cfg, "resume": True})  # the generic loop resumes it
    assert [int(r["epoch"]) for r in runs.read_history(run)] == [1, 2]
    saved = runs.read_run_config(run)
    assert saved["kind"] == "toy" and saved["template_points"] == 64
    assert strip_meta(saved) == registry.resolve_train_config("toy", saved)  # what config.json says is what ran
    model, config = registry.load_model(run, "last")
    assert type(model).__name__ == "TemplateCloud" and config["kind"] == "toy"
    ckpt = runs.load_checkpoint(runs.checkpoint_path(run, "last"))
    assert torch.equal(model.template, ckpt["model"]["template"])
    x = torch.rand(2, 100, 3)
    assert model(x).shape == (2, 64, 3)


def test_a_toy_method_is_reachable_from_the_cli_and_checked(toy_registered, tiny_shapenet, tmp_path, capsys):
    args = ["train", "toy", "--set", f"data_root={tiny_shapenet.root}", "--set", "template_points=0"]
    assert cli_main(args) == 2
    assert "template_points" in capsys.readouterr().err
    assert cli_main(["train", "toy", "--print-config", "--set", "template_points=8"]) == 0
    assert json.loads(capsys.readouterr().out)["template_points"] == 8


def test_unknown_cli_name_lists_the_methods(capsys):
    assert cli_main(["train", "voxels"]) == 2
    err = capsys.readouterr().err
    assert "got 'voxels'" in err and all(n in err for n in ("ae", "variant1", "variant2", "silhouette"))


def test_a_method_name_is_registered_once(toy_registered):
    clash = type(toy_method.METHOD)(config=toy_method.METHOD.config, build_model=toy_method.METHOD.build_model,
                                    trainer=toy_method.METHOD.trainer)
    with pytest.raises(ConfigError, match="already registered"):
        registry.register(clash)


def _materialise(kind: str, dest: Path) -> dict:
    """Copy ``old_runs/<kind>`` to ``dest`` and write its ``best.pt``: the kept checkpoint fields, with
    the weights drawn as the script that made the folder drew them."""
    src = OLD_RUNS / kind
    dest.mkdir(parents=True)
    for name in ("config.json", "history.csv"):
        (dest / name).write_bytes((src / name).read_bytes())
    meta = json.loads((src / "checkpoint.json").read_text())
    g = torch.Generator().manual_seed(0)
    state = {}
    for key in sorted(meta["model"]):
        shape, dtype = meta["model"][key]
        dtype = getattr(torch, dtype.removeprefix("torch."))
        if not dtype.is_floating_point:
            state[key] = torch.zeros(shape, dtype=dtype)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        else:
            state[key] = torch.randn(shape, generator=g) * 0.05
    ckpt = {k: v for k, v in meta.items() if k not in ("model", "fingerprint")}
    ckpt["model"] = state
    (dest / "checkpoints").mkdir()
    torch.save(ckpt, dest / "checkpoints" / "best.pt")
    return meta["fingerprint"]


@pytest.mark.parametrize("kind", ["autoencoder", "image", "silhouette"])
def test_run_folders_of_the_previous_layout_load_unchanged(kind, tmp_path):
    expected = _materialise(kind, tmp_path / kind)
    model, config = registry.load_model(tmp_path / kind)
    assert type(model).__name__ == expected["model_class"]
    assert config["kind"] == expected["loaded_kind"] and config.get("train_kind") == expected["train_kind"]
    g = torch.Generator().manual_seed(1)
    inputs = {"autoencoder": torch.rand(2, 2048, 3, generator=g) - 0.5,
              "image": torch.rand(2, 3, 128, 128, generator=g) * 255}
    with torch.no_grad():
        y = model(inputs["autoencoder" if kind == "autoencoder" else "image"]).double()
    assert list(y.shape) == expected["output_shape"]
    assert y.flatten()[:8].tolist() == pytest.approx(expected["output_first"], rel=1e-5, abs=1e-7)
    assert float(y.sum()) == pytest.approx(expected["output_sum"], rel=1e-5, abs=1e-5)
    assert float(y.abs().sum()) == pytest.approx(expected["output_abs_sum"], rel=1e-6)
    # and the saved config still resolves under its method (what config.json says is what ran)
    saved = json.loads((OLD_RUNS / kind / "config.json").read_text())
    resolved, old = registry.resolve_train_config(kind, saved), strip_meta(saved)
    assert {k: resolved[k] for k in old} == old
    # keys added since, at their defaults, change nothing in training (off switches) — except the
    # silhouette trainer's BatchNorm re-estimation, a deliberate fix: without it the checkpoint's
    # running statistics lag its weights (docs/training.md), so resuming an old run applies it too
    added = {k: v for k, v in resolved.items() if k not in old}
    assert added in ({}, {"extra_train_root": None, "emd_weight": 0.0, "emd_points": 512, "encoder_points": 0},
                     {"bn_recalibration_batches": 32},
                     {"colour_jitter": 0.0, "weight_decoded_chamfer": 0.0, "bn_recalibration_batches": 0})
