"""Image-encoder presets (``arch``): geometry of each, arch-dependent training defaults, training and
bit-exact resume with ``arch=official``, the preset recorded in checkpoints and rebuilt by load_model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_train import assert_same_weights, image_config, state, write_tiny_shapenet  # noqa: F401
from test_train import ae_run, tiny  # noqa: F401  (module fixtures)

from lmnet.errors import ConfigError
from lmnet.models import ImageToPointCloud
from lmnet.models.image_encoder import CONV_LAYOUT, ImageEncoder
from lmnet import registry
from lmnet.registry import resolve_train_config
from lmnet.methods.image import train_image_encoder
from lmnet.commands.train import resolve_cli_config


def _maps(enc: ImageEncoder, x: torch.Tensor) -> list[tuple[int, int]]:
    sizes = []
    for layer in enc.convs:
        x = layer(x)
        if isinstance(layer, torch.nn.Conv2d):
            sizes.append(tuple(x.shape[-2:]))
    return sizes


def test_preset_geometry():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 128, 128) * 255
    official, port, ours = ImageEncoder(arch="official"), ImageEncoder(arch="port"), ImageEncoder()
    assert _maps(official, x)[-1] == (4, 4) and official.features(x).shape == (2, 8192)
    assert port.features(x).shape == (2, 2048)
    stride2 = [size for size, (_, st, _) in zip(_maps(port, x), CONV_LAYOUT) if st == 2]
    assert stride2 == [(63, 63), (31, 31), (15, 15), (7, 7), (2, 2)]
    assert port.fc.in_features == 2048 and official.fc.in_features == 8192
    # no BatchNorm, biases everywhere in the published presets; lmnet keeps BN and bias-free convs
    for enc in (official, port):
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in enc.modules())
        assert all(m.bias is not None for m in enc.modules() if isinstance(m, torch.nn.Conv2d))
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in ours.modules())
    with pytest.raises(ValueError, match="arch"):
        ImageEncoder(arch="tf")


def test_official_same_padding_and_nhwc_flatten_match_plain_ops():
    """TF "same" at stride 2 on an even map pads 0 before / 1 after; the features flatten NHWC."""
    torch.manual_seed(1)
    enc = ImageEncoder(arch="official").double()
    x = torch.rand(1, 3, 128, 128, dtype=torch.float64) * 255
    h = x
    convs = [m for m in enc.convs if isinstance(m, torch.nn.Conv2d)]
    for conv in convs:
        k, s = conv.kernel_size[0], conv.stride[0]
        size = h.shape[-1]
        total = max((-(-size // s) - 1) * s + k - size, 0)
        h = F.relu(F.conv2d(F.pad(h, (total // 2, total - total // 2) * 2), conv.weight, conv.bias, stride=s))
    ref = h.permute(0, 2, 3, 1).reshape(1, -1)  # NHWC: index (h*4 + w)*512 + c
    assert torch.allclose(enc.features(x), ref, rtol=0, atol=1e-9)
    assert ref[0, 5 * 512 + 7] == h[0, 7, 1, 1]


def test_arch_sets_the_official_defaults_explicit_values_win():
    lm = resolve_train_config("image", {"ae_run": "x"})
    assert (lm["arch"], lm["weight_decay_conv"], lm["weight_decay_fc"], lm["image_input"]) == \
        ("lmnet", 1e-5, 1e-3, "composite")
    for arch in ("official", "port"):
        cfg = resolve_train_config("image", {"ae_run": "x", "arch": arch})
        assert (cfg["weight_decay_conv"], cfg["weight_decay_fc"], cfg["image_input"]) == (0.0, 0.0, "stored_rgb")
    cfg = resolve_train_config("image", {"ae_run": "x", "arch": "official", "weight_decay_fc": 1e-3,
                                         "image_input": "composite"})
    assert cfg["weight_decay_fc"] == 1e-3 and cfg["image_input"] == "composite"

    kind, cli = resolve_cli_config("variant2", None, ["arch=official", "ae_run=x"])
    assert kind == "image" and cli["arch"] == "official" and cli["weight_decay_fc"] == 0.0
    assert cli["image_input"] == "stored_rgb" and cli["variant"] == "probabilistic"
    with pytest.raises(ConfigError, match="'arch'"):
        resolve_train_config("image", {"ae_run": "x", "arch": "tensorflow"})
    with pytest.raises(ConfigError, match="image_input"):
        resolve_train_config("image", {"ae_run": "x", "image_input": "rgba"})


def test_train_official_preset_resumes_bit_exactly(tiny, ae_run, tmp_path):  # noqa: F811
    kw = {"arch": "official", "variant": "probabilistic"}
    full = train_image_encoder(image_config(tiny, ae_run, tmp_path / "full", epochs=2, **kw))
    part = image_config(tiny, ae_run, tmp_path / "part", epochs=1, **kw)
    train_image_encoder(part)
    train_image_encoder({**part, "epochs": 2, "resume": True})
    assert_same_weights(state(full)["model"], state(tmp_path / "part")["model"])
    assert state(full)["model_config"]["arch"] == "official"
    assert state(full, "best")["model_config"]["arch"] == "official"
    model, config = registry.load_model(full)
    assert isinstance(model, ImageToPointCloud) and model.encoder.arch == "official"
    assert config["arch"] == "official" and config["image_input"] == "stored_rgb"
    assert config["weight_decay_conv"] == 0.0
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.encoder.modules())


def test_train_port_preset_runs(tiny, ae_run, tmp_path):  # noqa: F811
    run = train_image_encoder(image_config(tiny, ae_run, tmp_path / "port", arch="port"))
    model, _ = registry.load_model(run)
    assert model.encoder.fc.in_features == 2048
    assert model(torch.zeros(1, 3, 128, 128)).shape == (1, 2048, 3)
