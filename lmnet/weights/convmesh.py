"""convmesh's checkpoints → lmnet run folders (layout of :mod:`.imported_run`): reconstruction
checkpoints (``checkpoints_recon/<name>/checkpoint_<epoch>.pth``) become meshrecon runs
(:mod:`lmnet.methods.meshrecon`), GAN checkpoints (``checkpoints_gan/<name>/checkpoint_latest.pth``,
Zubić & Liò's ``gan_weights/``) meshgan runs (:mod:`lmnet.methods.meshgan`; :func:`read_gan`).

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
from lmnet.methods import meshgan, meshrecon
from lmnet.weights import imported_run
from lmnet.weights.values import check_weights

__all__ = ["read_reconstruction", "read_gan", "import_convmesh"]


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


def _dataset_of(chk: dict, path: Path, dataset: str | None) -> tuple[dict, str]:
    """``(args, dataset)``: the checkpoint's ``args`` dict ({} without) and the dataset it was trained on."""
    args = chk.get("args") if isinstance(chk.get("args"), dict) else {}
    name = args.get("dataset") or dataset
    if name not in meshrecon.config.RINGS:
        raise ConfigError(f"{path}: which dataset was it trained on? args has {args.get('dataset')!r}; "
                          f"pass --dataset cub or p3d")
    if dataset is not None and args.get("dataset") not in (None, dataset):
        raise ConfigError(f"{path} was trained on {args['dataset']!r}, not --dataset {dataset!r}")
    return args, name


def _gan_sizes(ema: dict, path: Path, args: dict) -> dict:
    """Conditioning, class counts, width and texture resolution of a convmesh ``Generator`` state dict."""
    if "fc.weight" not in ema:
        raise CorruptFileError(path, "generator_running_avg: key 'fc.weight' is missing; not a convmesh GAN generator")
    cond = "class_color" if "emb_color.weight" in ema else "class" if "emb_class.weight" in ema else "none"
    classes = [int(ema[k].shape[0]) for k in ("emb_class.weight", "emb_color.weight") if k in ema]
    texture = 512 if "blk3b.conv1.weight_orig" in ema else 256 if "blk3a.conv1.weight_orig" in ema else \
        int(args.get("texture_resolution") or 128)
    if texture not in meshgan.config.TEXTURE_RESOLUTIONS:
        raise CorruptFileError(path, f"args['texture_resolution'] is {texture}, not one of "
                                     f"{meshgan.config.TEXTURE_RESOLUTIONS}")
    return {"conditional": cond, "num_classes": classes, "texture_resolution": texture,
            "width": ema["fc.weight"].shape[0] / (8 * 4 * 512)}


def read_gan(path: str | Path, dataset: str | None = None) -> tuple[dict, dict, dict, list[str]]:
    """A convmesh GAN checkpoint → ``(model_config, lmnet state dict, meshgan config keys, notes)``.
    ``generator_running_avg`` (the EMA generator, what samples come from) is required; a release
    file stripped of ``generator`` / ``discriminator`` gets the EMA weights as the generator and
    freshly initialised discriminators (``notes`` says so: such a run samples, it cannot continue)."""
    path = Path(path)
    chk = imported_run.read_torch_file(path, "convmesh checkpoint")
    if not isinstance(chk, dict) or not isinstance(chk.get("generator_running_avg"), dict):
        raise CorruptFileError(path, "not a convmesh GAN checkpoint: expected a 'generator_running_avg' state dict")
    args, name = _dataset_of(chk, path, dataset)
    ema = chk["generator_running_avg"]
    sizes = _gan_sizes(ema, path, args)
    config = meshgan.METHOD.resolve({"dataset": name, **{k: sizes[k] for k in ("conditional", "texture_resolution",
                                                                                "width")}})
    model_config = meshgan.model_config(config, sizes["num_classes"] or [1])
    fresh = meshgan.build_model(model_config).state_dict()
    notes, parts = [], {"generator_running_avg": ema}
    for part in ("generator", "discriminator"):
        given = chk.get(part)
        parts[part] = given if isinstance(given, dict) else (ema if part == "generator" else None)
        if not isinstance(given, dict):
            notes.append(f"{part} not in the file: " + ("the EMA generator's weights" if part == "generator"
                                                         else "freshly initialised (sampling only)"))
    state = {f"{p}.{k}": v for p, sd in parts.items() if sd is not None for k, v in sd.items()}
    state.update({k: v for k, v in fresh.items() if k.startswith("discriminator.") and parts["discriminator"] is None})
    check_weights(state, path, "key", counters=[k for k in state if k.endswith("num_batches_tracked")])
    keys = {k: config[k] for k in ("dataset", "conditional", "texture_resolution", "width")}
    return model_config, state, keys, notes


def read_reconstruction(path: str | Path, dataset: str | None = None) -> tuple[dict, dict, dict]:
    """A convmesh reconstruction checkpoint → ``(model_config, lmnet state dict, what the original
    training ran with as meshrecon config keys)``; every problem is a one-line error naming the file."""
    path = Path(path)
    chk = imported_run.read_torch_file(path, "convmesh checkpoint")
    if not isinstance(chk, dict) or not isinstance(chk.get("generator"), dict):
        raise CorruptFileError(path, "not a convmesh checkpoint: expected a dict with a 'generator' state dict")
    if "generator_running_avg" in chk or "discriminator" in chk:
        raise ConfigError(f"{path} is a convmesh GAN checkpoint, not a reconstruction one")
    args, name = _dataset_of(chk, path, dataset)
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
    """Convert a convmesh checkpoint into a run folder at ``out``: a meshgan run for a GAN checkpoint
    (one with ``generator_running_avg``), a meshrecon run otherwise."""
    with imported_run.claim({"--out": out}, overwrite, "lmnet import-weights convmesh"):
        chk = imported_run.read_torch_file(checkpoint, "convmesh checkpoint")
        source = {"checkpoint": str(Path(checkpoint).resolve()), "sha256": imported_run.sha256_of(checkpoint)}
        if isinstance(chk, dict) and "generator_running_avg" in chk:
            model_config, state, train_config, notes = read_gan(checkpoint, dataset)
            source.update(format="convmesh-gan", conversion="; ".join(
                ["generator, generator_running_avg and discriminator state dicts taken unchanged", *notes]))
            return {"meshgan": imported_run.write_run(out, model_config, state, train_config, source, overwrite)}
        model_config, state, train_config = read_reconstruction(checkpoint, dataset)
        source.update(format="convmesh-reconstruction", conversion="generator.* and dataset_params.* state dicts "
                                                                   "taken unchanged")
        train_config = {**train_config, "render_size": model_config["image_size"]}
        return {"meshrecon": imported_run.write_run(out, model_config, state, train_config, source, overwrite)}
