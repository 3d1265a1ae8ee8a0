"""Inception-v3 up to its 2048-d pool3 features, in plain torch (no torchvision), with loaders for
the two published weight files FID is computed with (docs/fid.md#the-two-weight-files).

The module names are torchvision's (``Conv2d_1a_3x3`` … ``Mixed_7c``, ``BasicConv2d`` = conv
without bias + BatchNorm(eps=0.001) + ReLU), so both files load by key:

- ``"torchvision"``: torchvision's ImageNet classifier ``inception_v3_google-0cc3c7bd.pth`` (what
  convmesh's FID uses: its blocks in 4 groups, no ``transform_input``). 1000-class ``fc`` and
  ``AuxLogits.*`` keys, both ignored. Features name ``inception-torchvision``.
- ``"tf-fid"``: pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``, the TF-FID network (standard
  FID). 1008-class ``fc`` (ignored), no ``AuxLogits``; ``Mixed_5b-d``, ``Mixed_6b-e`` and ``Mixed_7b``
  average-pool without counting the padding, ``Mixed_7c`` max-pools in its pool branch (pytorch-fid's
  ``FIDInceptionA/C/E_1/E_2``). Features name ``inception-tf-fid``.

Input: images ``(B, 3, H, W)`` in (0, 1); resized bilinearly to 299×299 (``align_corners=False``),
then mapped to (−1, 1) by ``2x − 1``. Output ``(B, 2048)``: the global average of ``Mixed_7c``.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lmnet.errors import CorruptFileError, DataError

LAYOUTS = ("torchvision", "tf-fid")
#: the features name each layout's numbers are labelled with
FEATURES_NAME = {"torchvision": "inception-torchvision", "tf-fid": "inception-tf-fid"}
#: the pool branch of each block that has one: ``avg`` (padding counted, torch's default),
#: ``avg_nopad`` (padding not counted: TF's 'same' average pool) or ``max``. ``keras`` is the
#: pooling of ``tf.keras.applications.InceptionV3``, used to check the topology against TF.
POOLING = {
    "torchvision": dict.fromkeys(["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                                  "Mixed_6e", "Mixed_7b", "Mixed_7c"], "avg"),
    "tf-fid": {**dict.fromkeys(["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                                "Mixed_6e", "Mixed_7b"], "avg_nopad"), "Mixed_7c": "max"},
}
POOLING["keras"] = dict.fromkeys(POOLING["torchvision"], "avg_nopad")
INPUT_SIZE = 299
FEATURE_DIM = 2048


class BasicConv2d(nn.Module):
    """conv (no bias) → BatchNorm2d(eps=0.001) → ReLU; keys ``conv.weight``, ``bn.*``."""

    def __init__(self, cin: int, cout: int, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _pool3x3(x: torch.Tensor, mode: str) -> torch.Tensor:
    """The 3×3, stride-1, padding-1 pool of a block's pool branch (:data:`POOLING`)."""
    if mode == "max":
        return F.max_pool2d(x, 3, stride=1, padding=1)
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=(mode == "avg"))


class InceptionA(nn.Module):
    """Mixed_5b-d: 1×1 | 1×1→5×5 | 1×1→3×3→3×3 | pool→1×1 → 224 + pool_features channels."""

    def __init__(self, cin: int, pool_features: int, pool: str = "avg"):
        super().__init__()
        self.pool = pool
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x):
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_pool3x3(x, self.pool))], 1)


class InceptionB(nn.Module):
    """Mixed_6a (grid 35 → 17): 3×3/2 | 1×1→3×3→3×3/2 | max-pool/2 → 480 + cin channels."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    """Mixed_6b-e: 1×1 | factorised 7×7 | twice factorised 7×7 | pool→1×1 → 768 channels."""

    def __init__(self, cin: int, channels_7x7: int, pool: str = "avg"):
        super().__init__()
        c7, row, col = channels_7x7, dict(kernel_size=(1, 7), padding=(0, 3)), dict(kernel_size=(7, 1), padding=(3, 0))
        self.pool = pool
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, **row)
        self.branch7x7_3 = BasicConv2d(c7, 192, **col)
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, **col)
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, **row)
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, **col)
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, **row)
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            bd = layer(bd)
        return torch.cat([self.branch1x1(x), b7, bd, self.branch_pool(_pool3x3(x, self.pool))], 1)


class InceptionD(nn.Module):
    """Mixed_7a (grid 17 → 8): 1×1→3×3/2 | 1×1→1×7→7×1→3×3/2 | max-pool/2 → 512 + cin channels."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    """Mixed_7b-c: 1×1 | 1×1→(1×3, 3×1) | 1×1→3×3→(1×3, 3×1) | pool→1×1 → 2048 channels."""

    def __init__(self, cin: int, pool: str = "avg"):
        super().__init__()
        row, col = dict(kernel_size=(1, 3), padding=(0, 1)), dict(kernel_size=(3, 1), padding=(1, 0))
        self.pool = pool
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, **row)
        self.branch3x3_2b = BasicConv2d(384, 384, **col)
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, **row)
        self.branch3x3dbl_3b = BasicConv2d(384, 384, **col)
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x):
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(_pool3x3(x, self.pool))], 1)


class InceptionV3(nn.Module):
    """Inception-v3's feature layers ``(B, 3, H, W)`` in (0, 1) → pool3 ``(B, 2048)``.

    ``pooling``: a key of :data:`POOLING` (``"torchvision"``, ``"tf-fid"`` or ``"keras"``).
    ``resize_input=False`` skips the resize to 299 (the network accepts H, W ≥ 75).
    ``features`` names what the outputs are (:data:`FEATURES_NAME`); set by :func:`load_inception`."""

    def __init__(self, pooling: str = "torchvision", resize_input: bool = True):
        super().__init__()
        if pooling not in POOLING:
            raise ValueError(f"pooling must be one of {', '.join(POOLING)}, got {pooling!r}")
        pool = POOLING[pooling]
        self.resize_input = resize_input
        self.features = FEATURES_NAME.get(pooling, f"inception-{pooling}")
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, 32, pool["Mixed_5b"])
        self.Mixed_5c = InceptionA(256, 64, pool["Mixed_5c"])
        self.Mixed_5d = InceptionA(288, 64, pool["Mixed_5d"])
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128, pool["Mixed_6b"])
        self.Mixed_6c = InceptionC(768, 160, pool["Mixed_6c"])
        self.Mixed_6d = InceptionC(768, 160, pool["Mixed_6d"])
        self.Mixed_6e = InceptionC(768, 192, pool["Mixed_6e"])
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool["Mixed_7b"])
        self.Mixed_7c = InceptionE(2048, pool["Mixed_7c"])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images
        if self.resize_input:
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        x = 2.0 * x - 1.0
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return x.mean(dim=(2, 3))


class _InceptionAux(nn.Module):
    """torchvision's auxiliary classifier; only its keys matter here (it is never run)."""

    def __init__(self, cin: int = 768, classes: int = 1000):
        super().__init__()
        self.conv0 = BasicConv2d(cin, 128, 1)
        self.conv1 = BasicConv2d(128, 768, 5)
        self.fc = nn.Linear(768, classes)


class _ClassifierHeads(nn.Module):
    """The keys a published file holds beside the feature layers: ``fc`` (1000 or 1008 classes) and,
    in torchvision's file, ``AuxLogits``."""

    def __init__(self, layout: str):
        super().__init__()
        if layout == "torchvision":
            self.AuxLogits = _InceptionAux()
        self.fc = nn.Linear(FEATURE_DIM, 1000 if layout == "torchvision" else 1008)


def published_state_shapes(layout: str) -> dict[str, tuple[int, ...]]:
    """``{key: shape}`` of the published weight file of ``layout`` (module docstring), BatchNorm
    ``num_batches_tracked`` counters included (a file may leave them out)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    with torch.device("meta"):
        parts = (InceptionV3(layout), _ClassifierHeads(layout))
        return {k: tuple(v.shape) for part in parts for k, v in part.state_dict().items()}


def detect_layout(state: dict) -> str | None:
    """The layout of a state dict from its keys: ``AuxLogits.*`` or a 1000-class ``fc`` →
    ``"torchvision"``, a 1008-class ``fc`` → ``"tf-fid"``; ``None`` when neither."""
    fc = state.get("fc.weight")
    if any(k.startswith("AuxLogits.") for k in state) or (fc is not None and tuple(fc.shape) == (1000, FEATURE_DIM)):
        return "torchvision"
    if fc is not None and tuple(fc.shape) == (1008, FEATURE_DIM):
        return "tf-fid"
    return None


def _first_mismatch(state: dict, expected: dict[str, tuple[int, ...]]) -> str | None:
    """The first bad key of ``state`` against ``expected`` (in the file's order, then the expected
    order), as a phrase; ``None`` when every key is there with its shape."""
    for key, value in state.items():
        if key not in expected:
            return f"unexpected key {key!r}"
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != expected[key]:
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            return f"{key}: shape {got}, expected {expected[key]}"
    for key in expected:
        if key not in state and not key.endswith("num_batches_tracked"):
            return f"missing key {key!r}"
    return None


def load_inception(path: str | Path, layout: str = "auto", resize_input: bool = True) -> InceptionV3:
    """A published Inception-v3 weight file → :class:`InceptionV3` in eval mode on the CPU, its
    ``features`` set to the layout's name (``inception-torchvision`` / ``inception-tf-fid``).

    ``layout``: ``"torchvision"``, ``"tf-fid"`` or ``"auto"`` (:func:`detect_layout`). The file is
    read with ``torch.load(weights_only=True)``; it must hold exactly the keys and shapes of
    :func:`published_state_shapes` (``num_batches_tracked`` optional). A missing file → DataError;
    an unreadable one, an unknown layout, a missing or unexpected key or a wrong shape → one-line
    CorruptFileError naming the file and the first bad key. The classifier keys are checked and
    not loaded."""
    path = Path(path)
    if layout not in ("auto", *LAYOUTS):
        raise ValueError(f"layout must be auto, {', '.join(LAYOUTS)}; got {layout!r}")
    if not path.is_file():
        raise DataError(f"{path}: no such Inception-v3 weights file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or foreign files raise many different types
        first = (str(exc).splitlines() or [""])[0]
        raise CorruptFileError(path, f"cannot load Inception-v3 weights ({type(exc).__name__}: {first})") from None
    if not isinstance(state, dict):
        raise CorruptFileError(path, f"expected a state dict of tensors, got {type(state).__name__}")
    found = detect_layout(state) if layout == "auto" else layout
    if found is None:
        raise CorruptFileError(path, "not an Inception-v3 state dict of torchvision's (fc 1000×2048, AuxLogits) "
                                     "or pytorch-fid's (fc 1008×2048) layout")
    bad = _first_mismatch(state, published_state_shapes(found))
    if bad is not None:
        raise CorruptFileError(path, f"{bad} (layout {found})")
    model = InceptionV3(found, resize_input=resize_input)
    own = model.state_dict()
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    return model.eval()
