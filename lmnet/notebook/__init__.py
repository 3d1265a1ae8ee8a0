"""What the notebooks import: their settings (:mod:`.settings`), the training configs built from
them (:mod:`.configs`) and running notebooks headlessly (:mod:`.runner`)."""

from lmnet.notebook.configs import ae_config, ae_run_dir, ensure_data, image_config, silhouette_config
from lmnet.notebook.runner import has_outputs, run_notebook, strip_outputs
from lmnet.notebook.settings import (ENV_VAR, TINY_OVERRIDES, defaults, figures_dir, project_root, resolve_paths,
                                     run_dir, split_files, with_overrides)

__all__ = ["ae_config", "ae_run_dir", "ensure_data", "image_config", "silhouette_config", "has_outputs", "run_notebook",
           "strip_outputs", "ENV_VAR", "TINY_OVERRIDES", "defaults", "figures_dir", "project_root", "resolve_paths",
           "run_dir", "split_files", "with_overrides"]
