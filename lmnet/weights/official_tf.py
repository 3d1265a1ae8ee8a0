"""The official 3D-LMNet TensorFlow checkpoints (``lm``, ``plm``) → lmnet state dicts and run folders.

Variable names and layouts of the official graph (TFLearn under ``tf.compat.v1``):

- ``psgn_vars/Conv2D{,_1…_15}/{W,b}``: the 16 image convs, ``W [kh, kw, in, out]`` → torch
  ``[out, in, kh, kw]``; "same" padding, + b, ReLU → the ``"official"`` preset.
- ``psgn_vars/FullyConnected/{W,b}`` ``W [8192, 512]`` whose rows follow the NHWC flattening of the
  4×4×512 map; the preset flattens NHWC too, so ``fc.weight = W.T``. ``plm`` has a second head
  ``psgn_vars/FullyConnected_1`` (log σ²) on the same features; ``FullyConnected`` is μ.
- ``pointnet_ae/pointnet_ae/encoder_conv_layer_{0..4}/{W,b}`` ``W [1, 1, in, out]`` and
  ``decoder_fc_{0,1}/{W,b}`` ``W [in, out]``, each followed by ``<name>_bnorm/{beta, gamma,
  moving_mean, moving_variance}`` (TFLearn BN, ε = 1e-5, inference on the moving statistics) and
  ReLU; ``decoder_fc_2/{W,b}`` ``[256, 6144]`` linear, reshaped point-major to ``(2048, 3)``.
  The bias before a BN folds into it exactly: ``BN(Wx + b)`` with mean ``m`` equals ``BN(Wx)``
  with mean ``m − b``, so lmnet's bias-free autoencoder holds these weights unchanged in value.

Also in the files but not weights: ``beta1_power``, ``beta2_power``, ``is_training`` and the Adam
slots ``…/Adam``, ``…/Adam_1``; they are not read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lmnet.errors import CorruptFileError, DataError
from lmnet.models.image_encoder import CONV_LAYOUT
from lmnet.models.point_ae import DECODER_WIDTHS, ENCODER_CHANNELS
from lmnet.weights import imported_run, tf_checkpoint
from lmnet.weights.values import check_weights

AE_SCOPE = "pointnet_ae/pointnet_ae"
IMG_SCOPE = "psgn_vars"
BN_FIELDS = ("beta", "gamma", "moving_mean", "moving_variance")


def conv_names() -> list[str]:
    return [f"{IMG_SCOPE}/Conv2D" + (f"_{i}" if i else "") for i in range(len(CONV_LAYOUT))]


def image_shapes(variant: str) -> dict[str, tuple[int, ...]]:
    """Expected ``{name: shape}`` of the image-network weights (``variant`` "l1" or "probabilistic")."""
    out, c_in = {}, 3
    for name, (k, _, c_out) in zip(conv_names(), CONV_LAYOUT):
        out[f"{name}/W"], out[f"{name}/b"] = (k, k, c_in, c_out), (c_out,)
        c_in = c_out
    heads = ["FullyConnected", "FullyConnected_1"] if variant == "probabilistic" else ["FullyConnected"]
    for h in heads:
        out[f"{IMG_SCOPE}/{h}/W"], out[f"{IMG_SCOPE}/{h}/b"] = (8192, 512), (512,)
    return out


def ae_shapes() -> dict[str, tuple[int, ...]]:
    """Expected ``{name: shape}`` of the autoencoder weights."""
    out = {}
    layers = [(f"encoder_conv_layer_{i}", (1, 1, a, b))
              for i, (a, b) in enumerate(zip(ENCODER_CHANNELS[:-1], ENCODER_CHANNELS[1:]))]
    layers += [(f"decoder_fc_{i}", (a, b)) for i, (a, b) in enumerate(zip(DECODER_WIDTHS[:-1], DECODER_WIDTHS[1:]))]
    for name, w in layers:
        out[f"{AE_SCOPE}/{name}/W"], out[f"{AE_SCOPE}/{name}/b"] = w, (w[-1],)
        for f in BN_FIELDS:
            out[f"{AE_SCOPE}/{name}_bnorm/{f}"] = (w[-1],)
    out[f"{AE_SCOPE}/decoder_fc_2/W"], out[f"{AE_SCOPE}/decoder_fc_2/b"] = (256, 6144), (6144,)
    return out


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def _bn(v: dict, name: str, bias: np.ndarray) -> dict[str, torch.Tensor]:
    b = f"{AE_SCOPE}/{name}_bnorm"
    return {"weight": _t(v[f"{b}/gamma"]), "bias": _t(v[f"{b}/beta"]),
            "running_mean": _t(v[f"{b}/moving_mean"] - bias), "running_var": _t(v[f"{b}/moving_variance"]),
            "num_batches_tracked": torch.tensor(0, dtype=torch.long)}


def ae_state(v: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """TF autoencoder variables → :class:`~lmnet.models.PointAutoencoder` state dict (biases folded)."""
    state = {}
    for i in range(len(ENCODER_CHANNELS) - 1):
        name = f"encoder_conv_layer_{i}"
        w, b = v[f"{AE_SCOPE}/{name}/W"], v[f"{AE_SCOPE}/{name}/b"]
        state[f"encoder.mlp.{3 * i}.weight"] = _t(w[0, 0].T[:, :, None])  # [1,1,in,out] → [out,in,1]
        state.update({f"encoder.mlp.{3 * i + 1}.{k}": t for k, t in _bn(v, name, b).items()})
    for i in range(len(DECODER_WIDTHS) - 1):
        name = f"decoder_fc_{i}"
        w, b = v[f"{AE_SCOPE}/{name}/W"], v[f"{AE_SCOPE}/{name}/b"]
        state[f"decoder.mlp.{3 * i}.weight"] = _t(w.T)
        state.update({f"decoder.mlp.{3 * i + 1}.{k}": t for k, t in _bn(v, name, b).items()})
    last = 3 * (len(DECODER_WIDTHS) - 1)
    state[f"decoder.mlp.{last}.weight"] = _t(v[f"{AE_SCOPE}/decoder_fc_2/W"].T)  # point-major already
    state[f"decoder.mlp.{last}.bias"] = _t(v[f"{AE_SCOPE}/decoder_fc_2/b"])
    return state


def image_state(v: dict[str, np.ndarray], variant: str) -> dict[str, torch.Tensor]:
    """TF variables → :class:`~lmnet.models.ImageToPointCloud` (``arch="official"``) state dict."""
    state = {}
    for i, name in enumerate(conv_names()):
        state[f"encoder.convs.{2 * i}.weight"] = _t(v[f"{name}/W"].transpose(3, 2, 0, 1))
        state[f"encoder.convs.{2 * i}.bias"] = _t(v[f"{name}/b"])
    state["encoder.fc.weight"] = _t(v[f"{IMG_SCOPE}/FullyConnected/W"].T)  # rows NHWC = the preset's flatten
    state["encoder.fc.bias"] = _t(v[f"{IMG_SCOPE}/FullyConnected/b"])
    if variant == "probabilistic":
        state["logvar_head.weight"] = _t(v[f"{IMG_SCOPE}/FullyConnected_1/W"].T)
        state["logvar_head.bias"] = _t(v[f"{IMG_SCOPE}/FullyConnected_1/b"])
    state.update({k: t for k, t in ae_state(v).items() if k.startswith("decoder.")})
    return state


def detect_variant(path: str | Path) -> str:
    """``"probabilistic"`` (a ``plm`` checkpoint: a second head ``FullyConnected_1``) or ``"l1"`` (``lm``)."""
    return "probabilistic" if f"{IMG_SCOPE}/FullyConnected_1/W" in tf_checkpoint.list_variables(path) else "l1"


VARIANT_HEADS = {"l1": "Variant I (the lm model: one head, psgn_vars/FullyConnected)",
                 "probabilistic": "Variant II (the plm model: a second, log sigma^2 head psgn_vars/FullyConnected_1)"}


def check_variant(prefix: Path, variant: str | None, requested_by: str | None = None) -> str:
    """The variant to import: ``variant`` when the checkpoint's heads match it, the detected one when
    ``variant`` is None; a mismatch (a plm imported as lm would silently lose its log σ² head) is
    refused naming both. ``requested_by`` says who asked for ``variant`` (default ``--variant ...``)."""
    if variant is not None and variant not in VARIANT_HEADS:
        raise DataError(f"variant must be one of {tuple(VARIANT_HEADS)} for an official checkpoint, got {variant!r}")
    found = detect_variant(prefix)
    if variant is None or variant == found:
        return found
    lost = "drop its log sigma^2 head" if found == "probabilistic" else "need a log sigma^2 head it does not have"
    raise CorruptFileError(f"{prefix}.index", f"holds {VARIANT_HEADS[found]}, but "
                                              f"{requested_by or f'--variant {variant}'} asks for "
                                              f"{VARIANT_HEADS[variant]}; importing it as that would {lost}: "
                                              f"import it as variant {found!r}")


def import_official(checkpoint: str | Path, out: str | Path, ae_out: str | Path | None = None,
                    variant: str | None = None, overwrite: bool = False,
                    requested_by: str | None = None) -> dict[str, Path]:
    """Convert an official ``lm`` / ``plm`` checkpoint into an image run at ``out`` (Variant I, L1, or
    Variant II) and, with ``ae_out``, the autoencoder into an autoencoder run. Returns the folders.
    ``variant`` None: detected; given, it must match the checkpoint (:func:`check_variant`)."""
    with imported_run.claim({"--ae-out": ae_out, "--out": out}, overwrite, "lmnet import-weights official-tf"):
        prefix = tf_checkpoint.resolve_prefix(checkpoint)
        variant = check_variant(prefix, variant, requested_by)
        shapes = {**image_shapes(variant), **ae_shapes()}
        v = tf_checkpoint.read_checkpoint(prefix, names=list(shapes), shapes=shapes)
        files = [Path(f"{prefix}.index")] + sorted(Path(prefix).parent.glob(f"{Path(prefix).name}.data-*"))
        check_weights(v, files[1] if len(files) == 2 else prefix)  # one data shard (the published files): name it
        source = {"format": "official-tf", "checkpoint": str(Path(prefix).resolve()),
                  "files": {f.name: imported_run.sha256_of(f) for f in files},
                  "experiment": "plm" if variant == "probabilistic" else "lm",
                  "conversion": "conv W [kh,kw,in,out] -> [out,in,kh,kw]; FC W.T (NHWC rows kept, arch "
                                "'official'); autoencoder biases before BN folded into the BN running mean"}
        written = {}
        ae_cfg = {**imported_run.OFFICIAL_SPLITS, "lr": 5e-4, "batch_size": 32, "epochs": 500,
                  "chamfer_weights": [1.0, 0.5]}  # the original code's operator-precedence weights
        if ae_out is not None:
            written["autoencoder"] = imported_run.write_run(ae_out, imported_run.ae_model_config(), ae_state(v),
                                                            ae_cfg, {**source, "part": "autoencoder"}, overwrite,
                                                            "--ae-out")
        img_cfg = {**imported_run.OFFICIAL_SPLITS, "arch": "official", "variant": variant, "lr": 5e-5,
                   "batch_size": 32, "epochs": 50, "ae_run": str(ae_out) if ae_out is not None else None}
        written["image"] = imported_run.write_run(out, imported_run.image_model_config(variant, "official"),
                                                  image_state(v, variant), img_cfg, {**source, "part": "image"},
                                                  overwrite)
        return written


def random_variables(variant: str = "l1", seed: int = 0) -> dict[str, np.ndarray]:
    """Stand-in weights with the official names and shapes (He-scaled convs / FCs, plausible BN
    statistics): a checkpoint in the published format where the real one is not at hand (the
    notebooks' published-model section, tests). Predictions from it are meaningless shapes."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in {**image_shapes(variant), **ae_shapes()}.items():
        if name.endswith("/W"):
            w = rng.standard_normal(size=shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / np.prod(shape[:-1])))
            out[name] = w * np.float32(0.02) if name.endswith("FullyConnected_1/W") else w  # small log σ²
        elif name.endswith(("moving_variance", "gamma")):
            out[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        else:
            out[name] = (rng.standard_normal(size=shape, dtype=np.float32) * np.float32(0.05))
    if variant == "probabilistic":
        out[f"{IMG_SCOPE}/FullyConnected_1/b"] = np.full(512, -6.0, np.float32)  # σ ≈ 0.05
    # the output layer: a ball of radius 0.3 (point-major) plus a small latent-dependent part, so
    # the stand-in's clouds stay inside the unit frame and render
    ball = rng.standard_normal((2048, 3))
    ball = 0.3 * ball / np.linalg.norm(ball, axis=1, keepdims=True) * rng.uniform(0, 1, (2048, 1)) ** (1 / 3)
    out[f"{AE_SCOPE}/decoder_fc_2/b"] = ball.astype(np.float32).reshape(-1)
    out[f"{AE_SCOPE}/decoder_fc_2/W"] *= np.float32(0.0003)
    return out
