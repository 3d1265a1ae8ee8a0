"""The public PyTorch port's checkpoints (bare ``torch.save(model.state_dict())`` files) → lmnet runs.

Port graph (its keys and shapes: :func:`ae_shapes`, :func:`image_shapes`):

- autoencoder: ``encoder.conv{1..5}`` Conv1d(k=1) **with bias** → ``encoder.bn{1..5}`` → ReLU, max
  over points; ``decoder.fc{1,2}`` Linear + bias → ``decoder.bn{1,2}`` → ReLU; ``decoder.fc3``
  256→6144 reshaped **channel-major**, ``view(-1, 3, 2048)`` (output index ``c·2048 + p``); input
  ``(B, 3, N)``. At import the biases before BN fold into the running means (exact) and the rows of
  ``fc3`` are permuted once to lmnet's point-major ``(2048, 3)`` order (row ``p·3 + c``).
- image encoder: ``base.*`` 16 convs with bias + ReLU, no BN (stride-1 "same", stride-2 unpadded:
  the ``"port"`` preset), FC ``latent`` 2048→512 (Variant I) or ``mu`` and ``std`` (Variant II),
  where ``std`` outputs log σ² (the port computes ``std = sqrt(exp(out))``): it becomes lmnet's
  log σ² head unchanged.

Files are read with ``torch.load(weights_only=True)``: a pickle payload (anything but tensors and
plain containers) is refused, so is anything but a flat ``{str: tensor}`` dict; keys and shapes
are checked strictly, every problem named.
"""

from __future__ import annotations

from pathlib import Path

import torch

from lmnet.errors import CorruptFileError, DataError
from lmnet.models.image_encoder import CONV_LAYOUT
from lmnet.models.point_ae import N_OUTPUT_POINTS
from lmnet.weights import imported_run
from lmnet.weights.values import check_weights

# The port's Sequential indices of the 16 convs, in lmnet's CONV_LAYOUT order.
PORT_CONVS = ("base.0.0", "base.0.2", "base.1", "base.3.0", "base.3.2", "base.4", "base.6.0", "base.6.2", "base.7",
              "base.9.0", "base.9.2", "base.10", "base.12.0", "base.12.2", "base.13", "base.15")
AE_ENCODER = ((3, 64), (64, 128), (128, 128), (128, 256), (256, 512))
AE_DECODER = ((512, 256), (256, 256), (256, 6144))
PORT_VARIANTS = ("l1", "l2", "probabilistic")


def ae_shapes() -> dict[str, tuple[int, ...]]:
    out = {}
    for i, (a, b) in enumerate(AE_ENCODER, 1):
        out[f"encoder.conv{i}.weight"], out[f"encoder.conv{i}.bias"] = (b, a, 1), (b,)
    for i, (_, b) in enumerate(AE_ENCODER, 1):
        out.update(_bn_shapes(f"encoder.bn{i}", b))
    for i, (_, b) in enumerate(AE_DECODER[:2], 1):
        out.update(_bn_shapes(f"decoder.bn{i}", b))
    for i, (a, b) in enumerate(AE_DECODER, 1):
        out[f"decoder.fc{i}.weight"], out[f"decoder.fc{i}.bias"] = (b, a), (b,)
    return out


def _bn_shapes(prefix: str, n: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (n,), f"{prefix}.bias": (n,), f"{prefix}.running_mean": (n,),
            f"{prefix}.running_var": (n,), f"{prefix}.num_batches_tracked": ()}


def image_shapes(variant: str) -> dict[str, tuple[int, ...]]:
    out, c_in = {}, 3
    for key, (k, _, c_out) in zip(PORT_CONVS, CONV_LAYOUT):
        out[f"{key}.weight"], out[f"{key}.bias"] = (c_out, c_in, k, k), (c_out,)
        c_in = c_out
    for head in (("mu", "std") if variant == "probabilistic" else ("latent",)):
        out[f"{head}.weight"], out[f"{head}.bias"] = (512, 2048), (512,)
    return out


def read_state_dict(path: str | Path, what: str) -> dict[str, torch.Tensor]:
    """A bare state-dict file → ``{key: tensor}`` as stored (``weights_only``; anything but a flat
    ``{str: tensor}`` dict is refused)."""
    obj = imported_run.read_torch_file(path, what)
    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise CorruptFileError(path, f"not a state dict (expected a {{name: tensor}} dict as saved by "
                                     f"torch.save(model.state_dict()), got {type(obj).__name__})")
    return obj


def load_state_dict(path: str | Path, expected: dict[str, tuple[int, ...]], what: str,
                    obj: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """A bare state-dict file (or its already read ``obj``) → ``{key: float tensor}``, checked against
    ``expected`` ``{key: shape}`` and for usable values (:func:`~lmnet.weights.values.check_weights`)."""
    path = Path(path)
    obj = read_state_dict(path, what) if obj is None else obj
    diff = key_diff(obj, expected)
    if diff:
        raise CorruptFileError(path, f"not the port's {what} state dict; {diff}")
    for k, shape in expected.items():
        if tuple(obj[k].shape) != tuple(shape):
            raise CorruptFileError(path, f"key {k!r} has shape {list(obj[k].shape)}, expected {list(shape)}")
    check_weights(obj, path, "key", counters=[k for k in obj if k.endswith("num_batches_tracked")])
    return {k: v.float() if v.is_floating_point() else v for k, v in obj.items()}


def key_diff(obj: dict, expected: dict) -> str:
    """``"missing keys: ...; unexpected keys: ..."`` of ``obj`` against ``expected`` ("" when they agree;
    the first 8 of each named, then how many more)."""
    def listed(keys: list[str], limit: int = 8) -> str:
        return ", ".join(keys[:limit]) + (f" (and {len(keys) - limit} more)" if len(keys) > limit else "")

    missing = [k for k in expected if k not in obj]
    extra = [k for k in obj if k not in expected]
    return "; ".join(([f"missing keys: {listed(missing)}"] if missing else []) +
                     ([f"unexpected keys: {listed(extra)}"] if extra else []))


PORT_HEADS = {"l1": "a Variant I image encoder (one head, latent)",
              "probabilistic": "a Variant II image encoder (heads mu and std, the log sigma^2 head)"}


def check_variant(sd: dict[str, torch.Tensor], variant: str, path: str | Path,
                  requested_by: str | None = None) -> None:
    """Refuse an image-encoder state dict whose heads are not those of ``variant`` ("l1" and "l2"
    files have the same head), naming both; files with neither head are left to the key check."""
    found = "probabilistic" if "mu.weight" in sd and "std.weight" in sd else "l1" if "latent.weight" in sd else None
    wanted = "probabilistic" if variant == "probabilistic" else "l1"
    if found is None or found == wanted:
        return
    lost = "drop its log sigma^2 head" if found == "probabilistic" else "need heads it does not have"
    raise CorruptFileError(path, f"holds {PORT_HEADS[found]}, but {requested_by or f'--variant {variant}'} asks for "
                                 f"{PORT_HEADS[wanted]}; importing it as that would {lost} "
                                 f"({key_diff(sd, image_shapes(variant))}): import it with variant "
                                 f"{'probabilistic' if found == 'probabilistic' else 'l1 or l2'}")


def _bn(sd: dict, prefix: str, bias: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"weight": sd[f"{prefix}.weight"], "bias": sd[f"{prefix}.bias"],
            "running_mean": sd[f"{prefix}.running_mean"] - bias, "running_var": sd[f"{prefix}.running_var"],
            "num_batches_tracked": sd[f"{prefix}.num_batches_tracked"]}


def ae_state(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Port autoencoder → :class:`~lmnet.models.PointAutoencoder` state dict."""
    state = {}
    for i in range(len(AE_ENCODER)):
        state[f"encoder.mlp.{3 * i}.weight"] = sd[f"encoder.conv{i + 1}.weight"]
        bn = _bn(sd, f"encoder.bn{i + 1}", sd[f"encoder.conv{i + 1}.bias"])
        state.update({f"encoder.mlp.{3 * i + 1}.{k}": t for k, t in bn.items()})
    for i in range(2):
        state[f"decoder.mlp.{3 * i}.weight"] = sd[f"decoder.fc{i + 1}.weight"]
        bn = _bn(sd, f"decoder.bn{i + 1}", sd[f"decoder.fc{i + 1}.bias"])
        state.update({f"decoder.mlp.{3 * i + 1}.{k}": t for k, t in bn.items()})
    n = N_OUTPUT_POINTS
    w, b = sd["decoder.fc3.weight"], sd["decoder.fc3.bias"]  # rows c*2048 + p → p*3 + c
    state["decoder.mlp.6.weight"] = w.view(3, n, -1).permute(1, 0, 2).reshape(3 * n, -1).contiguous()
    state["decoder.mlp.6.bias"] = b.view(3, n).t().reshape(-1).contiguous()
    return state


def image_state(sd: dict[str, torch.Tensor], variant: str, ae: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Port image encoder (+ the converted autoencoder ``ae``) → :class:`ImageToPointCloud` (``arch="port"``)."""
    state = {}
    for i, key in enumerate(PORT_CONVS):
        state[f"encoder.convs.{2 * i}.weight"] = sd[f"{key}.weight"]
        state[f"encoder.convs.{2 * i}.bias"] = sd[f"{key}.bias"]
    mu = "mu" if variant == "probabilistic" else "latent"
    state["encoder.fc.weight"], state["encoder.fc.bias"] = sd[f"{mu}.weight"], sd[f"{mu}.bias"]
    if variant == "probabilistic":  # the port's "std" head outputs log σ²
        state["logvar_head.weight"], state["logvar_head.bias"] = sd["std.weight"], sd["std.bias"]
    state.update({k: t for k, t in ae.items() if k.startswith("decoder.")})
    return state


def import_port(autoencoder: str | Path, image_encoder: str | Path, variant: str, out: str | Path,
                ae_out: str | Path | None = None, overwrite: bool = False,
                requested_by: str | None = None) -> dict[str, Path]:
    """Convert the port's autoencoder + image-encoder files into an image run at ``out`` (and, with
    ``ae_out``, an autoencoder run). ``variant``: "l1" / "l2" (Variant I) or "probabilistic"; it
    must match the image encoder's heads (:func:`check_variant`; ``requested_by`` names who asked)."""
    if variant not in PORT_VARIANTS:
        raise DataError(f"--variant must be one of {PORT_VARIANTS}, got {variant!r}")
    with imported_run.claim({"--ae-out": ae_out, "--out": out}, overwrite, "lmnet import-weights port"):
        ae_sd = load_state_dict(autoencoder, ae_shapes(), "autoencoder")
        raw = read_state_dict(image_encoder, "image encoder")
        check_variant(raw, variant, image_encoder, requested_by)
        img_sd = load_state_dict(image_encoder, image_shapes(variant), f"image encoder ({variant})", obj=raw)
        ae = ae_state(ae_sd)
        source = {"format": "port", "autoencoder": str(Path(autoencoder).resolve()),
                  "image_encoder": str(Path(image_encoder).resolve()),
                  "sha256": {"autoencoder": imported_run.sha256_of(autoencoder),
                             "image_encoder": imported_run.sha256_of(image_encoder)},
                  "conversion": "autoencoder biases before BN folded into the running means; decoder.fc3 rows "
                                "permuted channel-major -> point-major; 'std' head = log sigma^2 head"}
        written = {}
        if ae_out is not None:
            written["autoencoder"] = imported_run.write_run(ae_out, imported_run.ae_model_config(), ae, {},
                                                            {**source, "part": "autoencoder"}, overwrite,
                                                            "--ae-out")
        img_cfg = {"arch": "port", "variant": variant, "ae_run": str(ae_out) if ae_out is not None else None}
        written["image"] = imported_run.write_run(out, imported_run.image_model_config(variant, "port"),
                                                  image_state(img_sd, variant, ae), img_cfg,
                                                  {**source, "part": "image"}, overwrite)
        return written
