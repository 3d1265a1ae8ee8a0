"""convmesh's reconstruction checkpoints (``checkpoints_recon/<name>/checkpoint_<epoch>.pth``) → a
meshrecon run folder (:mod:`lmnet.methods.meshrecon`; layout of :mod:`.imported_run`).

A checkpoint is a ``torch.save`` dict: ``generator`` (the ``ReconstructionNetwork`` state dict, the
layer names lmnet keeps), ``dataset_params`` (``ds_translation`` (N, 2), ``ds_scale`` (N, 1),
``ds_z0`` (N, 1); None when the run learned no offsets), optionally ``optimizer``,
``optimizer_dataset_params``, ``epoch``, ``iteration`` and ``args`` (the command line as a dict).
It is read with ``weights_only=True``: tensors and plain containers only, so a file whose pickle
would run code is refused without running it.

What the network was is read from its weights: the texture resolution from the texture blocks
(``blk3b_tex`` → 128, ``blk3c_tex`` → 256, neither → 64), symmetry from ``fc1_tex`` (256·4·2 rows
when symmetric, 256·4·4 otherwise), the input size from ``fc1e`` (64·(S/32)² inputs); the template
from ``args["dataset"]`` or ``dataset`` (CUB: 16 rings, P3D: 31). Where ``args`` states a value, it
must agree with the weights.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from lmnet.errors import ConfigError, CorruptFileError
from lmnet.methods import meshrecon
from lmnet.weights import imported_run
from lmnet.weights.values import check_weights

__all__ = ["read_reconstruction", "import_convmesh"]


def _network_sizes(gen: dict, path: Path) -> dict:
    """Texture resolution, symmetry and input size of a ``ReconstructionNetwork`` state dict."""
    for key in ("fc1e.weight", "fc1_tex.weight", "conv_tex.weight", "conv_mesh.weight"):
        if key not in gen:
            raise CorruptFileError(path, f"generator: key {key!r} is missing; not a convmesh reconstruction network")
    rows, inputs = gen["fc1_tex.weight"].shape[0], gen["fc1e.weight"].shape[1]
    if rows not in (256 * 4 * 2, 256 * 4 * 4):
        raise CorruptFileError(path, f"generator: fc1_tex.weight has {rows} rows, expected 2048 (symmetric) or 4096")
    side = 32 * math.isqrt(inputs // 64)
    if 64 * (side // 32) ** 2 != inputs or side < 64:
        raise CorruptFileError(path, f"generator: fc1e.weight takes {inputs} inputs, not 64·(S/32)² for an input side S")
    texture = 256 if "blk3c_tex.conv1.weight" in gen else 128 if "blk3b_tex.conv1.weight" in gen else 64
    return {"texture_resolution": texture, "symmetric": rows == 256 * 4 * 2, "image_size": side}


def _agree(args: dict, key: str, value, path: Path) -> None:
    if key in args and args[key] is not None and args[key] != value:
        raise CorruptFileError(path, f"args[{key!r}] is {args[key]!r} but the weights say {value!r}")


def read_reconstruction(path: str | Path, dataset: str | None = None) -> tuple[dict, dict, dict]:
    """A convmesh reconstruction checkpoint → ``(model_config, lmnet state dict, what the original
    training ran with as meshrecon config keys)``; every problem is a one-line error naming the file."""
    path = Path(path)
    chk = imported_run.read_torch_file(path, "convmesh checkpoint")
    if not isinstance(chk, dict) or not isinstance(chk.get("generator"), dict):
        raise CorruptFileError(path, "not a convmesh checkpoint: expected a dict with a 'generator' state dict")
    if "generator_running_avg" in chk or "discriminator" in chk:
        raise ConfigError(f"{path} is a convmesh GAN checkpoint; lmnet imports reconstruction checkpoints here")
    args = chk.get("args") if isinstance(chk.get("args"), dict) else {}
    name = args.get("dataset") or dataset
    if name not in meshrecon.config.RINGS:
        raise ConfigError(f"{path}: which dataset was it trained on? args has {args.get('dataset')!r}; "
                          f"pass --dataset cub or p3d")
    if dataset is not None and args.get("dataset") not in (None, dataset):
        raise ConfigError(f"{path} was trained on {args['dataset']!r}, not --dataset {dataset!r}")
    gen, params = chk["generator"], chk.get("dataset_params") or {}
    sizes = _network_sizes(gen, path)
    _agree(args, "texture_resolution", sizes["texture_resolution"], path)
    _agree(args, "symmetric", sizes["symmetric"], path)
    if not isinstance(params, dict):
        raise CorruptFileError(path, f"dataset_params must be a state dict or None, got {type(params).__name__}")
    n = next((int(v.shape[0]) for v in params.values() if isinstance(v, torch.Tensor)), 1)
    config = {"dataset": name, **sizes, "optimize_deltas": "ds_translation" in params, "optimize_z0": "ds_z0" in params}
    state = {**{f"generator.{k}": v for k, v in gen.items()}, **{f"dataset_params.{k}": v for k, v in params.items()}}
    check_weights(state, path, "key", counters=[k for k in state if k.endswith("num_batches_tracked")])
    resolved = meshrecon.METHOD.resolve({**config, "render_size": sizes["image_size"]})
    return meshrecon.model_config(resolved, n), state, config


def import_convmesh(checkpoint: str | Path, out: str | Path, *, dataset: str | None = None,
                    overwrite: bool = False) -> dict[str, Path]:
    """Convert a convmesh reconstruction checkpoint into a meshrecon run folder at ``out``."""
    with imported_run.claim({"--out": out}, overwrite, "lmnet import-weights convmesh"):
        model_config, state, train_config = read_reconstruction(checkpoint, dataset)
        source = {"format": "convmesh-reconstruction", "checkpoint": str(Path(checkpoint).resolve()),
                  "sha256": imported_run.sha256_of(checkpoint),
                  "conversion": "generator.* and dataset_params.* state dicts taken unchanged"}
        train_config = {**train_config, "render_size": model_config["image_size"]}
        return {"meshrecon": imported_run.write_run(out, model_config, state, train_config, source, overwrite)}
