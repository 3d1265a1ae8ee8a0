"""The demo (``make demo`` → ``lmnet demo --out runs/demo``): the whole pipeline on the synthetic
set, by executing the notebooks in order with :data:`DEMO_OVERRIDES`, so the demo shows exactly what
a user gets from the notebooks.

Written into ``--out``: ``data/`` (the synthetic set), ``runs/`` (training runs, each with
``history.csv``, ``loss_curve.png``, checkpoints and ``eval_test.{md,csv}``), ``notebooks/`` (the
executed notebooks, outputs included), ``figures/`` (the PNG/GIF figures of the notebooks) and, at
the top, ``results_grid.png`` and ``eval_test.md`` / ``eval_test.csv`` (the evaluation of the
Variant I L1 run with the baselines, copied from its run folder).

Sizes are chosen for a 2-core CPU, in bfloat16 or float32 as ``amp="auto"`` decides
(:mod:`lmnet.train.precision`). How long it took, on which CPUs, and what it learns at this size,
against the input-blind baselines: docs/results.md#make-demo-how-long-it-takes-and-what-it-learns
(with the longer runs of ``python -m studies.learning``). See :data:`DEMO_OVERRIDES`.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from lmnet.errors import ConfigError, DataError
from lmnet.notebook import runner
from lmnet.notebook.settings import config_keys, project_root

# The notebooks `make demo` runs, in order (00 data, 01 AE, 02 Variant I, 03 Variant II,
# 04 inference + evaluation, 05 rendering). 06 (silhouettes) is not part of the demo.
DEMO_NOTEBOOKS = ("00_data.ipynb", "01_autoencoder.ipynb", "02_variant_I.ipynb", "03_variant_II.ipynb",
                  "04_inference_and_evaluation.ipynb", "05_rendering.ipynb")

# "?key": applied only to notebooks whose config has that key (lmnet.notebook.with_overrides).
# Paths under --out are filled in by demo_overrides().
DEMO_OVERRIDES: dict[str, Any] = {
    "?categories": ["chair", "table", "airplane", "car", "lamp"],
    "?synthetic_models": 24,         # per category → 14/5/5 train/val/test shapes per category
    "?device": "cpu",
    "?lr_schedule": "cosine",
    # The autoencoder also sees 400 point-cloud-only shapes per category (lmnet.synthetic.shape_pool)
    # and an EMD term: with the 70 rendered shapes alone (60 epochs, Chamfer only) it returned the
    # category's mean shape for unseen shapes and Variant I lost to both baselines
    # (studies/results/shape_prior.md, docs/results.md#make-demo-how-long-it-takes-and-what-it-learns)
    "?ae_shape_pool": 400,
    "?ae_emd_weight": 1.0,
    # the encoder reads a random half of each training cloud: 1.9x faster epochs at the same quality
    # per step, so twice the steps (7 → 14 epochs) in about the time the 7 epochs took; unseen shapes
    # come back closer (docs/results.md#the-autoencoder-with-half-of-each-cloud-in-its-encoder-since-2026-12-07)
    "?ae_encoder_points": 1024,
    "?ae_epochs": 14,                # 129 steps per epoch at batch 16 (2070 shapes)
    "?ae_batch_size": 16,
    "?ae_lr": 1e-3,
    # 5 passes over all 24 views of the 70 training models (525 steps); 3 left the encoder
    # underfitted (training latent L1 still falling fast) and gave CD 7.14 / EMD 7.81, 5 give 6.76 / 7.56
    # (docs/results.md#five-image-epochs-since-2026-12-07)
    "?image_epochs": 5,
    "?image_batch_size": 16,
    "?image_lr": 5e-4,
    "?views": None,
    "?val_views": [0, 12],
    "?amp": "auto",                  # bf16 autocast only on CPUs with native bf16 (lmnet.train.precision)
    "?eval_views": list(range(24)),  # the paper protocol: every view of every test shape
    "?eval_max_items": 0,
    "?lambdas": [0.0, 5.5],
    "?losses": ["l1"],               # the official Variant I loss; L2 is a one-key change in 02
    "?spread_items": 0,              # every (shape, view) of the validation split
    "?preview_per_category": 2,
}

# Applied on top of DEMO_OVERRIDES for one notebook. Variant II trains one run per λ, so at demo
# size it sees one pass over 4 of the 24 views (18 steps per λ): enough to draw and plot samples,
# not to learn a view-dependent spread (studies/diversity.py measures that on a longer run).
DEMO_NOTEBOOK_OVERRIDES: dict[str, dict[str, Any]] = {
    # 04 evaluates the same run on every view and writes the table the demo reports; 02's own table
    # shows one view per test shape, so the demo does not spend a minute computing it twice
    "02_variant_I.ipynb": {"?eval_views": [0]},
    # no head-only epochs: the 15-minute budget has no room for them (docs/results.md#does-it-learn-measured)
    "03_variant_II.ipynb": {"?image_epochs": 1, "?views": [0, 6, 12, 18], "?spread_items": 240,
                            "?logvar_head_epochs": 0},
}


def notebooks_dir(given: str | Path | None = None) -> Path:
    """The folder of the notebooks the demo runs: ``given``, else ``notebooks/`` under the project
    root (:func:`~lmnet.notebook.settings.project_root`: an lmnet checkout you run from). Raises
    :class:`DataError` when it holds no ``00_data.ipynb``."""
    folder = Path(given) if given else project_root() / "notebooks"
    if not (folder / DEMO_NOTEBOOKS[0]).is_file():
        raise DataError(f"the demo runs the notebooks of {folder}, which holds no {DEMO_NOTEBOOKS[0]}: run it from an "
                        f"lmnet checkout or pass --notebooks DIR (the notebooks/ folder of the lmnet repository)")
    return folder


def check_override_keys(overrides: Mapping[str, Any], notebooks: Sequence[Path]) -> None:
    """Refuse a key of ``overrides`` (``"?key"`` or ``"key"``) that no notebook of ``notebooks`` has:
    the ``"?"`` form would be skipped by every one of them (a misspelt ``--set`` dropped without a
    word). The error lists the valid keys."""
    valid = set().union(*(config_keys(p) for p in notebooks)) if notebooks else set()
    unknown = [k for k in overrides if k.lstrip("?") not in valid]
    if unknown:
        raise ConfigError(f"--set {', '.join(k.lstrip('?') for k in unknown)}: no notebook the demo runs has "
                          f"{'this key' if len(unknown) == 1 else 'these keys'}; valid keys are: "
                          f"{', '.join(sorted(valid))}")


def demo_overrides(out: str | Path, **extra) -> dict[str, Any]:
    """:data:`DEMO_OVERRIDES` with the data / run / figure folders under ``out`` (absolute paths)."""
    out = Path(out).resolve()
    return {**DEMO_OVERRIDES, "?data_root": str(out / "data"), "?run_root": str(out / "runs"),
            "?figures_dir": str(out / "figures"), **extra}


def run_notebooks(names: Sequence[str], out_dir: str | Path, overrides: Mapping[str, Any], *,
                  notebooks_dir: str | Path, timeout: int = runner.CELL_TIMEOUT_S,
                  per_notebook: Mapping[str, Mapping[str, Any]] | None = None,
                  log: Callable[[str], None] = print) -> dict[str, float]:
    """Execute ``names`` (files in ``notebooks_dir``) in order with ``overrides`` (plus
    ``per_notebook[name]`` for that notebook, taking precedence); the executed copies go to
    ``out_dir``. Stops at the first failing notebook (its partly executed copy is
    written). Returns ``{name: seconds}``."""

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    times = {}
    for name in names:
        log(f"running {name} ...")
        ov = {**overrides, **(per_notebook or {}).get(name, {})}
        times[name] = runner.run_notebook(Path(notebooks_dir) / name, out_dir / name, overrides=ov,
                                                  timeout=timeout)
        log(f"  done in {times[name]:.0f} s -> {out_dir / name}")
    return times


def run_demo(out: str | Path, *, overrides: Mapping[str, Any] | None = None,
             notebooks: Sequence[str] = DEMO_NOTEBOOKS, notebooks_from: str | Path | None = None,
             log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the demo into ``out`` (see the module docstring); ``overrides`` are added on top of
    :func:`demo_overrides`; the notebooks come from ``notebooks_from`` (:func:`notebooks_dir`).
    Returns ``{"seconds", "times": {notebook: s}, "paths": {...}}``."""
    folder = notebooks_dir(notebooks_from)
    check_override_keys(overrides or {}, [folder / name for name in notebooks])
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    ov = demo_overrides(out, **dict(overrides or {}))
    t0 = time.perf_counter()
    # per notebook: demo defaults < that notebook's demo overrides < the caller's overrides (--set)
    per_notebook = {name: {**extra, **dict(overrides or {})} for name, extra in DEMO_NOTEBOOK_OVERRIDES.items()}
    times = run_notebooks(notebooks, out / "notebooks", ov, notebooks_dir=folder, per_notebook=per_notebook, log=log)
    paths = collect_results(out)
    return {"seconds": time.perf_counter() - t0, "times": times, "paths": paths}


def collect_results(out: str | Path) -> dict[str, Path]:
    """Copy the headline results to the top of ``out``: ``eval_test.md/.csv`` of the Variant I L1
    run and its best/worst-case figure as ``results_grid.png`` (when they exist)."""
    out = Path(out)
    found = {}
    sources = {"eval_test.md": out / "runs" / "variant1_l1" / "eval_test.md",
               "eval_test.csv": out / "runs" / "variant1_l1" / "eval_test.csv",
               "results_grid.png": out / "figures" / "results_grid.png"}
    for name, src in sources.items():
        if src.is_file():
            if src.parent != out:
                shutil.copyfile(src, out / name)
            found[name] = out / name
    return found
