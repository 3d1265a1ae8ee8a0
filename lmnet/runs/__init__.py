"""Run folders: what a run is, whatever method wrote it.

- :mod:`.folder` — the layout (``config.json``, ``checkpoints/{best,last}.pt``, ``history.csv``,
  ``loss_curve.png``), checkpoint and history I/O;
- :mod:`.config` — the keys every method's config shares, :class:`~lmnet.runs.config.ConfigSpec`
  (how a method describes its config) and :func:`~lmnet.runs.config.resolve_run_config`;
- :mod:`.splits` — which split file a run is evaluated or predicted on;
- :mod:`.predictions` — the inference output folder: its writer and its reader;
- :mod:`.guard` — whose folder it is (lmnet's marker), one writer per folder (a lock file), what
  ``--force`` / ``--overwrite`` remove.

The methods (``lmnet/methods/<name>/``) declare their configs with this layer; the registry
(:mod:`lmnet.registry`) loads any run folder (``load_model``).
"""

from lmnet.runs.config import COMMON_DEFAULTS, META_KEYS, ConfigSpec, check_views, resolve_run_config, strip_meta
from lmnet.runs.folder import (CHECKPOINT_DIR, CHECKPOINT_FORMAT, CONFIG_FILE, CURVE_FILE, HISTORY_FILE, checkpoint_path,
                               git_commit, load_checkpoint, load_run, plot_loss_curve, read_history, read_run_config,
                               remove_stale_temporaries, write_history)

__all__ = ["COMMON_DEFAULTS", "META_KEYS", "ConfigSpec", "check_views", "resolve_run_config", "strip_meta",
           "CHECKPOINT_DIR", "CHECKPOINT_FORMAT", "CONFIG_FILE", "CURVE_FILE", "HISTORY_FILE", "checkpoint_path",
           "git_commit", "load_checkpoint", "load_run", "plot_loss_curve", "read_history", "read_run_config",
           "remove_stale_temporaries", "write_history"]
