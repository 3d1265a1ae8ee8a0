"""The training configs the notebooks run, built from their settings (:mod:`lmnet.notebook.settings`),
and the data they train on.

The notebooks share one autoencoder run, ``<run_root>/autoencoder``: a notebook whose
``ae_epochs`` differs from that run's never changes it (:func:`ae_run_dir`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from lmnet.data.splits import DEFAULT_RATIOS, check_ratios
from lmnet.errors import ConfigError, DataError
from lmnet.notebook.settings import run_dir, split_files
from lmnet.runs.folder import CONFIG_FILE, read_run_config
from lmnet.synthetic import generate_dataset
from lmnet.synthetic.shape_pool import generate_shape_pool

#: where :func:`ensure_data` writes the autoencoder's shape pool, under ``data_root``
SHAPE_POOL_DIR = "ae_shape_pool"


def ensure_data(config: Mapping[str, Any]) -> dict | None:
    """With ``config["synthetic_models"] > 0``: generate (or complete: it is resumable) the
    synthetic set under ``data_root`` for ``categories``, split per ``synthetic_split`` (train, val,
    test proportions; default 60/20/20), and return its summary; with 0 (real
    ShapeNet): only check that ``data_root`` and the three split files exist, return None. With
    ``ae_shape_pool`` > 0 (synthetic set only) it also writes the autoencoder's shape pool
    (:func:`shape_pool_root`)."""

    n = int(config.get("synthetic_models", 0))
    if n > 0:
        given = config.get("synthetic_split", DEFAULT_RATIOS)
        try:
            if not isinstance(given, (list, tuple)) or any(isinstance(r, (str, bool)) for r in given):
                raise TypeError
            ratios = check_ratios(given)
        except (DataError, TypeError, ValueError):
            raise ConfigError(f"config key 'synthetic_split' must be [train, val, test] proportions such as "
                              f"[0.6, 0.2, 0.2] (finite, >= 0, positive sum), got {given!r}") from None
        summary = generate_dataset(config["data_root"], categories=config["categories"], n_models=n,
                                   seed=int(config.get("seed", 0)), workers=config.get("workers"), progress=False,
                                   ratios=ratios)
        if shape_pool_root(config) is not None:
            generate_shape_pool(shape_pool_root(config), config["categories"], int(config["ae_shape_pool"]),
                                seed=int(config.get("seed", 0)))
        return summary
    if not Path(config["data_root"]).is_dir():
        raise DataError(f"data_root {config['data_root']} does not exist (set synthetic_models > 0 to "
                        f"generate the synthetic set there, or point data_root at ShapeNet)")
    for s, p in split_files(config).items():
        if not Path(p).is_file():
            raise DataError(f"{s}_split {p} does not exist")
    return None


def shape_pool_root(config: Mapping[str, Any]) -> str | None:
    """``<data_root>/ae_shape_pool``, the autoencoder's extra point-cloud-only shapes
    (:mod:`lmnet.synthetic.shape_pool`), when ``ae_shape_pool`` > 0 on the synthetic set; else None."""
    if int(config.get("ae_shape_pool", 0)) > 0 and int(config.get("synthetic_models", 0)) > 0:
        return str(Path(config["data_root"]) / SHAPE_POOL_DIR)
    return None


def _common_train(config: Mapping[str, Any]) -> dict:
    sp = split_files(config)
    return {"data_root": config["data_root"], "train_split": sp["train"], "val_split": sp["val"],
            "categories": config["categories"], "device": config["device"], "seed": int(config.get("seed", 0)),
            "num_workers": int(config.get("num_workers", 0)), "resume": True,
            "lr_schedule": config.get("lr_schedule", "none"),
            "progress": bool(config.get("progress", False)),
            "max_train_items": int(config.get("max_train_items", 0)),
            "max_val_items": int(config.get("max_val_items", 0))}


SHARED_AE = "autoencoder"


def ae_run_dir(config: Mapping[str, Any], *, say: bool = False) -> str:
    """The autoencoder run folder a notebook uses: the shared ``<run_root>/autoencoder``, unless
    that run already exists for another number of epochs than ``config["ae_epochs"]``. Then the
    notebook gets its own run ``<run_root>/autoencoder_<ae_epochs>ep`` (shared in turn by every
    notebook asking for that many epochs), and the shared run is left as it is: extending it
    would change the latent space under the image runs already trained on it. ``say``: print a
    line saying so (:func:`ae_config` does; the other callers resolve the same folder quietly).

    The shared run's epochs are those its ``config.json`` was started (or last resumed) with; a
    run interrupted before them is the same run, and resuming it completes it.
    """
    shared = Path(run_dir(config, SHARED_AE))
    asked = int(config["ae_epochs"])
    has = read_run_config(shared).get("epochs") if (shared / CONFIG_FILE).is_file() else None
    if has is None or int(has) == asked:
        return str(shared)
    own, has = run_dir(config, f"{SHARED_AE}_{asked}ep"), int(has)
    if say:
        print(f"ae_epochs={asked}, but the shared autoencoder run {shared} has {has} epoch{'s' * (has != 1)}: "
              f"this notebook trains and uses its own run {own} instead, and names the runs it trains on it *_ae{asked}ep "
              f"(the shared run is left as it is; set ae_epochs={has} to use it)")
    return own


def _on_ae(config: Mapping[str, Any], name: str) -> str:
    """``name``, or ``<name>_ae<N>ep`` for a run trained on a notebook's own autoencoder (:func:`ae_run_dir`)."""
    own = Path(ae_run_dir(config)).name != SHARED_AE
    return f"{name}_ae{int(config['ae_epochs'])}ep" if own else name


def ae_config(config: Mapping[str, Any]) -> dict:
    """The autoencoder training config of the notebooks (run folder :func:`ae_run_dir`, normally
    ``<run_root>/autoencoder``; ``resume=True``: training an already finished run returns at once,
    which is how notebooks 02–06 make sure the AE of notebook 01 exists)."""
    return {**_common_train(config), "run_dir": ae_run_dir(config, say=True),
            "epochs": int(config["ae_epochs"]), "batch_size": int(config["ae_batch_size"]),
            "lr": float(config["ae_lr"]), "extra_train_root": shape_pool_root(config),
            "emd_weight": float(config.get("ae_emd_weight", 0.0)),
            "encoder_points": int(config.get("ae_encoder_points", 0))}


def image_config(config: Mapping[str, Any], variant: str, name: str, **extra) -> dict:
    """An image-encoder training config (Variant I ``"l1"``/``"l2"`` or ``"probabilistic"``) into
    ``<run_root>/<name>`` on top of the autoencoder of :func:`ae_config` (``<name>_ae<N>ep`` on a
    notebook's own autoencoder); ``extra`` overrides keys (e.g. ``lambda_div``)."""
    return {**_common_train(config), "run_dir": run_dir(config, _on_ae(config, name)), "variant": variant,
            "ae_run": ae_run_dir(config), "epochs": int(config["image_epochs"]),
            "batch_size": int(config["image_batch_size"]), "lr": float(config["image_lr"]),
            "views": config["views"], "val_views": config.get("val_views", [0]),
            "colour_jitter": float(config["image_colour_jitter"]), "amp": config.get("amp", "auto"), **extra}


def silhouette_config(config: Mapping[str, Any]) -> dict:
    """The mask-supervised training config of notebook 06 (:mod:`lmnet.methods.silhouette`) into
    ``<run_root>/silhouette_<pose>``; with ``init_from_ae`` its decoder starts from the
    autoencoder of :func:`ae_config` (train that first; on a notebook's own autoencoder the run
    is ``silhouette_<pose>_ae<N>ep``)."""
    name = f"silhouette_{config['pose']}"
    # the measured recipe keeps the silhouette defaults for seed and lr_schedule (constant rate)
    common = {k: v for k, v in _common_train(config).items() if k not in ("seed", "lr_schedule")}
    out = {**common, "epochs": config["sil_epochs"], "batch_size": config["sil_batch_size"], "lr": config["sil_lr"],
           "views": config["sil_views"], "n_views": config["n_views"], "silhouette_size": config["silhouette_size"],
           "depth_bins": config["depth_bins"], "pose": config["pose"], "amp": config["amp"],
           "run_dir": run_dir(config, _on_ae(config, name) if config["init_from_ae"] else name)}
    if config["init_from_ae"]:
        out["init_ae_run"] = ae_run_dir(config)
    return out
