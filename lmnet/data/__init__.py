"""ShapeNet data: on-disk layout, datasets, synthetic ShapeNet, splits and downloads."""
