"""Data: the ShapeNet, Pix3D, CUB-200-2011 and Pascal3D+ layouts, datasets, synthetic ShapeNet, splits and downloads.

What the notebooks use, importable from here: the real ShapeNet downloads
(:func:`download_renderings`, :func:`download_pointclouds`, raising :class:`DownloadError`) and the
dataset check (:func:`check_data`). This package stays torch-free on import (the readers and the
``lmnet mesh`` / ``lmnet download`` paths use it): the torch ``Dataset``
is :class:`lmnet.data.dataset.ShapeNetDataset`, or ``lmnet.dataset(root, ...)`` from the front door.
"""

from lmnet.data.check import DataReport, check_data
from lmnet.data.download import download_pointclouds, download_renderings
from lmnet.errors import DownloadError

__all__ = ["DataReport", "check_data", "download_pointclouds", "download_renderings", "DownloadError"]
