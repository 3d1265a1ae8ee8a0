"""lmnet: single-image 3D point-cloud reconstruction (3D-LMNet) as a PyTorch experiment suite.

Sub-packages keep data, models, losses, training, evaluation and rendering apart:

- ``lmnet.data``      ShapeNet on-disk format, synthetic ShapeNet, splits, downloads
- ``lmnet.camera``    the one place that defines frames, R2N2 cameras and projection
- ``lmnet.render``    torch z-buffer rasteriser (triangles, point splats)
- ``lmnet.models``    point autoencoder, image encoder, Variant I / II heads
- ``lmnet.losses``    Chamfer / EMD
- ``lmnet.train``     training loops
- ``lmnet.eval``      the paper's evaluation protocol
"""

__version__ = "0.1.0"
