"""Analyses behind the notebooks, one module per topic; everything returns plain arrays / dicts /
rows for :func:`lmnet.render.grids.make_grid`, so notebooks stay a few calls per cell.

- :mod:`.metrics` — Chamfer ×100 (the training monitor's convention, not the paper protocol) and
  the spread of K samples;
- :mod:`.selection` — which shapes to show (round robin over categories);
- :mod:`.autoencoder` — reconstructions, the autoencoder against mean shapes, latent interpolation;
- :mod:`.spread` — Variant II sample spread against the viewing azimuth;
- :mod:`.tables` — best / worst cases, runs side by side, markdown;
- :mod:`.cases` — evaluation pairs re-predicted for a figure, stand-in user photos;
- :mod:`.preview` — a dataset on disk, renderings next to GT clouds;
- :mod:`.pose_study` — the silhouette pose study's files (issue #30), its table and pose-error histogram.

Also importable from here, for the notebooks' tables and figures: a run's training history
(:func:`read_history`, :mod:`lmnet.runs.folder`), the label of the network's own evaluation records
(:data:`MODEL_LABEL`, :mod:`lmnet.eval.runner`) and the Pix3D evaluation pairs re-predicted for a
figure (:func:`pix3d_case_rows`, :mod:`lmnet.eval.pix3d_run`).

Point clouds are ``(N, 3)`` in the 3D-LMNet frame. The output of ``lmnet infer`` is read by
:func:`lmnet.runs.predictions.load_predictions` (also ``lmnet.infer.load_predictions``), next to its
writer.
"""

from lmnet.analysis.autoencoder import autoencoder_rows, autoencoder_vs_mean_shape, interpolate_latents
from lmnet.analysis.cases import case_rows, make_user_images
from lmnet.analysis.metrics import chamfer_x100, sample_spread
from lmnet.analysis.pose_study import plot_pose_errors, pose_study_report, read_pose_study
from lmnet.analysis.preview import dataset_preview_grid
from lmnet.analysis.selection import round_robin, round_robin_rows
from lmnet.analysis.spread import binned_mean, plot_spread_vs_azimuth, spread_summary, spread_vs_azimuth
from lmnet.analysis.tables import best_worst, compare_tables, display_markdown, rows_to_markdown
from lmnet.eval.pix3d_run import pix3d_case_rows
from lmnet.eval.runner import MODEL_LABEL
from lmnet.runs.folder import read_history

__all__ = ["autoencoder_rows", "autoencoder_vs_mean_shape", "interpolate_latents", "case_rows", "make_user_images",
           "chamfer_x100", "sample_spread", "plot_pose_errors", "pose_study_report", "read_pose_study",
           "dataset_preview_grid", "round_robin", "round_robin_rows",
           "binned_mean", "plot_spread_vs_azimuth", "spread_summary", "spread_vs_azimuth", "best_worst",
           "compare_tables", "display_markdown", "rows_to_markdown", "pix3d_case_rows", "MODEL_LABEL",
           "read_history"]
