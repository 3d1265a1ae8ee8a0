"""Class-conditional generation of textured meshes (convmesh's GAN, the generative half of Zubić &
Liò; ``lmnet train meshgan``): a generator turns noise and a class into a UV texture and a
displacement map of the UV-sphere template, trained against discriminators on the pseudo-ground-truth
textures and meshes that a meshrecon run writes (``lmnet pseudogt``).

Config :mod:`.config`, networks with the original layer names :mod:`.network`, the trained module
with its EMA generator and sampling :mod:`.model`, pseudo-GT items :mod:`.data`, hinge losses
:mod:`.losses`, trainer :mod:`.trainer`.
"""

from lmnet.methods.meshgan.config import CONFIG, DEFAULTS
from lmnet.methods.meshgan.data import PseudoGTDataset, mirror_uv
from lmnet.methods.meshgan.model import MeshGAN, build_model, model_config, truncated_noise
from lmnet.methods.meshgan.network import Generator, MultiScaleDiscriminator
from lmnet.methods.meshgan.trainer import MeshGANTrainer
from lmnet.train.method import Method

METHOD = Method(config=CONFIG, build_model=build_model, trainer=MeshGANTrainer,
                cli={"meshgan": lambda raw, sets: raw},
                summary="textured meshes from noise and a class (convmesh GAN; CUB / Pascal3D+ pseudo-GT)")


def train_meshgan(config: dict | None = None, **datasets):
    """Resolve ``config`` and train (or resume) a meshgan run; returns the run folder."""
    return METHOD.train(config, **datasets)


__all__ = ["CONFIG", "DEFAULTS", "METHOD", "Generator", "MeshGAN", "MeshGANTrainer", "MultiScaleDiscriminator",
           "PseudoGTDataset", "build_model", "mirror_uv", "model_config", "train_meshgan", "truncated_noise"]
