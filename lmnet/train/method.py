"""What a method is, to the layers below the registry: :class:`Method`.

A method lives in its own folder, ``lmnet/methods/<name>/``, and exposes one ``METHOD``. The
registry (:mod:`lmnet.registry`) lists them; the generic loop (:class:`lmnet.train.loop.Trainer`)
receives a resolved config and the method's :class:`~lmnet.runs.config.ConfigSpec` and knows no
method by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from torch import nn

from lmnet.runs.config import ConfigSpec, resolve_run_config

# A CLI name's config adjustment: (config read from --config and --set, the --set keys alone) → config
CliAdjust = Callable[[dict, dict], dict]


@dataclass(frozen=True)
class Method:
    """One method: its config (``config.name`` is the run kind written into ``config.json`` and the
    checkpoints), how a checkpoint's ``model_config`` becomes its network (``build_model``), its
    trainer (a :class:`~lmnet.train.loop.Trainer` subclass whose ``spec`` is ``config``), as what
    kind of run it loads (``loads_as``: a silhouette run *is* an image → point-cloud network) and
    the names ``lmnet train NAME`` knows it by (``cli``: name → config adjustment)."""

    config: ConfigSpec
    build_model: Callable[[Mapping[str, Any]], nn.Module]
    trainer: type
    loads_as: str | None = None
    cli: Mapping[str, CliAdjust] = field(default_factory=dict)
    summary: str = ""

    @property
    def name(self) -> str:
        return self.config.name

    def resolve(self, overrides: Mapping[str, Any] | None = None) -> dict:
        """``overrides`` resolved against this method's config (:func:`~lmnet.runs.config.resolve_run_config`)."""
        return resolve_run_config(self.config, overrides)

    def fit(self, config: Mapping[str, Any], **datasets) -> Path:
        """Train (or resume) a run with the **resolved** ``config``; returns the run folder.
        ``datasets``: optional ``train_set=`` / ``val_set=`` replacing the ones built from the config."""
        return self.trainer(dict(config), **datasets).fit()

    def train(self, config: Mapping[str, Any] | None = None, **datasets) -> Path:
        """Resolve ``config`` once, then :meth:`fit`."""
        return self.fit(self.resolve(config), **datasets)


__all__ = ["Method", "CliAdjust"]
