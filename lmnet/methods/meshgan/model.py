"""The trained module of a meshgan run and what a checkpoint's ``model_config`` says about it.

:class:`MeshGAN` holds ``generator``, ``generator_running_avg`` (the EMA generator: the one to sample
from) and ``discriminator``, under the names of a convmesh GAN checkpoint's state dicts
(``chk["generator"]``, ``chk["generator_running_avg"]``, ``chk["discriminator"]``), so one lmnet
state dict holds all three and best / last checkpoints carry the EMA generator.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch
from torch import nn

from lmnet.methods.meshgan.config import RINGS, num_discriminators
from lmnet.methods.meshgan.network import LATENT_DIM, Generator, MultiScaleDiscriminator
from lmnet.uvmesh.template import uv_sphere_template

__all__ = ["MeshGAN", "build_model", "model_config", "truncated_noise", "ema_alpha", "update_ema"]


def truncated_noise(n: int, sigma: float, generator: torch.Generator | None = None,
                    dim: int = LATENT_DIM) -> torch.Tensor:
    """``(n, dim)`` draws of N(0, 1) with every entry ``|z| > sigma`` drawn again until none is left
    (the original's rejection sampling, in its order: one redraw of all rejected entries per round)."""
    if not sigma > 0:
        raise ValueError(f"truncation sigma must be > 0, got {sigma}")
    z = torch.randn(n, dim, generator=generator)
    while True:
        reject = z.abs() > sigma
        count = int(reject.sum())
        if count == 0:
            return z
        z[reject] = torch.randn(count, generator=generator)


def ema_alpha(epoch: int, alpha: float) -> float:
    """The EMA generator's α in 0-based ``epoch``: ``α¹⁰⁰`` before epoch 10, ``α¹⁰`` before 100, then ``α``
    (the original's warm-up, so that early samples are not dominated by the random start)."""
    if epoch < 10:
        return math.pow(alpha, 100)
    if epoch < 100:
        return math.pow(alpha, 10)
    return alpha


@torch.no_grad()
def update_ema(average: nn.Module, current: nn.Module, alpha: float) -> None:
    """``average ← α·average + (1 − α)·current`` for every floating-point entry of the state dict
    (weights, spectral-norm vectors, BatchNorm statistics); other entries (counters) are copied."""
    now = current.state_dict()
    for key, value in average.state_dict().items():
        if torch.is_floating_point(value):
            value.mul_(alpha).add_(now[key], alpha=1 - alpha)
        else:
            value.copy_(now[key])


class MeshGAN(nn.Module):
    """Generator, its moving average and the discriminators (module docstring); ``rings`` picks the
    template the displacement maps deform (16 CUB, 31 P3D) and ``truncation`` the default σ of
    :meth:`sample`."""

    def __init__(self, generator_factory, discriminator: MultiScaleDiscriminator, rings: int, truncation: float):
        super().__init__()
        self.generator = generator_factory()
        self.generator_running_avg = generator_factory()
        self.generator_running_avg.load_state_dict(self.generator.state_dict())
        self.generator_running_avg.requires_grad_(False)
        self.discriminator = discriminator
        self.rings, self.truncation = int(rings), float(truncation)

    @property
    def template(self):
        return uv_sphere_template(self.rings)

    @torch.no_grad()
    def sample(self, n: int, classes: torch.Tensor | None = None, truncation: float | None = None,
               generator: torch.Generator | None = None):
        """``n`` samples of the EMA generator in eval mode: ``(texture (n, 3, T, T), displacement
        (n, 3, 32, 32), vertices (n, V, 3))``. ``classes`` ``(n, K)`` int64 (None for an
        unconditional model); noise truncated at ``truncation`` (None: the run's σ), drawn from
        ``generator`` (None: torch's global generator)."""
        g = self.generator_running_avg
        was_training = g.training
        g.eval()
        try:
            device = next(g.parameters()).device
            z = truncated_noise(n, self.truncation if truncation is None else truncation, generator).to(device)
            c = None if classes is None else classes.to(device=device, dtype=torch.int64).reshape(n, -1)
            texture, displacement = g(z, c)
        finally:
            g.train(was_training)
        return texture, displacement, self.template.vertex_positions(displacement, g.symmetric)


def build_model(model_config: Mapping[str, Any]) -> MeshGAN:
    """The module of a checkpoint's ``model_config`` (:func:`model_config`)."""
    res, cond = model_config["texture_resolution"], model_config["conditional"]
    classes, width = tuple(model_config["num_classes"]), model_config["width"]

    def generator():
        return Generator(res, cond, classes, width, symmetric=True)

    disc = MultiScaleDiscriminator(res, cond, classes, model_config["num_discriminators"], width)
    return MeshGAN(generator, disc, model_config["rings"], model_config["truncation"])


def model_config(config: Mapping[str, Any], num_classes) -> dict:
    """What a meshgan checkpoint stores about its module: dataset and template, texture size, width,
    conditioning and class counts (from the data), discriminators and the sampling σ."""
    return {"kind": "meshgan", "dataset": config["dataset"], "rings": RINGS[config["dataset"]],
            "texture_resolution": int(config["texture_resolution"]), "width": float(config["width"]),
            "conditional": config["conditional"], "num_classes": [int(n) for n in num_classes],
            "num_discriminators": num_discriminators(config["dataset"], config["texture_resolution"]),
            "latent_dim": LATENT_DIM, "truncation": float(config["truncation"])}
