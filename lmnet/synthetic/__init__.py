"""Synthetic ShapeNet: procedural chairs, tables, airplanes, cars and lamps written in the exact
ShapeNetRendering / ShapeNet_pointclouds on-disk format (see :mod:`.generator`)."""

from lmnet.synthetic.generator import (DEFAULT_CATEGORIES, build_mesh, generate_dataset,
                                            generate_model, model_id, sample_views)
from lmnet.synthetic.shapes import BUILDERS

__all__ = ["DEFAULT_CATEGORIES", "BUILDERS", "build_mesh", "generate_dataset", "generate_model",
           "model_id", "sample_views"]
