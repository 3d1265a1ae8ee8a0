"""Adam parameter groups with per-layer L2 weight decay (the official image-network convention)."""

from __future__ import annotations

from torch import nn


def weight_decay_groups(module: nn.Module, decay_for) -> list[dict]:
    """Adam parameter groups: ``decay_for(layer)`` gives the L2 coefficient of a layer's ``weight``;
    biases, BatchNorm parameters and frozen parameters (excluded entirely) get none."""
    groups: dict[float, list] = {}
    for layer in module.modules():
        for name, p in layer.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            wd = float(decay_for(layer)) if name == "weight" else 0.0
            groups.setdefault(wd, []).append(p)
    return [{"params": ps, "weight_decay": wd} for wd, ps in groups.items()]


def conv_fc_weight_decay_groups(module: nn.Module, config: dict, overrides: dict | None = None) -> list[dict]:
    """The official image-network L2: ``weight_decay_conv`` on Conv2d weights, ``weight_decay_fc`` on
    Linear weights (config keys), nothing else (see :func:`weight_decay_groups`); ``overrides``
    ``{layer: wd}`` sets the coefficient of particular layers."""
    overrides = overrides or {}

    def decay(layer):
        if layer in overrides:
            return overrides[layer]
        if isinstance(layer, nn.Conv2d):
            return config["weight_decay_conv"]
        if isinstance(layer, nn.Linear):
            return config["weight_decay_fc"]
        return 0.0

    return weight_decay_groups(module, decay)
