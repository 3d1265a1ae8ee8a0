"""Baselines that need no image network, reported as rows of the same tables.

- **Mean shape** (per category, one cloud answers every image of that category):
  * with an autoencoder: decode the mean of the category's training-shape AE latents
    (:func:`mean_latent_shapes`, method label ``"mean shape (decoded mean AE latent)"``);
  * without one: the training shape whose mean Chamfer distance to the other training shapes is
    lowest, the category *medoid* (:func:`medoid_shapes`, label ``"mean shape (medoid training
    shape)"``). The search uses a seeded subset of at most ``max_shapes`` shapes, each subsampled to
    ``n_points`` points, because the exact medoid is O(n²) Chamfers.
  Note: the mean-shape baseline uses the GT category (an oracle on the class, as usual for it).
- **Nearest training shape** (:func:`nearest_training_shape`): retrieval without any oracle — the
  image latent is compared with the AE latents of all training shapes (every category) and the
  training shape with the nearest latent (Euclidean) is the answer; its ground-truth cloud is the
  prediction.

- **AE ceiling** (:meth:`BaselineAnswers.reconstruct`, label ``"AE ceiling (autoencoder on own
  GT pointcloud_2048)"``): the run's autoencoder encoding each test shape's own ground-truth cloud and
  decoding it, what the image network would reach with a perfect latent. Not a baseline: a reference
  from above, kept out of the gap-closed baseline ``B`` (:mod:`lmnet.eval.gap`).

For an evaluation (:mod:`lmnet.eval.runner`), :func:`prepare_baselines` builds both baselines from a
run's autoencoder (``config["ae_run"]``) and the training shapes (:class:`TrainingShapes`), falling
back to the medoid when there is no loadable autoencoder; :meth:`BaselineAnswers.answers` then gives
each batch's baseline clouds. A dataset without training shapes gets only the autoencoder
(:func:`autoencoder_only`), for the AE ceiling.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from lmnet.data import layout
from lmnet.errors import DataError
from lmnet.losses.chamfer import chamfer_distance
from lmnet.registry import load_model

MEAN_LATENT_LABEL = "mean shape (decoded mean AE latent)"
MEDOID_LABEL = "mean shape (medoid training shape)"
NEAREST_LABEL = "nearest training shape (latent retrieval)"
AE_CEILING_LABEL = "AE ceiling (autoencoder on own GT pointcloud_2048)"


def mean_latent_shapes(latents_by_category: Mapping[str, np.ndarray | torch.Tensor],
                       decode: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, np.ndarray]:
    """``{synset: (n, D) training AE latents}`` and ``decode((B, D)) -> (B, P, 3)`` →
    ``{synset: (P, 3) float32}``, the decoded mean latent of each category."""
    syns = sorted(latents_by_category)
    if not syns:
        return {}
    means = []
    for s in syns:
        z = torch.as_tensor(np.asarray(latents_by_category[s]), dtype=torch.float32)
        if z.ndim != 2 or z.shape[0] == 0:
            raise ValueError(f"mean_latent_shapes: category {s}: expected (n>=1, D) latents, got {tuple(z.shape)}")
        means.append(z.mean(dim=0))
    with torch.no_grad():
        clouds = decode(torch.stack(means)).detach().cpu().numpy().astype(np.float32)
    return {s: clouds[i] for i, s in enumerate(syns)}


def _pairwise_chamfer(clouds: torch.Tensor, batch: int = 16) -> torch.Tensor:
    """``(n, P, 3)`` → ``(n, n)`` Chamfer (:func:`lmnet.losses.chamfer.chamfer_distance`: mean Euclidean
    NN distance both ways, summed), by its brute-force ``cdist`` backend ``batch`` pairs at a time."""
    n = clouds.shape[0]
    out = torch.zeros(n, n, dtype=clouds.dtype)
    for i in range(n):
        a = clouds[i]
        for j0 in range(0, n, batch):
            b = clouds[j0:j0 + batch]
            out[i, j0:j0 + b.shape[0]] = chamfer_distance(a.expand(b.shape[0], -1, -1), b, reduction="none",
                                                          backend="brute")
    return out


def medoid_index(clouds, *, max_shapes: int = 128, n_points: int = 512, seed: int = 0) -> int:
    """Index (into ``clouds``) of the shape with the lowest mean Chamfer distance to the others.

    ``clouds``: ``(n, P, 3)`` array. With more than ``max_shapes`` shapes, a seeded random subset of
    ``max_shapes`` is searched; each cloud is subsampled (seeded) to ``n_points`` points.
    """
    arr = np.asarray(clouds, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0:
        raise ValueError(f"medoid_index: expected (n>=1, P, 3) clouds, got {arr.shape}")
    rng = np.random.default_rng(seed)
    cand = np.arange(arr.shape[0])
    if arr.shape[0] > max_shapes:
        cand = np.sort(rng.choice(arr.shape[0], size=max_shapes, replace=False))
    sub = arr[cand]
    if sub.shape[1] > n_points:
        sub = sub[:, np.sort(rng.choice(sub.shape[1], size=n_points, replace=False))]
    if len(cand) == 1:
        return int(cand[0])
    d = _pairwise_chamfer(torch.from_numpy(sub))
    score = d.sum(dim=1) / (len(cand) - 1)  # diagonal is 0
    return int(cand[int(torch.argmin(score))])


def medoid_shapes(clouds_by_category: Mapping[str, np.ndarray], **kwargs) -> dict[str, np.ndarray]:
    """``{synset: (n, P, 3) training clouds}`` → ``{synset: (P, 3)}`` medoid cloud per category
    (keyword arguments go to :func:`medoid_index`)."""
    return {s: np.asarray(c, dtype=np.float32)[medoid_index(c, **kwargs)]
            for s, c in sorted(clouds_by_category.items())}


def nearest_training_shape(query_latents, train_latents) -> np.ndarray:
    """``(B, D)`` image latents, ``(M, D)`` training AE latents → ``(B,)`` int64 index of the
    training shape whose latent is nearest (Euclidean; ties → the lowest index)."""
    q = torch.as_tensor(np.asarray(query_latents), dtype=torch.float32)
    t = torch.as_tensor(np.asarray(train_latents), dtype=torch.float32)
    if q.ndim != 2 or t.ndim != 2 or q.shape[1] != t.shape[1] or t.shape[0] == 0:
        raise ValueError(f"nearest_training_shape: expected (B, D) and (M>=1, D), got "
                         f"{tuple(q.shape)} and {tuple(t.shape)}")
    out = []
    for i in range(0, q.shape[0], 1024):
        out.append(torch.cdist(q[i:i + 1024].double(), t.double()).argmin(dim=1))
    return torch.cat(out).numpy().astype(np.int64) if out else np.zeros(0, dtype=np.int64)


@dataclass
class TrainingShapes:
    """The shapes the baselines may use: ``keys`` (``"synset/model"``, none of the evaluated split)
    of the ``categories`` (synsets) under the ShapeNet ``root``."""

    root: Path
    keys: list[str]
    categories: list[str]


class _CloudCache:
    """LRU of training clouds read by key (nearest-shape retrieval reuses popular shapes)."""

    def __init__(self, root: Path, n_points: int, size: int = 4096):
        self.root, self.n_points, self.size = root, n_points, size
        self._d: OrderedDict[str, np.ndarray] = OrderedDict()

    def __getitem__(self, key: str) -> np.ndarray:
        if key in self._d:
            self._d.move_to_end(key)
            return self._d[key]
        arr = layout.read_model_pointcloud(self.root, key, self.n_points)
        self._d[key] = arr
        if len(self._d) > self.size:
            self._d.popitem(last=False)
        return arr


@dataclass
class BaselineAnswers:
    """The baselines of one evaluation: ``mean_shape`` (``{synset: (P, 3)}``, labelled
    ``mean_label``), and, with an autoencoder, the training ``latents (M, D)`` of ``keys`` whose
    clouds :meth:`answers` retrieves. ``medoid_keys``: ``{synset: key}`` of the medoid fallback.
    ``ae``: the run's autoencoder (``None`` without one), for :meth:`reconstruct`, reading
    ``ae_points``-point clouds. Empty (no answers) when the dataset has no baselines."""

    mean_shape: dict[str, np.ndarray] = field(default_factory=dict)
    mean_label: str | None = None
    medoid_keys: dict[str, str] = field(default_factory=dict)
    latents: np.ndarray | None = None
    keys: list[str] = field(default_factory=list)
    clouds: _CloudCache | None = None
    ae: Any = None
    ae_points: int = 2048

    @property
    def labels(self) -> list[str]:
        """The baseline methods these answers give (those the gap-closed ``B`` is taken from)."""
        return [m for m, on in ((self.mean_label, bool(self.mean_shape)), (NEAREST_LABEL, self.latents is not None))
                if on and m]

    def reconstruct(self, clouds: Sequence[np.ndarray]) -> np.ndarray:
        """The AE ceiling: ``B`` GT clouds ``(ae_points, 3)`` → ``(B, P, 3)`` float32, each encoded
        and decoded by the autoencoder (on its own device)."""
        dev = next(self.ae.parameters()).device
        with torch.no_grad():
            x = torch.as_tensor(np.stack(clouds), dtype=torch.float32, device=dev)
            return self.ae.decode(self.ae.encode(x)).cpu().numpy()

    def answers(self, synsets: Sequence[str], mu: torch.Tensor) -> list[tuple[str, list[int], list[Any]]]:
        """For one batch (GT ``synsets``, image latents ``mu (B, D)``): ``(label, item indices,
        clouds)`` per baseline, the mean shape for the items whose category has one, then the
        nearest training shape for every item."""
        out = []
        if self.mean_shape:
            sel = [i for i, s in enumerate(synsets) if s in self.mean_shape]
            out.append((self.mean_label, sel, [self.mean_shape[synsets[i]] for i in sel]))
        if self.latents is not None:
            idx = nearest_training_shape(mu.cpu().numpy(), self.latents)
            out.append((NEAREST_LABEL, list(range(len(synsets))), [self.clouds[self.keys[j]] for j in idx]))
        return out


def _encode_training_shapes(ae, root: Path, keys: Sequence[str], n_points: int, device, batch: int = 64):
    lat = []
    for i in range(0, len(keys), batch):
        pts = np.stack([layout.read_model_pointcloud(root, k, n_points) for k in keys[i:i + batch]])
        with torch.no_grad():
            lat.append(ae.encode(torch.from_numpy(pts).to(device)).cpu())
    return torch.cat(lat).numpy()


def _load_autoencoder(config: Mapping[str, Any], device, notes: list[str],
                      consequence: str = "mean shape falls back to the medoid, no AE ceiling"):
    """``(ae model or None, its n_points)`` of the run's ``ae_run``; a run that does not load is
    noted, with its ``consequence``."""
    if config.get("ae_run"):
        try:
            ae, ae_cfg = load_model(config["ae_run"], which=config.get("ae_which", "best"), device=device)
            return ae, int(ae_cfg.get("n_points", 2048))
        except DataError as exc:
            notes.append(f"autoencoder run not loadable ({exc}); {consequence}")
    return None, 2048


def _ae_ceiling_note(n_points: int) -> str:
    return (f"'{AE_CEILING_LABEL}': the run's autoencoder encodes each test shape's own GT "
            f"pointcloud_{n_points} and decodes it (what a perfect image latent would give); a reference, "
            "not a baseline")


def autoencoder_only(config: Mapping[str, Any], *, device: str = "cpu") -> tuple[BaselineAnswers, list[str]]:
    """No baselines, only the run's autoencoder for the AE ceiling (a dataset without training
    shapes); with no loadable autoencoder, empty answers."""
    notes: list[str] = []
    ae, n_points = _load_autoencoder(config, device, notes, consequence="no AE ceiling")
    if ae is not None:
        notes.append(_ae_ceiling_note(n_points))
    return BaselineAnswers(ae=ae, ae_points=n_points), notes


def _mean_latent(out: BaselineAnswers, ae, decode, shapes: TrainingShapes, n_points: int, device,
                 notes: list[str]) -> None:
    """Mean shape = the decoded mean AE latent per category; nearest shape by AE latent."""
    keys = shapes.keys
    out.latents, out.keys = _encode_training_shapes(ae, shapes.root, keys, n_points, device), keys
    by_cat: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        by_cat.setdefault(k.split("/", 1)[0], []).append(i)
    out.mean_shape = mean_latent_shapes({s: out.latents[ix] for s, ix in by_cat.items()}, decode)
    out.mean_label = MEAN_LATENT_LABEL
    notes.append(f"'{MEAN_LATENT_LABEL}': the frozen AE decoder applied to the mean AE latent of "
                 f"the category's {len(keys)} training shapes (the GT category is known: an oracle on class)")
    notes.append(f"'{NEAREST_LABEL}': image latent (μ) → nearest training AE latent (Euclidean, over "
                 f"all {len(keys)} training shapes of the evaluated categories) → that shape's "
                 f"pointcloud_{n_points}")


def _medoids(out: BaselineAnswers, shapes: TrainingShapes, max_shapes: int, notes: list[str]) -> None:
    """Mean shape = the medoid training shape per category (no autoencoder: no nearest shape)."""
    for s in shapes.categories:
        rng = np.random.default_rng([0, int(s) if s.isdigit() else 0])  # per category
        ks = [k for k in shapes.keys if k.startswith(s + "/")]
        if not ks:
            continue
        if len(ks) > max_shapes:
            ks = [ks[i] for i in np.sort(rng.choice(len(ks), max_shapes, replace=False))]
        clouds = np.stack([out.clouds[k] for k in ks])
        j = medoid_index(clouds, max_shapes=max_shapes)
        out.mean_shape[s] = clouds[j]
        out.medoid_keys[s] = ks[j]
    out.mean_label = MEDOID_LABEL
    notes.append(f"'{MEDOID_LABEL}': no autoencoder; per category the training shape with the lowest "
                 f"mean Chamfer to the others (searched over a seeded subset of <= {max_shapes}): "
                 + ", ".join(out.medoid_keys.values()))
    notes.append(f"'{NEAREST_LABEL}' skipped: needs the autoencoder's latents")


def prepare_baselines(model, config: Mapping[str, Any], shapes: TrainingShapes, *, device: str = "cpu",
                      medoid_max_shapes: int = 128) -> tuple[BaselineAnswers, list[str]]:
    """The baselines of an evaluation of the image ``model`` (its ``decoder`` decodes the mean
    latents) and the notes that describe them: with the run's autoencoder (``config["ae_run"]``,
    ``config["ae_which"]``) the decoded mean AE latent and the nearest training shape, without one
    the medoid (:func:`medoid_index`, at most ``medoid_max_shapes`` shapes searched per category);
    the autoencoder is kept for the AE ceiling. No training shapes: no baselines, and a note says so."""
    notes: list[str] = []
    if not shapes.keys:
        out, ae_notes = autoencoder_only(config, device=device)
        return out, ["baselines skipped: no training shapes outside the evaluated split"] + ae_notes
    ae, n_points = _load_autoencoder(config, device, notes)
    out = BaselineAnswers(clouds=_CloudCache(shapes.root, n_points), ae=ae, ae_points=n_points)
    if ae is not None:
        _mean_latent(out, ae, lambda z: model.decoder(z.to(device)), shapes, n_points, device, notes)
        notes.append(_ae_ceiling_note(n_points))
    else:
        _medoids(out, shapes, medoid_max_shapes, notes)
    return out, notes
