"""lmnet: single-image 3D reconstruction (3D-LMNet, Zubić & Liò) as a PyTorch experiment suite.

The front door::

    import lmnet
    model, config = lmnet.load_model("trained_models/lm-chair")         # any run folder, trained or imported
    clouds = lmnet.reconstruct(["chair.png"], "trained_models/lm-chair")  # (N, 2048, 3) float32
    run = lmnet.train("autoencoder", {"data_root": "data/synthetic", "epochs": 10})
    table = lmnet.evaluate(run_dir, data_root="data/synthetic", split_file=..., out_dir=...)
    table = lmnet.evaluate_pix3d(run_dir, "data/pix3d")                 # the paper's Table 3
    dataset = lmnet.dataset("data/synthetic", split="splits/...json")   # a torch Dataset of ShapeNet items
    lmnet.synthesize("data/synthetic", n_models=40)                     # the synthetic ShapeNet
    lmnet.synthesize("data/pix3d_synth", format="pix3d")                # a synthetic Pix3D stand-in
    lmnet.synthesize("data/cub_synth", format="cub", n_train=160)       # synthetic birds (CUB layout)
    birds = lmnet.textured_dataset("data/cub_synth", "cub", split="testval")  # CUB / P3D crops + poses
    meshes = lmnet.reconstruct_textured(["bird.jpg"], "runs/meshrecon")  # textured meshes, in memory
    lmnet.export_textured("runs/meshrecon", ["bird.jpg"], "out/")        # OBJ + MTL + PNG + pictures
    lmnet.pseudo_ground_truth("runs/meshrecon", "cache/cub")             # convmesh's pseudo-GT cache
    lmnet.generate_meshes("runs/meshgan", "results/")                      # 16 GAN meshes + their picture
    scores = lmnet.evaluate_fid("runs/meshgan", proxy=True)               # FID / KID of a GAN run

Behind it, one folder per method (``lmnet.methods``), the registry that lists them
(``lmnet.registry``), and the layers they share (docs/architecture.md). These functions import what
they run when they run, so ``import lmnet`` stays fast.

The notebooks import from this front door and from a handful of packages only: ``lmnet.notebook``,
``lmnet.analysis``, ``lmnet.render``, ``lmnet.eval``, ``lmnet.data``, ``lmnet.weights``,
``lmnet.mesh`` and ``lmnet.infer`` (``tests/test_layering.py`` checks it).
"""

# ``lmnet.train`` names both the training package and the function below. Python binds a submodule
# on its parent when it is first loaded, which would replace the function by the package the moment
# anything (the registry, the function itself) imports it. Loading the package here, before the
# function is defined, leaves the name to the function for good (its __init__ is a docstring: free).
from lmnet import train as _train_package

del _train_package

__version__ = "0.1.0"


def load_model(run_dir, which: str = "best", device="cpu"):
    """Any run folder, trained or imported (``lmnet import-weights``) → ``(model, config)``.

    An image run's model maps ``(B, 3, 128, 128)`` float RGB 0–255 (in the run's input convention,
    ``config["image_input"]``) to ``(B, 2048, 3)``; ``model.encode_image(images)`` gives
    ``(mu, logvar or None)``. An autoencoder run's model maps ``(B, N, 3)`` to ``(B, 2048, 3)``.
    See :func:`lmnet.registry.load_model`.
    """
    from lmnet.registry import load_model as _load

    return _load(run_dir, which=which, device=device)


def reconstruct(images, run, *, which: str = "best", device="cpu", batch_size: int = 16):
    """Image files (paths) or arrays → predicted point clouds ``(N, 2048, 3)`` float32, in the
    3D-LMNet frame, with the image run ``run`` (a run folder or ``.pt``). Arrays are ``(H, W, 3)`` or
    ``(H, W, 4)`` uint8, prepared exactly like files. See :func:`lmnet.infer.reconstruct`."""
    from lmnet.infer import reconstruct as _reconstruct

    return _reconstruct(images, run, which=which, device=device, batch_size=batch_size)


def train(method: str, config=None, **datasets):
    """Train (or resume) a run of ``method`` (``"autoencoder"``, ``"image"``, ``"silhouette"`` or a
    registered one) with ``config`` (resolved once against its defaults); returns the run folder.
    See :func:`lmnet.registry.train`."""
    from lmnet.registry import train as _train

    return _train(method, config, **datasets)


def evaluate(run_dir, **kwargs):
    """Evaluate an image run on a ShapeNet split with the paper's protocol, with baselines; see
    :func:`lmnet.eval.run.evaluate_run` for the keyword arguments and what it returns."""
    from lmnet.eval.run import evaluate_run

    return evaluate_run(run_dir, **kwargs)


def evaluate_pix3d(run_dir, root, **kwargs):
    """Evaluate an image run on the Pix3D photographs under ``root`` (the paper's Table 3), with
    baselines; see :func:`lmnet.eval.pix3d_run.evaluate_pix3d` for the keyword arguments. Returns what
    :func:`evaluate` returns."""
    from lmnet.eval.pix3d_run import evaluate_pix3d as _evaluate_pix3d

    return _evaluate_pix3d(run_dir, root, **kwargs)


def dataset(root, **kwargs):
    """A ShapeNet dataset in the 3D-R2N2 + 3D-LMNet layout (real or synthetic) as a torch ``Dataset``;
    see :class:`lmnet.data.dataset.ShapeNetDataset` for the keyword arguments."""
    from lmnet.data.dataset import ShapeNetDataset

    return ShapeNetDataset(root, **kwargs)


def textured_dataset(root, format: str = "cub", split: str = "train", **kwargs):
    """A CUB-200-2011 (``format="cub"``) or Pascal3D+ cars (``"p3d"``) split in the layout convmesh
    reads, real or synthetic, as a torch ``Dataset`` of crops with their poses; see
    :class:`lmnet.data.cub.CUBDataset` / :class:`lmnet.data.p3d.P3DDataset` for the keyword arguments."""
    from lmnet.data.cub import CUBDataset
    from lmnet.data.p3d import P3DDataset

    loaders = {"cub": CUBDataset, "p3d": P3DDataset}
    if format not in loaders:
        from lmnet.errors import ConfigError

        raise ConfigError(f"textured_dataset: format must be 'cub' or 'p3d', got {format!r}")
    return loaders[format](root, split, **kwargs)


def read_pseudogt(path):
    """One pseudo-ground-truth file (``pseudogt_RxR/<index>.npz``) → ``{"mesh", "texture",
    "texture_alpha", "image"}`` torch tensors, read without running any pickle code; see
    :func:`lmnet.data.cmr_cache.read_pseudogt`."""
    from lmnet.data.cmr_cache import read_pseudogt as _read

    return _read(path)


def synthesize(out_dir, format: str = "shapenet", **kwargs):
    """Generate (or complete) the synthetic ShapeNet under ``out_dir``
    (:func:`lmnet.synthetic.generate_dataset`), or with ``format="pix3d"`` a small synthetic Pix3D
    in the released layout (:func:`lmnet.synthetic.pix3d_synth.generate_pix3d`), or with ``"cub"`` /
    ``"p3d"`` textured birds / cars in the CUB / Pascal3D+ layouts (:func:`lmnet.synthetic.generate_cmr`),
    as ``lmnet synth --format``. The keyword arguments and the summary returned are those functions'."""
    if format in ("cub", "p3d"):
        from lmnet.synthetic import generate_cmr

        return generate_cmr(out_dir, format, **kwargs)
    if format == "pix3d":
        from lmnet.synthetic.pix3d_synth import generate_pix3d

        return generate_pix3d(out_dir, **kwargs)
    if format != "shapenet":
        from lmnet.errors import ConfigError

        raise ConfigError(f"synthesize: format must be 'shapenet', 'pix3d', 'cub' or 'p3d', got {format!r}")
    from lmnet.synthetic import generate_dataset

    return generate_dataset(out_dir, **kwargs)


def reconstruct_textured(images, run, **kwargs):
    """Photographs → textured meshes in memory (one dict of NumPy arrays each: vertices, faces, uvs,
    face_uvs, texture, displacement, input) with a mesh-estimation run; see
    :func:`lmnet.infer_textured.reconstruct_textured`."""
    from lmnet.infer_textured import reconstruct_textured as _reconstruct

    return _reconstruct(images, run, **kwargs)


def export_textured(run, images, out, **kwargs):
    """Photographs → ``out/<id>.obj`` / ``.mtl`` / ``.png`` and pictures with a mesh-estimation run, as
    ``lmnet infer --images``; returns ``out/index.csv``. See :func:`lmnet.infer_textured.predict_textured`."""
    from lmnet.infer_textured import predict_textured

    return predict_textured(run, images, out, **kwargs)


def pseudo_ground_truth(run, out, **kwargs):
    """convmesh's pseudo-ground-truth of a mesh-estimation run's training images into ``out``, as
    ``lmnet pseudogt``; see :func:`lmnet.infer_textured.pseudogt_from_run`."""
    from lmnet.infer_textured import pseudogt_from_run

    return pseudogt_from_run(run, out, **kwargs)


def generate_meshes(run, out, **kwargs):
    """Textured meshes from a GAN run into ``out`` (OBJ / MTL / PNG and a picture), as ``lmnet
    generate``; returns ``out/index.csv``. See :func:`lmnet.generate_textured.generate`."""
    from lmnet.generate_textured import generate

    return generate(run, out, **kwargs)


def evaluate_fid(run, **kwargs):
    """FID / KID of a GAN run's renders, as ``lmnet eval fid``: the result of
    :func:`lmnet.eval.textured_fid.textured_fid` plus ``"table"``, its Markdown table."""
    from lmnet.eval.textured_fid import format_fid_table, textured_fid

    result = textured_fid(run, **kwargs)
    return {**result, "table": format_fid_table(result, run)}


__all__ = ["__version__", "load_model", "reconstruct", "train", "evaluate", "evaluate_pix3d", "dataset",
           "synthesize", "textured_dataset", "reconstruct_textured", "export_textured", "pseudo_ground_truth",
           "read_pseudogt", "generate_meshes", "evaluate_fid"]
