"""The registry of methods: the one list of what lmnet can train and load.

Each method lives in ``lmnet/methods/<name>/`` and exposes ``METHOD``
(:class:`~lmnet.train.method.Method`); the lines under "the built-in methods" below register them,
and :func:`register` is all a new method needs (docs/architecture.md#adding-a-method). Everything
above the methods — evaluation, inference, import of published weights, the notebooks, the CLI —
reaches them through these functions:

- :func:`get_method`, :data:`METHODS`: a method by its name (the run kind in ``config.json``);
- :func:`resolve_train_config`: a config resolved against its method's defaults, presets and checks;
- :func:`train`: resolve once, then train or resume;
- :func:`build_model`, :func:`load_model`: a checkpoint's network, any run folder (trained or
  imported) → ``(model, config)``;
- :func:`require_kind`: the check consumers make that a loaded run is what they need;
- :func:`cli_names`: the names ``lmnet train NAME`` knows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from lmnet.errors import ConfigError
from lmnet.methods import autoencoder, image, meshgan, meshrecon, silhouette
from lmnet.runs.folder import load_run
from lmnet.train.method import CliAdjust, Method

METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add ``method`` under ``method.name``; its CLI names must not be taken. Returns it."""
    if method.name in METHODS and METHODS[method.name] is not method:
        raise ConfigError(f"a method named {method.name!r} is already registered")
    taken = {name for m in METHODS.values() if m is not method for name in m.cli}
    clash = sorted(taken & set(method.cli))
    if clash:
        raise ConfigError(f"method {method.name!r}: CLI name(s) {clash} already used by another method")
    METHODS[method.name] = method
    return method


def unregister(name: str) -> None:
    """Remove the method ``name`` (tests that register a toy method)."""
    METHODS.pop(name, None)


# the built-in methods, one line each
register(autoencoder.METHOD)
register(image.METHOD)
register(silhouette.METHOD)
register(meshrecon.METHOD)
register(meshgan.METHOD)


def get_method(name: str, what: str = "training kind") -> Method:
    """The registered method ``name``; an unknown one raises :class:`ConfigError` listing them."""
    if name not in METHODS:
        raise ConfigError(f"{what} must be one of {tuple(METHODS)}, got {name!r}")
    return METHODS[name]


def resolve_train_config(kind: str, overrides: Mapping[str, Any] | None = None) -> dict:
    """``overrides`` resolved against the method ``kind`` (:func:`lmnet.runs.config.resolve_run_config`)."""
    return get_method(kind).resolve(overrides)


def train(kind: str, config: Mapping[str, Any] | None = None, **datasets) -> Path:
    """Resolve ``config`` once and train (or resume) a run of the method ``kind``; returns the run
    folder. ``datasets``: optional ``train_set=`` / ``val_set=`` replacing the ones of the config."""
    return get_method(kind).train(config, **datasets)


def cli_names() -> dict[str, tuple[Method, CliAdjust]]:
    """``{name: (method, config adjustment)}`` of every name ``lmnet train NAME`` accepts."""
    return {name: (m, adjust) for m in METHODS.values() for name, adjust in m.cli.items()}


def build_model(model_config: Mapping[str, Any]) -> torch.nn.Module:
    """Instantiate the network described by a checkpoint's ``model_config`` (its ``kind`` picks the method)."""
    return get_method(model_config.get("kind"), "model kind in checkpoint model_config").build_model(model_config)


def load_model(run_dir: str | Path, which: str = "best", device: str | torch.device = "cpu"):
    """Load a trained network → ``(model, config)``, the model in eval mode on ``device``.

    ``run_dir``: a run folder (``which`` picks ``checkpoints/best.pt`` or ``last.pt``) or a
    checkpoint ``.pt`` file directly (then ``config`` comes from the folder above ``checkpoints/``
    when present, else ``{"kind": ...}`` only). The network is the one its checkpoint's
    ``model_config`` describes (:func:`build_model`). ``config`` is the run's ``config.json`` dict
    (resolved training config plus ``kind``, ``git_commit``, ...). A run whose method loads as
    another kind (a silhouette run *is* an image → point-cloud network) reports that kind in
    ``config["kind"]`` and its own in ``config["train_kind"]``, so consumers that check for kind
    ``"image"`` (``lmnet eval`` / ``lmnet infer``) take it as one. Imported runs
    (:mod:`lmnet.weights.imported_run`) have the same layout and load the same way.
    """
    ckpt, config = load_run(run_dir, which)
    loads_as = get_method(config["kind"], f"{run_dir}: run kind").loads_as
    if loads_as:
        config["kind"], config["train_kind"] = loads_as, config["kind"]
    model = build_model(ckpt["model_config"])
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), config


def require_kind(config: dict, kind: str, source, what: str) -> None:
    """Raise :class:`ConfigError` unless the loaded run ``config`` (from :func:`load_model`) is of
    ``kind``; the message names ``source`` (the run) and ``what`` needed it."""
    if config.get("kind") != kind:
        raise ConfigError(f"{source}: {what} needs an {kind} run (kind {kind!r}), got kind {config.get('kind')!r}")


__all__ = ["METHODS", "register", "unregister", "get_method", "resolve_train_config", "train",
           "cli_names", "build_model", "load_model", "require_kind"]
