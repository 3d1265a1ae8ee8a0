"""Config validation, atomic writes, categories, CLI discovery and camera conventions."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from lmnet import atomic_io, camera
from lmnet.config import parse_set_args, resolve_config
from lmnet.data.categories import to_synset, to_synsets
from lmnet.errors import ConfigError
from lmnet.cli import _command_modules


def test_resolve_config_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError) as exc:
        resolve_config({"lr": 1e-3, "epochs": 2}, {"lr_typo": 1.0})
    assert "lr_typo" in str(exc.value) and "epochs, lr" in str(exc.value)


def test_resolve_config_types():
    cfg = resolve_config({"lr": 1e-3, "epochs": 2, "cats": ["chair"], "opt": {"b1": 0.9}},
                         {"lr": 1, "cats": ("car",), "opt": {"b1": 0.5}})
    assert list(cfg["cats"]) == ["car"] and cfg["epochs"] == 2
    assert isinstance(cfg["lr"], float) and cfg["opt"]["b1"] == 0.5
    with pytest.raises(ConfigError, match="'epochs' expects int"):
        resolve_config({"epochs": 2}, {"epochs": "3"})
    with pytest.raises(ConfigError, match="opt.b2"):
        resolve_config({"opt": {"b1": 0.9}}, {"opt": {"b2": 0.5}})
    with pytest.raises(ConfigError, match="expects bool"):
        resolve_config({"amp": False}, {"amp": 1})


def test_parse_set_args():
    assert parse_set_args(["lr=1e-4", "name=run1", "cats=['chair','car']", "a.b=true"]) == {
        "lr": 1e-4, "name": "run1", "cats": ["chair", "car"], "a": {"b": True}}
    with pytest.raises(ConfigError, match="key=value"):
        parse_set_args(["novalue"])


def test_atomic_write_leaves_no_temp_on_error(tmp_path):
    target = tmp_path / "out.json"
    atomic_io.write_json(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    with pytest.raises(RuntimeError):
        with atomic_io.atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("killed")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_categories():
    assert to_synset("chair") == "03001627" and to_synset("03001627") == "03001627"
    assert to_synsets("chair,airplane") == ["03001627", "02691156"]
    assert to_synsets("all") is None
    with pytest.raises(ConfigError, match="unknown category 'chiar'"):
        to_synset("chiar")
    assert to_synset("95127337") == "95127337"  # a category of lmnet build-dataset
    with pytest.raises(ConfigError, match="8-digit synset id"):
        to_synset("0300162")


def test_frame_conversion_is_involution_and_x_down():
    p = torch.randn(10, 3)
    assert torch.allclose(camera.v1_from_lmnet(camera.lmnet_from_v1(p)), p)
    up_v1 = torch.tensor([[0.0, 1.0, 0.0]])  # ShapeNet v1 is y-up
    assert torch.allclose(camera.lmnet_from_v1(up_v1), torch.tensor([[-1.0, 0.0, 0.0]]))


def test_camera_geometry():
    # the origin projects to the image centre at the right depth
    uv, depth = camera.project_points(torch.zeros(1, 3), 123.0, 27.0, 0.8)
    assert torch.allclose(uv, torch.tensor([[68.5, 68.5]]), atol=1e-4)
    assert math.isclose(depth.item(), 0.8 * camera.R2N2_DISTANCE_SCALE, rel_tol=1e-6)
    # "up" (-x in the lmnet frame) is towards the top of the image (smaller row) at any azimuth
    for az in (0.0, 90.0, 200.0):
        uv, _ = camera.project_points(torch.tensor([[-0.2, 0.0, 0.0]]), az, 25.0, 0.8)
        assert uv[0, 1] < 68.5 - 10
    # the rotation is orthonormal and the camera centre lies at the metadata distance
    R, t = camera.r2n2_extrinsics(torch.tensor([10.0, 250.0]), torch.tensor([25.0, 30.0]),
                                  torch.tensor([0.7, 0.9]))
    assert torch.allclose(R @ R.transpose(-1, -2), torch.eye(3).expand(2, 3, 3), atol=1e-6)
    assert torch.allclose(torch.det(R), torch.ones(2), atol=1e-6)
    pos = camera.camera_position(torch.tensor([10.0, 250.0]), torch.tensor([25.0, 30.0]),
                                 torch.tensor([0.7, 0.9]))
    assert torch.allclose(pos.norm(dim=-1), torch.tensor([0.7, 0.9]) * 1.75, atol=1e-5)
    # elevation 90 looks straight down: the camera sits above (-x)
    assert torch.allclose(camera.camera_position(0.0, 90.0, 1.0), torch.tensor([-1.75, 0.0, 0.0]), atol=1e-5)


def test_cli_help_for_every_subcommand():

    out = subprocess.run([sys.executable, "-m", "lmnet", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "usage: lmnet" in out.stdout
    for name, _ in _command_modules():
        res = subprocess.run([sys.executable, "-m", "lmnet", name, "--help"], capture_output=True, text=True)
        assert res.returncode == 0, (name, res.stderr)
        assert f"usage: lmnet {name}" in res.stdout


def test_atomic_write_gets_normal_permissions(tmp_path):
    import os

    target = tmp_path / "x.txt"
    atomic_io.write_text(target, "hi")
    mask = os.umask(0)
    os.umask(mask)
    assert (target.stat().st_mode & 0o777) == (0o666 & ~mask)
