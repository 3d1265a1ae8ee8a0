"""Networks: output shapes, parameter counts computed by hand, padding, scaling, Variant I/II losses."""

import math

import pytest
import torch
import torch.nn.functional as F

from lmnet.losses.latent import diversity_loss, latent_loss
from lmnet.models import ImageEncoder, ImageToPointCloud, PointAutoencoder, reparameterize, scale_images
from lmnet.models.image_encoder import SameConv2d


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def bn(c):  # BatchNorm weight + bias
    return 2 * c


# --- point autoencoder ---------------------------------------------------------------------------
ENC = (3, 64, 128, 128, 256, 512)
ENC_PARAMS = sum(a * b + bn(b) for a, b in zip(ENC[:-1], ENC[1:]))            # Conv1d k=1, no bias
DEC_PARAMS = (512 * 256 + bn(256)) + (256 * 256 + bn(256)) + (256 * 2048 * 3 + 2048 * 3)


def test_point_autoencoder_shapes_and_params():
    torch.manual_seed(0)
    ae = PointAutoencoder().eval()
    assert n_params(ae.encoder) == ENC_PARAMS == 190_784
    assert n_params(ae.decoder) == DEC_PARAMS == 1_776_640
    pts = torch.randn(3, 500, 3)
    z = ae.encode(pts)
    assert z.shape == (3, 512) and (z >= 0).all()            # ReLU before the max-pool
    assert ae.decode(z).shape == (3, 2048, 3)
    assert ae(pts).shape == (3, 2048, 3)
    perm = torch.randperm(500)
    assert torch.allclose(ae.encode(pts[:, perm]), z, atol=1e-6)  # order invariant
    with pytest.raises(ValueError, match=r"\(B, N, 3\)"):
        ae.encode(torch.randn(3, 500))


def _conv1d_reference(encoder, points):
    """Naive reference: the encoder's kernel-1 Conv1d stack on (B, 3, N), then the max over N."""
    return encoder.mlp(points.transpose(1, 2)).max(dim=2).values


@pytest.mark.parametrize("train", [False, True])
def test_point_encoder_rows_equal_conv1d(train):
    """The encoder runs its layers on (B·N, C) rows; outputs, gradients and BatchNorm running
    statistics equal those of its Conv1d layers on (B, C, N)."""
    torch.manual_seed(0)
    ours, ref = PointAutoencoder().encoder, PointAutoencoder().encoder
    ref.load_state_dict(ours.state_dict())
    ours.train(train), ref.train(train)
    pts = torch.randn(4, 300, 3)
    a, b = ours(pts), _conv1d_reference(ref, pts)
    assert torch.allclose(a, b, atol=1e-5, rtol=1e-5)
    (a ** 2).sum().backward(), (b ** 2).sum().backward()
    for (name, pa), pb in zip(ours.named_parameters(), ref.parameters()):
        scale = float(pb.grad.abs().max())  # float32 sums in another order: relative to the largest entry
        assert torch.allclose(pa.grad, pb.grad, atol=1e-5 * scale, rtol=1e-5), name
    for (name, ba), bb in zip(ours.named_buffers(), ref.buffers()):
        assert torch.allclose(ba.float(), bb.float(), atol=1e-6, rtol=1e-5), name


# --- image encoder -------------------------------------------------------------------------------
# (kernel, stride, out) written out again here, independent of the module's table.
LAYERS = [(3, 1, 32)] * 2 + [(3, 2, 64)] + [(3, 1, 64)] * 2 + [(3, 2, 128)] + [(3, 1, 128)] * 2 \
    + [(3, 2, 256)] + [(3, 1, 256)] * 2 + [(3, 2, 512)] + [(3, 1, 512)] * 3 + [(5, 2, 512)]


def image_encoder_params():
    total, c_in = 0, 3
    for k, _, c_out in LAYERS:
        total += k * k * c_in * c_out + bn(c_out)               # conv without bias + BN
        c_in = c_out
    return total + 4 * 4 * 512 * 512 + 512                      # FC 8192 -> 512


def test_image_encoder_shapes_and_params():
    assert len(LAYERS) == 16
    enc = ImageEncoder().eval()
    assert sum(isinstance(m, torch.nn.Conv2d) for m in enc.modules()) == 16
    assert n_params(enc) == image_encoder_params()
    x = torch.rand(2, 3, 128, 128) * 255
    assert enc.features(x).shape == (2, 8192)
    assert enc(x).shape == (2, 512)
    with pytest.raises(ValueError, match="128"):
        enc(torch.rand(2, 3, 137, 137))


def test_same_padding_matches_tensorflow_rule():
    torch.manual_seed(0)
    x = torch.randn(1, 4, 8, 8)
    conv = SameConv2d(4, 5, 3, stride=2, bias=False)
    # TF "same", stride 2, even input: total pad 1, all of it bottom/right.
    ref = F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, stride=2)
    assert torch.allclose(conv(x), ref, atol=1e-6) and conv(x).shape[-2:] == (4, 4)
    conv5 = SameConv2d(4, 5, 5, stride=2, bias=False)           # total pad 3: 1 top/left, 2 bottom/right
    assert torch.allclose(conv5(x), F.conv2d(F.pad(x, (1, 2, 1, 2)), conv5.weight, stride=2), atol=1e-6)
    conv1 = SameConv2d(4, 5, 3, stride=1, bias=False)           # stride 1: symmetric padding 1
    assert torch.allclose(conv1(x), F.conv2d(x, conv1.weight, padding=1), atol=1e-6)
    assert SameConv2d(4, 5, 3, stride=2)(torch.randn(1, 4, 7, 9)).shape[-2:] == (4, 5)  # ceil(in / 2)


def test_image_scaling_modes():
    x = torch.rand(2, 3, 128, 128) * 255
    assert torch.equal(scale_images(x, "raw255"), x)
    assert torch.allclose(scale_images(x, "unit"), x / 255)
    s = scale_images(x, "standardize")
    assert torch.allclose(s.flatten(1).mean(1), torch.zeros(2), atol=1e-4)
    assert torch.allclose(s.flatten(1).std(1, unbiased=False), torch.ones(2), atol=1e-4)
    flat = scale_images(torch.full((1, 3, 128, 128), 7.0), "standardize")
    assert torch.isfinite(flat).all() and flat.abs().max() == 0
    with pytest.raises(ValueError, match="image_scaling"):
        ImageEncoder(image_scaling="bgr")


# --- image -> point cloud --------------------------------------------------------------------------
def test_image_to_pointcloud_variants():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 128, 128) * 255
    m1 = ImageToPointCloud("l1")
    m2 = ImageToPointCloud("probabilistic")
    assert n_params(m1) == image_encoder_params() + DEC_PARAMS
    assert n_params(m2) == image_encoder_params() + (8192 * 512 + 512) + DEC_PARAMS
    assert sum(p.numel() for p in m2.trainable_parameters()) == n_params(m2) - DEC_PARAMS
    assert all(not p.requires_grad for p in m2.decoder.parameters())
    m2.train()
    assert m2.encoder.training and not m2.decoder.training     # frozen decoder keeps AE statistics
    m1.eval(), m2.eval()
    assert m1(x).shape == (2, 2048, 3)
    mu, logvar = m1.encode_image(x)
    assert mu.shape == (2, 512) and logvar is None
    s1 = m1.sample(x, 3)
    assert s1.shape == (2, 3, 2048, 3) and torch.allclose(s1[:, 0], s1[:, 2])
    mu, logvar = m2.encode_image(x)
    assert logvar.shape == (2, 512)
    g = torch.Generator().manual_seed(1)
    s2 = m2.sample(x, 4, generator=g)
    assert s2.shape == (2, 4, 2048, 3) and not torch.allclose(s2[:, 0], s2[:, 1])
    assert torch.allclose(m2(x), m2.decoder(mu), atol=1e-6)   # forward decodes mu
    with pytest.raises(ValueError, match="variant"):
        ImageToPointCloud("l3")


def test_latent_and_diversity_losses():
    torch.manual_seed(0)
    z, t = torch.randn(4, 512), torch.randn(4, 512)
    assert torch.isclose(latent_loss(z, t, "l1"), sum(abs(a - b) for a, b in zip(z.flatten(), t.flatten())) / z.numel())
    assert torch.isclose(latent_loss(z, t, "l2"), ((z - t) ** 2).sum() / z.numel())
    logvar = torch.randn(3, 512) * 0.3
    az_deg = torch.tensor([180.0, 90.0, 200.0])
    theta = math.radians(20.0)
    expected = 0.0
    for b in range(3):  # scalar reference of docs/models.md#diversity-loss
        sigma_mean = sum(math.exp(0.5 * float(v)) for v in logvar[b]) / 512
        target = 0.2 * math.exp(-(math.radians(float(az_deg[b])) - math.pi) ** 2 / theta ** 2)
        expected += (sigma_mean - target) ** 2 / 3
    got = diversity_loss(logvar, torch.deg2rad(az_deg), alpha=0.2, theta_rad=theta)
    assert math.isclose(float(got), expected, rel_tol=1e-5)
    mu = torch.zeros(20000, 2)
    z = reparameterize(mu, torch.log(torch.tensor([0.25, 4.0])).expand(20000, 2))
    assert torch.allclose(z.std(0), torch.tensor([0.5, 2.0]), rtol=0.05)
