"""Run folders: the one layer that owns what a run is.

- :mod:`.folder` — the layout (``config.json``, ``checkpoints/{best,last}.pt``, ``history.csv``,
  ``loss_curve.png``), checkpoint and history I/O;
- :mod:`.defaults`, :mod:`.checks`, :mod:`.config` — every kind's config defaults, checks, and
  :func:`~lmnet.runs.config.resolve_train_config`;
- :mod:`.kinds` — the registry of run kinds (defaults, presets, model builder);
- :mod:`.load` — :func:`~lmnet.runs.load.load_model` for trained and imported runs;
- :mod:`.splits` — which split file a run is evaluated or predicted on;
- :mod:`.predictions` — the inference output folder: its writer and its reader.

Training, evaluation, inference, analysis, the notebooks and the benchmarks depend on this layer,
not on each other.
"""

from lmnet.runs.config import defaults_for, resolve_train_config, strip_meta
from lmnet.runs.folder import (CHECKPOINT_DIR, CHECKPOINT_FORMAT, CONFIG_FILE, CURVE_FILE, HISTORY_FILE, checkpoint_path,
                               git_commit, load_checkpoint, plot_loss_curve, read_history, read_run_config,
                               remove_stale_temporaries, write_history)
from lmnet.runs.kinds import KINDS, RunKind, get_kind
from lmnet.runs.load import build_model, load_model, require_kind

__all__ = ["defaults_for", "resolve_train_config", "strip_meta", "CHECKPOINT_DIR", "CHECKPOINT_FORMAT", "CONFIG_FILE",
           "CURVE_FILE", "HISTORY_FILE", "checkpoint_path", "git_commit", "load_checkpoint", "plot_loss_curve",
           "read_history", "read_run_config", "remove_stale_temporaries", "write_history", "KINDS", "RunKind",
           "get_kind", "build_model", "load_model", "require_kind"]
