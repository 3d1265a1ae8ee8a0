"""What an evaluation of a run needs beyond :mod:`lmnet.eval.official` to follow the released
script: the released pair order, the prediction of a probabilistic (Variant II) model, the
per-pair preparation in the parent process, and the released per-category CSV files.

- **Order** (:func:`released_order`): per category, the models in the order of the split file's
  list, then the views in increasing order (the released ``product(models, range(24))``).
- **Prediction** (:func:`predict`): Variant I → the network's output; Variant II → one sample
  ``z = μ + σ·ε`` per image as released (ε from a torch generator seeded once per evaluation), or
  μ when ``plm_mean`` is set.
- **Streams** (:class:`OfficialFeed`): one subset stream per (method, category), each seeded
  once, so every method sees the subsets the released script would have drawn for the model.
- **Files** (:func:`write_released_csvs`): ``<out>/<stem>/<category>.csv`` with the header
  ``Chamfer, Fwd, Bwd, Emd`` and the category means of the model's pairs, raw units (not ×100).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from lmnet import atomic_io
from lmnet.data.categories import name_of
from lmnet.data.splits import load_split
from lmnet.eval.official import OfficialProtocol, SubsetStream, released_csv
from lmnet.eval.report import keep_previous


def released_order(item_keys: Sequence[tuple[str, int]], split_path: str | Path | None) -> list[int]:
    """Indices of ``item_keys`` (``("synset/model", view)`` per dataset item) in the released order:
    categories sorted, models in the split file's order (sorted when there is no file), views
    ascending."""
    rank: dict[str, int] = {}
    if split_path is not None:
        for ks in load_split(split_path).values():
            for k in ks:
                rank.setdefault(k, len(rank))
    keys = sorted({k for k, _ in item_keys})
    for k in keys:
        rank.setdefault(k, len(rank) + 1_000_000)
    return sorted(range(len(item_keys)),
                  key=lambda i: (item_keys[i][0].split("/", 1)[0], rank[item_keys[i][0]], item_keys[i][1]))


def predict(model, images: torch.Tensor, *, plm_mean: bool, generator: torch.Generator | None):
    """``(B, 3, H, W)`` → ``(preds (B, 2048, 3) numpy, mu (B, D) tensor)``: one sample per image for
    a probabilistic model unless ``plm_mean`` (then μ), the deterministic output otherwise."""
    with torch.no_grad():
        mu, logvar = model.encode_image(images)
        z = mu
        if logvar is not None and not plm_mean:
            eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(mu.device)
            z = mu + eps * torch.exp(0.5 * logvar)
        return model.decoder(z).cpu().numpy(), mu


def prediction_note(probabilistic: bool, plm_mean: bool, seed: int, official: bool = True) -> str:
    """How the prediction was chosen, for the tables."""
    if not probabilistic:
        return "model prediction: the network's deterministic output (Variant I)"
    if not official:
        return "model prediction: the network's deterministic output (μ of Variant II)"
    if plm_mean:
        return "model prediction: μ of Variant II (--plm-mean; the released script samples)"
    return f"model prediction: one sample z = μ + σ·ε per image (Variant II, as released; torch seed {seed})"


class OfficialFeed:
    """Scales and subsamples pairs in the parent process, in submission order, from one subset
    stream per (method, category)."""

    def __init__(self, protocol: OfficialProtocol):
        self.protocol = protocol
        self.stream = SubsetStream(protocol.seed)

    def prepare(self, method: str, preds: Sequence, gts: Sequence, synsets: Sequence[str]):
        """``(pred_subs, gt_scaled)`` lists for one submitted batch."""
        out_p, out_g = [], []
        for p, g, s in zip(preds, gts, synsets):
            a, b = self.protocol.prepare(self.stream, (method, s), p, g)
            out_p.append(a)
            out_g.append(b)
        return out_p, out_g


def write_released_csvs(out_dir: str | Path, stem: str, records: Sequence[Mapping[str, Any]]) -> dict[str, Path]:
    """One released-layout CSV per category of ``records`` (the model's official records) into
    ``out_dir / stem`` (a folder already there is kept aside first, :func:`keep_previous`); returns
    ``{category name: path}``."""
    keep_previous({"folder": Path(out_dir) / stem})
    by_cat: dict[str, list[Mapping[str, Any]]] = {}
    for r in records:
        by_cat.setdefault(str(r["category"]), []).append(r)
    paths = {}
    for syn, recs in sorted(by_cat.items()):
        mean = {k: float(np.mean([r[k] for r in recs])) for k in ("cd", "cd_gt2pred", "cd_pred2gt", "emd_auction")}
        name = name_of(syn)
        path = Path(out_dir) / stem / f"{name}.csv"
        atomic_io.write_text(path, released_csv(mean["cd"], mean["cd_gt2pred"], mean["cd_pred2gt"],
                                                mean["emd_auction"]))
        paths[name] = path
    return paths
