"""One evaluation runner for every dataset: :func:`evaluate` loads an image run folder
(:func:`lmnet.registry.load_model`), predicts every item, refuses predictions that are not finite
(naming the item), evaluates each (prediction, ground truth) pair with the chosen protocol in worker
processes while the network keeps predicting (:class:`lmnet.eval.parallel.PairEvaluator`), adds the
baselines (:mod:`lmnet.eval.baselines`), the floor (each item's own GT ``pointcloud_2048`` as the
prediction, :meth:`Source.own_clouds`) and the AE ceiling as extra methods (``baselines=False``: none
of them), and writes the reports, with the gap-closed columns (:mod:`lmnet.eval.gap`), into the run folder
(:func:`lmnet.eval.report.write_report`: ``eval_<stem>.{csv,md}``, ``eval_<stem>_pairs.csv``; with the
official protocol ``eval_<stem>_official.*`` and the released ``eval_<stem>_official/<category>.csv``;
with another paper's protocol, :mod:`lmnet.eval.protocols`, ``eval_<stem>_<name>.*``, its pairs first
moved into their view's camera frame where the protocol asks for it, :mod:`lmnet.eval.camera_frame`).

What differs between datasets is a small :class:`Source`: how the items are opened from the run's
config, their order, their keys and per-pair fields, the notes that describe them, and the training
shapes of the baselines (if any). The sources: :class:`lmnet.eval.run.ShapeNetSource` (renderings of
a split) and :class:`lmnet.eval.pix3d_run.Pix3DSource` (real photographs). How the run is evaluated,
whatever the dataset, is an :class:`EvalOptions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from lmnet.errors import ConfigError
from lmnet.eval import camera_frame
from lmnet.eval import official_run as orun
from lmnet.eval.baselines import AE_CEILING_LABEL, BaselineAnswers, TrainingShapes, autoencoder_only, prepare_baselines
from lmnet.eval.official import COLUMN_TITLES as OFFICIAL_TITLES
from lmnet.eval.official import METRICS as OFFICIAL_METRICS
from lmnet.eval.official import OfficialProtocol
from lmnet.eval.parallel import PairEvaluator
from lmnet.eval.protocol import Protocol
from lmnet.eval.protocols import PaperProtocol, is_paper_protocol
from lmnet.eval.report import write_report
from lmnet.registry import load_model, require_kind
from lmnet.runs.predictions import check_finite

MODEL_LABEL = "model"  #: the method name of the network's own rows
FLOOR_POINTS = 2048  #: the floor's prediction: each item's own GT cloud of this many points


def _check_count(name: str, value: Any, low: int, hint: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be a whole number >= {low}{hint}, got {value!r}")


@dataclass(frozen=True)
class EvalOptions:
    """How a run is evaluated, whatever the dataset; checked on construction (:class:`ConfigError`).

    - ``which``: the checkpoint, ``"best"`` or ``"last"``;
    - ``protocol``: :class:`~lmnet.eval.protocol.Protocol` (lmnet's; ``None`` = its defaults) or
      :class:`~lmnet.eval.official.OfficialProtocol` (the released computation, in the released
      pair order), or another paper's protocol (:mod:`lmnet.eval.protocols`: pix3d, meshrcnn, p2m);
    - ``baselines``: add the baseline methods where the dataset has training shapes (ShapeNet), the
      floor where it has the items' own clouds and the AE ceiling where the run has an autoencoder;
    - ``workers``: evaluation processes (``<= 1``: in this process); ``batch_size``: images per
      prediction batch (>= 1); ``device``: the network's torch device;
    - ``max_items``: evaluate only the first N items (0 = all), for quick checks;
    - ``medoid_max_shapes``: training shapes searched per category by the medoid fallback (>= 1);
    - ``plm_mean``: official protocol, Variant II run: evaluate μ instead of one sample per image
      (lmnet's protocol always evaluates μ).
    """

    which: str = "best"
    protocol: Protocol | OfficialProtocol | PaperProtocol | None = None
    baselines: bool = True
    workers: int = 2
    batch_size: int = 32
    device: str = "cpu"
    max_items: int = 0
    medoid_max_shapes: int = 128
    plm_mean: bool = False

    def __post_init__(self) -> None:
        _check_count("batch_size", self.batch_size, 1)
        _check_count("max_items", self.max_items, 0, " (0 = all)")
        _check_count("medoid_max_shapes", self.medoid_max_shapes, 1)
        if self.protocol is None:
            object.__setattr__(self, "protocol", Protocol())

    @property
    def official(self) -> bool:
        return isinstance(self.protocol, OfficialProtocol)


class Source:
    """What the runner needs from a dataset. :meth:`open` is called once per evaluation, after the
    run is loaded; the other methods follow it. Attributes: ``purpose`` (names the evaluation when
    the run is not an image run), ``stem`` (the report files are ``eval_<stem>...``), ``title``
    (the markdown report's title)."""

    purpose = "evaluation"
    stem = "eval"
    title = "Evaluation"
    floor_label = f"floor (own GT pointcloud_{FLOOR_POINTS})"
    floor_note = (f"'{floor_label}': each item's own ground-truth pointcloud_{FLOOR_POINTS} used as the "
                  "prediction, evaluated like the model against the same GT: the error of sampling alone")

    def open(self, config: Mapping[str, Any]) -> torch.utils.data.Dataset:
        """The dataset; its items are dicts with ``"image"`` ``(3, H, W)`` and ``"points"`` (the GT)."""
        raise NotImplementedError

    def intro_notes(self, run: str, n_items: int) -> list[str]:
        """The notes that open the report (``run`` = ``"<run folder> (checkpoint <which>)"``)."""
        raise NotImplementedError

    def order(self, n_items: int, official: bool) -> tuple[Sequence[int], list[str]]:
        """The dataset indices evaluated, in order, and notes on that order."""
        return range(n_items), []

    def training_shapes(self, config: Mapping[str, Any]) -> TrainingShapes | None:
        """The baselines' training shapes, or ``None`` when the dataset has no baselines."""
        return None

    def describe(self, batch: Mapping[str, Any]) -> tuple[list[str], list[str], list[dict[str, Any]]]:
        """``(keys, synsets, fields)`` of a batch: one key per item (seeds the protocol's subsample,
        names the item in errors), its GT synset, the fields of its per-pair record."""
        raise NotImplementedError

    def own_clouds(self, batch: Mapping[str, Any], n_points: int) -> list[np.ndarray] | None:
        """Each item's own ground-truth cloud of ``n_points`` points, float32 ``(n_points, 3)`` in
        the frame of ``batch["points"]``: the floor's prediction and the AE ceiling's input.
        ``None``: the dataset has none (no floor, no AE ceiling)."""
        return None

    def closing_notes(self) -> list[str]:
        """Notes known only once every item was read."""
        return []


def evaluate(source: Source, run_dir: str | Path, options: EvalOptions | None = None) -> dict[str, Any]:
    """Evaluate the image run ``run_dir`` on ``source``; returns ``{"tables": {method: rows},
    "paths": {"csv", "md", "pairs"}, "kept": [previous reports renamed], "notes": [...],
    "n_pairs": int, "records": {method: [record, ...]}, "medoid_keys": {synset: "synset/model"},
    "released_csvs": {category: path}}`` (``medoid_keys`` is empty unless the medoid fallback of
    the mean-shape baseline was used; ``released_csvs`` unless the protocol is the official one).
    Raises :class:`lmnet.errors.NonFiniteError` naming the first item predicted NaN or infinite."""
    opts = options or EvalOptions()
    run_dir = Path(run_dir)
    model, config = load_model(run_dir, which=opts.which, device=opts.device)
    require_kind(config, "image", run_dir, source.purpose)
    ds = source.open(config)
    n_items = len(ds) if not opts.max_items else min(len(ds), opts.max_items)
    run = f"{run_dir} (checkpoint {opts.which})"
    notes = source.intro_notes(run, n_items)
    notes.append(orun.prediction_note(bool(getattr(model, "probabilistic", False)), opts.plm_mean,
                                      getattr(opts.protocol, "seed", 0), opts.official))
    order, order_notes = source.order(n_items, opts.official)
    notes += order_notes
    answers = BaselineAnswers()
    shapes = source.training_shapes(config) if opts.baselines else None
    if shapes is not None:
        answers, baseline_notes = prepare_baselines(model, config, shapes, device=opts.device,
                                                    medoid_max_shapes=opts.medoid_max_shapes)
        notes += baseline_notes
    elif opts.baselines:
        answers, ae_notes = autoencoder_only(config, device=opts.device)
        notes += ae_notes
    records = _predict_and_evaluate(model, torch.utils.data.Subset(ds, order), source, answers, opts, run)
    if source.floor_label in records:
        notes.append(source.floor_note)
    notes += source.closing_notes()
    out, released = _write_reports(run_dir, source, opts, records, notes, answers.labels)
    return {"tables": out["tables"], "paths": {k: out[k] for k in ("csv", "md", "pairs")}, "kept": out["kept"],
            "notes": notes, "n_pairs": n_items, "records": records, "medoid_keys": answers.medoid_keys,
            "released_csvs": released}


def _predict_and_evaluate(model, items, source: Source, answers: BaselineAnswers, opts: EvalOptions,
                          run: str) -> dict[str, list[dict[str, Any]]]:
    """Predict ``items`` batch by batch and submit every (method, item) pair while the workers
    evaluate; returns ``{method: [record, ...]}`` in submission order, each record the item's
    ``key``, its fields, then the protocol's values."""
    feed = orun.OfficialFeed(opts.protocol) if opts.official else None
    gen = torch.Generator().manual_seed(opts.protocol.seed) if opts.official else None
    loader = torch.utils.data.DataLoader(items, batch_size=opts.batch_size, shuffle=False, num_workers=0)
    meta: list[tuple[str, dict[str, Any]]] = []  # (method, item fields) per submitted pair
    with PairEvaluator(opts.protocol, workers=opts.workers) as ev:

        def submit(method: str, preds, gts, keys, synsets, fields) -> None:
            if feed is not None:
                preds, gts = feed.prepare(method, preds, gts, synsets)
            if getattr(opts.protocol, "camera_frame", False):  # Mesh R-CNN's protocols
                preds, gts = camera_frame.move_pairs(preds, gts, fields, opts.protocol.name)
            ev.submit(preds, gts, keys)
            meta.extend((method, f) for f in fields)

        for batch in loader:
            preds, mu = orun.predict(model, batch["image"].to(opts.device),
                                     plm_mean=opts.plm_mean or not opts.official, generator=gen)
            gts = batch["points"].numpy()
            keys, synsets, fields = source.describe(batch)
            check_finite(preds, keys, run)
            submit(MODEL_LABEL, preds, gts, keys, synsets, fields)
            for method, sel, clouds in answers.answers(synsets, mu):
                submit(method, clouds, gts[sel], [keys[i] for i in sel], [synsets[i] for i in sel],
                       [fields[i] for i in sel])
            for method, clouds in (reference_answers(source, batch, answers) if opts.baselines else []):
                submit(method, clouds, gts, keys, synsets, fields)
        records = ev.results()
    by_method: dict[str, list[dict[str, Any]]] = {}
    for (method, f), rec in zip(meta, records):
        values = {k: v for k, v in rec.items() if k != "key"}
        by_method.setdefault(method, []).append({"key": rec["key"], **f, **values})
    return by_method


def floor_skip_note(missing: Sequence[Any], total: int, what: str) -> str:
    """The note of a source whose items lack their own clouds (``missing``: the first few, of
    ``total`` ``what``): no floor and no AE ceiling rather than a floor over some items only."""
    return (f"floor and AE ceiling skipped: {len(missing)} of {total} {what} have no own "
            f"{FLOOR_POINTS}-point cloud (first: {missing[0]})")


def reference_answers(source: Source, batch: Mapping[str, Any], answers: BaselineAnswers) -> list[tuple[str, Any]]:
    """``(method, clouds)`` of the references of one batch, every item answered: the floor (the
    items' own GT ``pointcloud_2048``, :meth:`Source.own_clouds`) and, with an autoencoder, the AE
    ceiling (:meth:`lmnet.eval.baselines.BaselineAnswers.reconstruct` of the own clouds of the AE's
    size). Nothing when the source has no own clouds."""
    own = source.own_clouds(batch, FLOOR_POINTS)
    if own is None:
        return []
    out: list[tuple[str, Any]] = [(source.floor_label, own)]
    if answers.ae is not None:
        ae_in = own if answers.ae_points == FLOOR_POINTS else source.own_clouds(batch, answers.ae_points)
        out.append((AE_CEILING_LABEL, answers.reconstruct(ae_in)))
    return out


def _write_reports(run_dir: Path, source: Source, opts: EvalOptions, records: Mapping[str, list],
                   notes: list[str], baselines: Sequence[str] = ()) -> tuple[dict[str, Any], dict[str, Path]]:
    """The report files (:func:`write_report`, gap closed against the ``baselines`` methods and the
    floor) and, official protocol, the released per-category CSV files of the model's records;
    returns ``(write_report's result, {category: path})``."""
    proto = opts.protocol
    refs = {"baselines": baselines, "floor": source.floor_label}
    if is_paper_protocol(proto):
        return write_report(run_dir, f"{source.stem}_{proto.name}", records, protocol_line=proto.describe(),
                            notes=notes, protocol=proto.name, metrics=proto.metrics, titles=proto.titles,
                            title=source.title, **refs), {}
    if not opts.official:
        return write_report(run_dir, source.stem, records, protocol_line=proto.describe(), notes=notes,
                            title=source.title, **refs), {}
    out = write_report(run_dir, f"{source.stem}_official", records, protocol_line=proto.describe(), notes=notes,
                       protocol="official", metrics=OFFICIAL_METRICS, titles=OFFICIAL_TITLES, title=source.title,
                       **refs)
    return out, orun.write_released_csvs(run_dir, f"eval_{source.stem}_official", records.get(MODEL_LABEL, []))
