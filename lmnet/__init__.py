"""lmnet: single-image 3D point-cloud reconstruction (3D-LMNet) as a PyTorch experiment suite.

Sub-packages keep data, models, losses, training, evaluation and rendering apart:

- ``lmnet.data``      ShapeNet on-disk format, synthetic ShapeNet, splits, downloads
- ``lmnet.camera``    the one place that defines frames, R2N2 cameras and projection
- ``lmnet.render``    torch z-buffer rasteriser (triangles, point splats)
- ``lmnet.models``    point autoencoder, image encoder, Variant I / II heads
- ``lmnet.losses``    Chamfer / EMD
- ``lmnet.runs``      run folders: configs, checkpoints, run kinds, load_model, predictions
- ``lmnet.train``     training loops
- ``lmnet.eval``      the paper's evaluation protocol
- ``lmnet.weights``   published weights: TF checkpoint reader (no TensorFlow), converters, catalogue
"""

__version__ = "0.1.0"


def load_model(run_dir, which: str = "best", device="cpu"):
    """Any run folder, trained or imported (``lmnet import-weights``) → ``(model, config)``.

    An image run's model maps ``(B, 3, 128, 128)`` float RGB 0–255 (in the run's input convention,
    ``config["image_input"]``) to ``(B, 2048, 3)``; ``model.encode_image(images)`` gives
    ``(mu, logvar or None)``. An autoencoder run's model maps ``(B, N, 3)`` to ``(B, 2048, 3)``.
    See :func:`lmnet.runs.load.load_model`.
    """
    from lmnet.registry import load_model as _load

    return _load(run_dir, which=which, device=device)
