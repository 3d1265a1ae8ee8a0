"""Synthetic datasets in the real on-disk formats: procedural chairs, tables, airplanes, cars and
lamps in the ShapeNetRendering / ShapeNet_pointclouds format (:mod:`.generator`), a small Pix3D
(:mod:`.pix3d_synth`), and textured birds and cars in the CUB-200-2011 / Pascal3D+ layouts with
their ground truth (:mod:`.textured`, :mod:`.textured_truth`)."""

from lmnet.synthetic.generator import (DEFAULT_CATEGORIES, build_mesh, generate_dataset,
                                            generate_model, model_id, sample_views)
from lmnet.synthetic.shapes import BUILDERS
from lmnet.synthetic.textured import generate_cmr
from lmnet.synthetic.textured_truth import read_truth

__all__ = ["DEFAULT_CATEGORIES", "BUILDERS", "build_mesh", "generate_dataset", "generate_model",
           "model_id", "sample_views", "generate_cmr", "read_truth"]
