"""The notebooks' settings: the shared defaults, the overrides automation injects, and where
relative paths point.

Each notebook starts with one config cell: ``config = {**defaults(), ...the keys it is about...}``
followed by ``config = lmnet.notebook.with_overrides(config)``. :func:`defaults` holds every
setting that several notebooks share (data, run folders, the autoencoder, the image runs,
evaluation), documented once; a notebook's cell repeats only what that notebook is about. Users
edit the dict; automation injects overrides through the environment variable
``LMNET_NOTEBOOK_OVERRIDES`` (a JSON object), so CI can run every notebook with a tiny
configuration and ``make demo`` with the demo one, without parameter cells or string templating.
Overrides go through :func:`lmnet.config.resolve_config`, so an unknown key fails loudly instead
of being ignored.

Relative paths in a config are taken from the **project root** (:func:`project_root`), not from
the kernel's working directory (JupyterLab starts a notebook's kernel in ``notebooks/``, nbclient
wherever it is told). The training configs built from these settings: :mod:`lmnet.notebook.configs`;
running notebooks headlessly: :mod:`lmnet.notebook.runner`.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import Any, Mapping

from lmnet.config import parse_json_object, resolve_config
from lmnet.data.splits import DEFAULT_RATIOS
from lmnet.errors import ConfigError

ENV_VAR = "LMNET_NOTEBOOK_OVERRIDES"
ROOT_ENV_VAR = "LMNET_PROJECT_ROOT"
# the file that marks a project root: a folder holding the notebooks
ROOT_MARKER = Path("notebooks") / "00_data.ipynb"


def project_root(start: str | Path | None = None) -> Path:
    """Where a notebook config's relative paths point: ``$LMNET_PROJECT_ROOT`` when set, else the
    nearest of ``start`` (default: the working directory) and its parents that holds
    ``notebooks/00_data.ipynb`` (an lmnet checkout, or a folder the notebooks were copied into),
    else ``start`` itself. lmnet never assumes where it is installed."""
    env = os.environ.get(ROOT_ENV_VAR, "").strip()
    if env:
        return Path(env).resolve()
    here = Path(start or Path.cwd()).resolve()
    return next((d for d in (here, *here.parents) if (d / ROOT_MARKER).is_file()), here)


# Config keys holding paths, taken from the project root when relative.
PATH_KEYS = ("data_root", "run_root", "figures_dir", "train_split", "val_split", "test_split", "model_run",
             "user_images", "cub_root")


def resolve_paths(config: Mapping[str, Any]) -> dict:
    """``config`` with the relative paths of :data:`PATH_KEYS` made absolute against
    :func:`project_root`."""
    out, root = dict(config), project_root()
    for key in PATH_KEYS:
        v = out.get(key)
        if isinstance(v, str) and v:
            out[key] = _from_root(root, v)
        elif isinstance(v, list) and all(isinstance(x, str) for x in v):
            out[key] = [_from_root(root, x) for x in v]
    return out


def _from_root(root: Path, path: str) -> str:
    return path if Path(path).is_absolute() else str(root / path)


def defaults() -> dict:
    """A fresh dict of the settings the notebooks share; a notebook's config cell adds or replaces
    the keys it is about. Paths are relative to the project root (:func:`resolve_paths`).

    Data (the synthetic set by default; for real ShapeNet set ``data_root`` to the folder holding
    ``ShapeNetRendering/`` and ``ShapeNet_pointclouds/``, ``synthetic_models`` to 0 and the three
    split files):

    - ``data_root``: ``"data/synthetic"``, the dataset folder.
    - ``synthetic_models``: 40 models per category to generate there (0 = use ``data_root`` as it is).
    - ``synthetic_split``: ``[0.6, 0.2, 0.2]``, the train / val / test proportions of each category's
      synthetic models (the split files are rewritten to match).
    - ``categories``: the five categories chair, table, airplane, car, lamp.
    - ``train_split`` / ``val_split`` / ``test_split``: split files; None =
      ``<data_root>/splits/synthetic_<split>_models.json`` (:func:`split_files`).
    - ``seed``: 0, for generating the synthetic set and for training.

    Run folders and compute:

    - ``run_root``: ``"runs/notebooks"``, where every notebook's runs live (one folder per run,
      :func:`run_dir`); notebooks 02-06 reuse notebook 01's autoencoder from here.
    - ``figures_dir``: None = ``<run_root>/figures`` (:func:`figures_dir`).
    - ``device``: ``"auto"`` = CUDA when available, else ``"cpu"``.
    - ``num_workers``: 0 data-loader worker processes.
    - ``max_train_items`` / ``max_val_items``: 0 = all; N = a seeded subset of N items (quick tries).

    The point autoencoder (notebook 01 trains it, the others make sure it exists, :func:`lmnet.notebook.configs.ae_config`):

    - ``ae_epochs``: 200 (~15 min on 2 CPU cores for 40 models per category).
    - ``ae_batch_size``: 16.  ``ae_lr``: 1e-3.
    - ``ae_shape_pool``: 0; N > 0 (synthetic set only) adds N point-cloud-only shapes per category
      to the autoencoder's training set (:mod:`lmnet.synthetic.shape_pool`, written to
      ``<data_root>/ae_shape_pool``): its shape prior then generalises to unseen shapes
      (studies/results/shape_prior.md). The image runs still train on the rendered models only.
    - ``ae_emd_weight``: 0.0 (Chamfer only, as published); > 0 adds the autoencoder's EMD term
      (``emd_weight``, :mod:`lmnet.methods.autoencoder.config`) against clumped decoder points.
    - ``ae_encoder_points``: 0 (the encoder reads every point, as published); k > 0: each training
      step the encoder reads a random k-subset of each cloud (``encoder_points``,
      :mod:`lmnet.methods.autoencoder.config`): faster steps, so more of them in the same time.
    - ``lr_schedule``: ``"cosine"`` (to 0 at the last epoch) or ``"none"`` (the official constant
      rate), for every training run of the notebooks.

    Image encoder runs (Variant I and II, :func:`lmnet.notebook.configs.image_config`), CPU-sized (the paper: lr 5e-5,
    batch 32, all 24 views, 50 epochs):

    - ``image_epochs``: 3 passes over all 24 views of every training model.
    - ``image_batch_size``: 16.  ``image_lr``: 5e-4.
    - ``views``: None = all 24 views per model per epoch; ``"random"`` = one.
    - ``image_colour_jitter``: 0.5, the image runs' ``colour_jitter``: each training image's object
      is recoloured by per-channel gains exp(U(−0.5, 0.5)), so that coloured photos are not unlike
      the grey renders (docs/results.md#colour-jitter-of-the-image-encoders-inputs); 0 = off, as published.
    - ``val_views``: ``[0, 6, 12, 18]``, the views validated each epoch.
    - ``amp``: ``"auto"``, mixed precision where it is fast (bf16 on CPUs with native bf16, CUDA).

    Evaluation (the paper protocol uses all 24 views; one keeps it quick), inference and meshes:

    - ``eval_views``: ``[0]``.  ``eval_max_items``: 0 = every (shape, view) pair of the test split.
    - ``model_run``: an image run folder or ``.pt``; None = ``<run_root>/variant1_l1`` (trained if missing).
    - ``user_images``: paths of your images; ``[]`` = two stand-ins made from the test split.
    - ``mesh_method``: ``"auto"`` (the best fit of ``"bpa"``, ``"poisson"`` and ``"alpha"``) or one of them.
    - ``mesh_depth``: 8, the octree depth when Poisson is used.
    """
    return {
        "data_root": "data/synthetic", "synthetic_models": 40, "synthetic_split": list(DEFAULT_RATIOS),
        "categories": ["chair", "table", "airplane", "car", "lamp"],
        "train_split": None, "val_split": None, "test_split": None, "seed": 0,
        "run_root": "runs/notebooks", "figures_dir": None, "device": "auto", "num_workers": 0,
        "max_train_items": 0, "max_val_items": 0,
        "ae_epochs": 200, "ae_batch_size": 16, "ae_lr": 1e-3, "ae_shape_pool": 0, "ae_emd_weight": 0.0, "ae_encoder_points": 0,
        "lr_schedule": "cosine",
        "image_epochs": 3, "image_batch_size": 16, "image_lr": 5e-4, "views": None, "image_colour_jitter": 0.5,
        "val_views": [0, 6, 12, 18], "amp": "auto",
        "eval_views": [0], "eval_max_items": 0, "model_run": None, "user_images": [],
        "mesh_method": "auto", "mesh_depth": 8,
    }


def config_keys(notebook: str | Path) -> set[str]:
    """The keys of a notebook's config: :func:`defaults` plus the literal keys of its config cell
    (``config = {**defaults(), "key": ...}``), read from the ``.ipynb`` without running it."""
    path = Path(notebook)
    nb = parse_json_object(path.read_text(encoding="utf-8"), f"notebook {path}", expected="a notebook")
    for cell in nb.get("cells", []):
        src = "".join(cell.get("source", []))
        if cell.get("cell_type") != "code" or not src.lstrip().startswith("config = {"):
            continue
        try:
            node = ast.parse(src).body[0].value
        except SyntaxError as exc:
            raise ConfigError(f"notebook {path}: its config cell is not valid Python ({exc.msg}, line {exc.lineno})") from None
        if isinstance(node, ast.Dict):
            return set(defaults()) | {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    raise ConfigError(f"notebook {path} has no `config = {{...}}` cell")


def with_overrides(config: Mapping[str, Any]) -> dict:
    """Return ``config`` updated with the JSON overrides in ``$LMNET_NOTEBOOK_OVERRIDES`` (if any),
    relative paths resolved against the project root (:func:`resolve_paths`).

    Keys in the overrides that the notebook's config does not have are skipped when they are
    prefixed with ``"?"`` (shared overrides for all notebooks) and are an error otherwise.
    """
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return resolve_paths(config)
    overrides = parse_json_object(raw, f"${ENV_VAR}")
    clean = {}
    for key, value in overrides.items():
        if key.startswith("?"):
            if key[1:] in config:
                clean[key[1:]] = value
        else:
            clean[key] = value
    return resolve_paths(resolve_config(config, clean, name="notebook config"))


# A tiny configuration for every notebook (CI, smoke tests): 2 categories × 5 synthetic models,
# 1 epoch, batch 4, a few items. Add "?data_root" / "?run_root" / "?figures_dir" for where it goes.
TINY_OVERRIDES: dict[str, Any] = {
    "?categories": ["chair", "airplane"], "?synthetic_models": 5, "?device": "cpu", "?num_workers": 0,
    "?ae_epochs": 1, "?ae_batch_size": 4, "?image_epochs": 1, "?image_batch_size": 4, "?sil_epochs": 1,
    "?sil_batch_size": 4, "?n_views": 2, "?max_train_items": 6, "?max_val_items": 4, "?eval_max_items": 3,
    "?eval_views": [0], "?views": "random", "?preview_per_category": 1, "?preview_views": [0],
    "?n_show": 2, "?interp_steps": 3, "?k_samples": 2, "?spread_k": 2, "?spread_items": 6,
    "?n_items": 3, "?gif_frames": 3, "?mesh_depth": 5, "?sigmas": [1.0], "?lambdas": [0.0, 5.5],
    "?logvar_head_epochs": 1, "?pix3d_synthetic": True, "?pix3d_max_items": 6,
    "?cub_train": 6, "?cub_val": 3, "?meshrecon_epochs": 1, "?meshrecon_batch_size": 3,
    "?pseudogt_resolution": 32, "?pseudogt_render_size": 128, "?gan_epochs": 1, "?gan_batch_size": 2,
    "?gan_per_class": 2,
}


SPLITS = ("train", "val", "test")


def split_files(config: Mapping[str, Any]) -> dict[str, str]:
    """``{"train"|"val"|"test": path}``: the notebook config's ``<split>_split`` keys, where a
    ``None`` means the synthetic set's file ``<data_root>/splits/synthetic_<split>_models.json``
    (for real ShapeNet set the three keys to the split files, e.g. the official ones)."""
    out = {}
    for s in SPLITS:
        given = config.get(f"{s}_split")
        out[s] = str(given) if given else str(Path(config["data_root"]) / "splits" / f"synthetic_{s}_models.json")
    return out


def run_dir(config: Mapping[str, Any], name: str) -> str:
    """``<run_root>/<name>``: the run folders the notebooks share."""
    return str(Path(config["run_root"]) / name)


def figures_dir(config: Mapping[str, Any]) -> Path:
    """``config["figures_dir"]`` or ``<run_root>/figures``, created."""
    d = Path(config.get("figures_dir") or Path(config["run_root"]) / "figures")
    d.mkdir(parents=True, exist_ok=True)
    return d
