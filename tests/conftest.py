"""Shared fixtures.

``tiny_shapenet`` writes a tiny fake ShapeNet in the exact on-disk layout of docs/formats.md (random but
valid 137×137 RGBA PNGs with a blob silhouette, 24-line ``rendering_metadata.txt``,
``renderings.txt``, float32 point clouds of 1024/2048/16384 points) into a fresh folder per test.
``tiny_shapenet_factory(**kw)`` writes one with other sizes (see :func:`write_tiny_shapenet`).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from lmnet.methods.autoencoder import AutoencoderTrainer

TINY_SYNSETS = ("02691156", "03001627")  # airplane, chair
TINY_MODELS_PER_SYNSET = 3


@dataclass
class TinyShapeNet:
    """What :func:`write_tiny_shapenet` wrote. ``keys`` sorted ``"synset/model"``."""

    root: Path
    synsets: list[str]
    models: dict[str, list[str]]  # synset -> model ids (sorted)
    keys: list[str] = field(default_factory=list)
    point_counts: tuple[int, ...] = (1024, 2048, 16384)

    def model_dir(self, key: str, tree: str = "ShapeNetRendering") -> Path:
        s, m = key.split("/")
        return self.root / tree / s / m


def _png(path: Path, rng: np.random.Generator, size: int = 137) -> None:
    from PIL import Image

    yy, xx = np.mgrid[:size, :size]
    cy, cx = rng.uniform(40, 97, 2)
    ry, rx = rng.uniform(15, 40, 2)
    inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[..., :3] = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    rgba[..., 3] = np.where(inside, 255, 0).astype(np.uint8)
    edge = inside & (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 > 0.8)
    rgba[edge, 3] = 128  # some anti-aliased partial alpha
    Image.fromarray(rgba, "RGBA").save(path)


def write_tiny_shapenet(root: str | Path, synsets=TINY_SYNSETS, n_models: int = TINY_MODELS_PER_SYNSET,
                        n_views: int = 24, point_counts=(1024, 2048, 16384), seed: int = 0,
                        renderings: bool = True, pointclouds: bool = True) -> TinyShapeNet:
    """Write a fake dataset under ``root``. Model ids are ``m<synset[-3:]>_<i>`` (deterministic)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    models = {}
    for s in synsets:
        ids = [f"m{s[-3:]}_{i:03d}" for i in range(n_models)]
        models[s] = ids
        for m in ids:
            if renderings:
                rd = root / "ShapeNetRendering" / s / m / "rendering"
                rd.mkdir(parents=True)
                for v in range(n_views):
                    _png(rd / f"{v:02d}.png", rng)
                (rd / "renderings.txt").write_text("".join(f"{v:02d}.png\n" for v in range(24)))
                lines = [f"{rng.uniform(0, 360):.10g} {rng.uniform(25, 30):.10g} 0 "
                         f"{rng.uniform(0.65, 0.9):.10g} 25" for _ in range(24)]
                (rd / "rendering_metadata.txt").write_text("\n".join(lines) + "\n")
            if pointclouds:
                pd = root / "ShapeNet_pointclouds" / s / m
                pd.mkdir(parents=True)
                for n in point_counts:
                    pts = rng.uniform(-0.4, 0.4, (n, 3)).astype(np.float32)
                    np.save(pd / f"pointcloud_{n}.npy", pts)
    keys = sorted(f"{s}/{m}" for s, ms in models.items() for m in ms)
    return TinyShapeNet(root=root, synsets=sorted(synsets), models=models, keys=keys,
                        point_counts=tuple(point_counts))


@pytest.fixture(scope="session")
def _tiny_shapenet_template(tmp_path_factory) -> TinyShapeNet:
    return write_tiny_shapenet(tmp_path_factory.mktemp("tiny_template") / "data")


@pytest.fixture
def tiny_shapenet(_tiny_shapenet_template, tmp_path) -> TinyShapeNet:
    """A private copy (free to corrupt) of a 2-category × 3-model, 24-view fake ShapeNet at
    ``tmp_path / "data"``; all three point-cloud sizes."""
    t = _tiny_shapenet_template
    root = tmp_path / "data"
    shutil.copytree(t.root, root)
    return TinyShapeNet(root=root, synsets=list(t.synsets), models={k: list(v) for k, v in t.models.items()},
                        keys=list(t.keys), point_counts=t.point_counts)


@pytest.fixture
def tiny_shapenet_factory(tmp_path):
    """``make(name="data", **kw)`` → :class:`TinyShapeNet` written under ``tmp_path / name``."""
    def make(name: str = "data", **kw) -> TinyShapeNet:
        return write_tiny_shapenet(tmp_path / name, **kw)
    return make


@pytest.fixture
def server():
    """A :class:`loopback.LoopbackServer` on 127.0.0.1 (files, cut transfers, no length, no ranges)."""
    from loopback import LoopbackServer

    s = LoopbackServer()
    yield s
    s.close()


def ctrl_c_at_step(monkeypatch, step):
    """Make autoencoder training raise ``KeyboardInterrupt`` (Ctrl-C) at its ``step``-th loss
    computation (1-based; with 2 steps per epoch, step 3 is the first step of epoch 2)."""
    calls = []

    def interrupted(self, batch, _orig=AutoencoderTrainer.compute_losses):
        calls.append(1)
        if len(calls) == step:
            raise KeyboardInterrupt
        return _orig(self, batch)

    monkeypatch.setattr(AutoencoderTrainer, "compute_losses", interrupted)


def scripted_validation(monkeypatch, values):
    """Make autoencoder validation report ``values[i]`` as ``val_chamfer_x100`` at its i-th call."""

    scripted = iter(values)

    def fake_validation(self, batch):
        return {"val_chamfer_x100": self._script * batch["points"].shape[0]}

    def fake_validate(self, vloader, _orig=AutoencoderTrainer._validate):
        self._script = next(scripted)
        return _orig(self, vloader)

    monkeypatch.setattr(AutoencoderTrainer, "validation_sums", fake_validation)
    monkeypatch.setattr(AutoencoderTrainer, "_validate", fake_validate)


def batch_norm_gaps(layers, run_forward) -> tuple[float, float]:
    """How far the running statistics of BatchNorm ``layers`` are from the statistics of their inputs
    in one forward, ``run_forward()`` (run under ``no_grad``; the caller puts the model in training
    mode). The running statistics are read before that forward, which would move them. Returns
    ``(mean_gap, var_gap)``: the largest distance of a running mean from the batch mean, in batch
    standard deviations, and the largest relative error of a running variance (batch variance unbiased)."""
    running = {l: (l.running_mean.double().clone(), l.running_var.double().clone()) for l in layers}
    want, hooks = {}, []
    for layer in layers:
        def hook(mod, inp, out, layer=layer):
            x = inp[0].detach().double()
            dims = [0] + list(range(2, x.dim()))
            want[layer] = (x.mean(dims), x.var(dims, unbiased=True))
        hooks.append(layer.register_forward_hook(hook))
    try:
        with torch.no_grad():
            run_forward()
    finally:
        for h in hooks:
            h.remove()
    assert len(want) == len(layers), "the forward did not run every layer"
    mean_gap = max(float(((running[l][0] - want[l][0]).abs() / (want[l][1] + l.eps).sqrt()).max()) for l in layers)
    var_gap = max(float(((running[l][1] - want[l][1]).abs() / (want[l][1] + l.eps)).max()) for l in layers)
    return mean_gap, var_gap
