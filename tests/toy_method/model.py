"""The toy network: ``(B, N, 3)`` → ``(B, T, 3)``, a learnt template scaled by the input's RMS radius."""

import torch
from torch import nn


class TemplateCloud(nn.Module):
    def __init__(self, n_points: int):
        super().__init__()
        self.template = nn.Parameter(torch.randn(n_points, 3) * 0.1)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        radius = points.pow(2).sum(-1).mean(-1).sqrt()  # (B,)
        return self.template.unsqueeze(0) * radius[:, None, None]


def build_model(model_config) -> TemplateCloud:
    return TemplateCloud(model_config["template_points"])


def model_config(config) -> dict:
    return {"kind": "toy", "template_points": config["template_points"]}
