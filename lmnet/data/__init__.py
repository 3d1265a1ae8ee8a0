"""Data: the ShapeNet, Pix3D, CUB-200-2011 and Pascal3D+ layouts, datasets, synthetic ShapeNet, splits and downloads."""
