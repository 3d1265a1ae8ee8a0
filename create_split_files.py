#!/usr/bin/env python
"""Write seeded, per-category, leak-free train/val/test split files.

Examples::

    # 60/20/20 per category over what is on disk
    python create_split_files.py --root data/synthetic --out splits/ --prefix synthetic
    # keep the official 3D-LMNet test shapes ("val") out of train/val entirely
    python create_split_files.py --root data/ShapeNet --out splits/ --prefix ae \\
        --holdout splits/lmnet_official_val_models.json --ratios 0.8,0.2,0

A thin wrapper over :mod:`lmnet.data.splits` (same code as ``lmnet synth`` uses).
"""

import sys

from lmnet.cli import main

if __name__ == "__main__":
    sys.exit(main(["split", *sys.argv[1:]]))
