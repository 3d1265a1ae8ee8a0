"""Analyses behind the notebooks, one module per topic; everything returns plain arrays / dicts /
rows for :func:`lmnet.render.grids.make_grid`, so notebooks stay a few calls per cell.

- :mod:`.metrics` — Chamfer ×100 (the training monitor's convention, not the paper protocol) and
  the spread of K samples;
- :mod:`.selection` — which shapes to show (round robin over categories);
- :mod:`.autoencoder` — reconstructions, the autoencoder against mean shapes, latent interpolation;
- :mod:`.spread` — Variant II sample spread against the viewing azimuth;
- :mod:`.tables` — best / worst cases, runs side by side, markdown;
- :mod:`.cases` — evaluation pairs re-predicted for a figure, stand-in user photos;
- :mod:`.preview` — a dataset on disk, renderings next to GT clouds.

Point clouds are ``(N, 3)`` in the 3D-LMNet frame. The output of ``lmnet infer`` is read by
:func:`lmnet.runs.predictions.load_predictions`, next to its writer.
"""

from lmnet.analysis.autoencoder import autoencoder_rows, autoencoder_vs_mean_shape, interpolate_latents
from lmnet.analysis.cases import case_rows, make_user_images
from lmnet.analysis.metrics import chamfer_x100, sample_spread
from lmnet.analysis.preview import dataset_preview_grid
from lmnet.analysis.selection import round_robin, round_robin_rows
from lmnet.analysis.spread import binned_mean, plot_spread_vs_azimuth, spread_summary, spread_vs_azimuth
from lmnet.analysis.tables import best_worst, compare_tables, display_markdown, rows_to_markdown

__all__ = ["autoencoder_rows", "autoencoder_vs_mean_shape", "interpolate_latents", "case_rows", "make_user_images",
           "chamfer_x100", "sample_spread", "dataset_preview_grid", "round_robin", "round_robin_rows",
           "binned_mean", "plot_spread_vs_azimuth", "spread_summary", "spread_vs_azimuth", "best_worst",
           "compare_tables", "display_markdown", "rows_to_markdown"]
