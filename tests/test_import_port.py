"""The PyTorch port's checkpoints: state dicts with exactly its keys and shapes
(``tests/data/port_checkpoint_keys.json``), its forward pass written with plain torch ops (its
paddings, biases, BN, channel-major reshape), ``lmnet import-weights port``, and a comparison to a
relative error of 1e-5; plus the files that must be refused."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from lmnet import load_model
from lmnet.cli import main as cli_main
from lmnet.errors import CorruptFileError
from lmnet.weights import port
from lmnet.weights.crc32c import crc32c, mask, unmask

REFERENCE = json.loads((Path(__file__).parent / "data" / "port_checkpoint_keys.json").read_text())
TOL = 1e-5
# (key, stride) of the port's convs in order; every stride-2 conv is unpadded, the others pad k // 2
PORT_CONVS = [("base.0.0", 1), ("base.0.2", 1), ("base.1", 2), ("base.3.0", 1), ("base.3.2", 1), ("base.4", 2),
              ("base.6.0", 1), ("base.6.2", 1), ("base.7", 2), ("base.9.0", 1), ("base.9.2", 1), ("base.10", 2),
              ("base.12.0", 1), ("base.12.2", 1), ("base.13", 1), ("base.15", 2)]


def rel_err(a, b) -> float:
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


def make_state(shapes: dict, seed: int) -> collections.OrderedDict:
    g = torch.Generator().manual_seed(seed)
    sd = collections.OrderedDict()
    for k, shape in shapes.items():
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(1234)
        elif k.endswith("running_var"):
            sd[k] = torch.rand(shape, generator=g) * 1.5 + 0.5
        elif k.endswith("weight") and len(shape) > 1:
            fan_in = int(torch.tensor(shape[1:]).prod())
            sd[k] = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
        elif ".bn" in k and k.endswith("weight"):
            sd[k] = torch.rand(shape, generator=g) + 0.5
        else:
            sd[k] = torch.randn(shape, generator=g) * 0.1
    return sd


def port_ae_forward(sd, points_b3n):
    """The port's AutoEncoder.forward on ``(B, 3, N)`` → its ``(B, 3, 2048)`` output."""
    x = points_b3n
    for i in range(1, 6):
        x = F.conv1d(x, sd[f"encoder.conv{i}.weight"], sd[f"encoder.conv{i}.bias"])
        x = F.relu(F.batch_norm(x, sd[f"encoder.bn{i}.running_mean"], sd[f"encoder.bn{i}.running_var"],
                                sd[f"encoder.bn{i}.weight"], sd[f"encoder.bn{i}.bias"], training=False, eps=1e-5))
    z = x.max(dim=2).values
    return port_decode(sd, z), z


def port_decode(sd, z):
    for i in (1, 2):
        z = F.linear(z, sd[f"decoder.fc{i}.weight"], sd[f"decoder.fc{i}.bias"])
        z = F.relu(F.batch_norm(z, sd[f"decoder.bn{i}.running_mean"], sd[f"decoder.bn{i}.running_var"],
                                sd[f"decoder.bn{i}.weight"], sd[f"decoder.bn{i}.bias"], training=False, eps=1e-5))
    return F.linear(z, sd["decoder.fc3.weight"], sd["decoder.fc3.bias"]).view(-1, 3, 2048)


def port_image_forward(sd, images):
    x = images
    for key, stride in PORT_CONVS:
        w = sd[f"{key}.weight"]
        x = F.relu(F.conv2d(x, w, sd[f"{key}.bias"], stride=stride, padding=0 if stride == 2 else w.shape[-1] // 2))
    return x.reshape(x.shape[0], -1)  # NCHW flatten of the 512×2×2 map


@pytest.fixture()
def files(tmp_path):
    ae = make_state(REFERENCE["autoencoder"], 0)
    normal = make_state(REFERENCE["image_encoder_normal"], 1)
    var = make_state(REFERENCE["image_encoder_variational"], 2)
    paths = {}
    for name, sd in (("ae", ae), ("normal", normal), ("variational", var)):
        paths[name] = tmp_path / f"{name}.pth"
        torch.save(sd, paths[name])
    return paths, ae, normal, var


def test_reference_keys_are_what_the_converter_expects():
    assert port.ae_shapes() == {k: tuple(s) for k, s in REFERENCE["autoencoder"].items()}
    assert port.image_shapes("l1") == {k: tuple(s) for k, s in REFERENCE["image_encoder_normal"].items()}
    assert port.image_shapes("probabilistic") == {k: tuple(s) for k, s in
                                                  REFERENCE["image_encoder_variational"].items()}


@pytest.mark.parametrize("variant", ["l1", "l2", "probabilistic"])
def test_port_models_are_reproduced(files, tmp_path, variant):
    paths, ae, normal, var = files
    img = paths["variational" if variant == "probabilistic" else "normal"]
    assert cli_main(["import-weights", "port", "--autoencoder", str(paths["ae"]), "--image-encoder", str(img),
                     "--variant", variant, "--out", str(tmp_path / "img"), "--ae-out", str(tmp_path / "ae")]) == 0
    g = torch.Generator().manual_seed(5)
    images = torch.rand(2, 3, 128, 128, generator=g) * 255
    points = torch.rand(2, 900, 3, generator=g) - 0.5
    model, config = load_model(tmp_path / "img")
    assert config["arch"] == "port" and config["variant"] == variant and config["image_input"] == "stored_rgb"
    assert config["source"]["format"] == "port"
    with torch.no_grad():
        feats = port_image_forward(var if variant == "probabilistic" else normal, images)
        heads = var if variant == "probabilistic" else normal
        mu_ref = F.linear(feats, *(heads[f"{'mu' if variant == 'probabilistic' else 'latent'}.{p}"]
                                   for p in ("weight", "bias")))
        pred_ref = port_decode(ae, mu_ref).transpose(1, 2)
        mu, logvar = model.encode_image(images)
        assert rel_err(mu, mu_ref) <= TOL and rel_err(model(images), pred_ref) <= TOL
        if variant == "probabilistic":  # the port's "std" head outputs log σ²
            assert rel_err(logvar, F.linear(feats, var["std.weight"], var["std.bias"])) <= TOL
        else:
            assert logvar is None
        ae_model, ae_cfg = load_model(tmp_path / "ae")
        rec_ref, z_ref = port_ae_forward(ae, points.transpose(1, 2))
        assert ae_cfg["kind"] == "autoencoder"
        assert rel_err(ae_model.encode(points), z_ref) <= TOL
        assert rel_err(ae_model(points), rec_ref.transpose(1, 2)) <= TOL


class Payload:
    """Anything that is not a tensor or a plain container needs the pickle machinery to load."""

    def __init__(self):
        self.weights = torch.zeros(2)


def test_bad_files_are_refused_naming_the_problem(files, tmp_path):
    paths, ae, normal, _ = files
    out = tmp_path / "out"
    bad = tmp_path / "bad.pth"
    torch.save([normal], bad)
    with pytest.raises(CorruptFileError, match="not a state dict.*list"):
        port.import_port(paths["ae"], bad, "l1", out)
    torch.save({"state": Payload()}, bad)
    with pytest.raises(CorruptFileError, match="pickle payload"):
        port.import_port(paths["ae"], bad, "l1", out)
    torch.save({k: v for k, v in normal.items() if k != "base.13.bias"}, bad)
    with pytest.raises(CorruptFileError, match="missing keys: base.13.bias"):
        port.import_port(paths["ae"], bad, "l1", out)
    torch.save({**normal, "latent.weight": torch.zeros(512, 8192)}, bad)
    with pytest.raises(CorruptFileError, match=r"'latent.weight' has shape \[512, 8192\], expected \[512, 2048\]"):
        port.import_port(paths["ae"], bad, "l1", out)
    with pytest.raises(CorruptFileError, match="missing keys: mu.weight"):  # a Variant I file as Variant II
        port.import_port(paths["ae"], paths["normal"], "probabilistic", out)
    bad.write_bytes(paths["ae"].read_bytes()[:1000])
    with pytest.raises(CorruptFileError, match="cannot read"):
        port.import_port(bad, paths["normal"], "l1", out)
    assert not out.exists()


def test_crc32c_known_value_and_chunked_path():
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0 and unmask(mask(0xE3069283)) == 0xE3069283
    data = bytes(range(256)) * 1500 + b"tail"  # long enough for the vectorised path
    crc = 0xFFFFFFFF
    for b in data:  # plain bitwise reference
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    assert crc32c(data) == crc ^ 0xFFFFFFFF
    assert crc32c(data[1000:], crc32c(data[:1000])) == crc32c(data)
