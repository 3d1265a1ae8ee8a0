"""Mesh estimation from a photograph (convmesh's reconstruction, the textured half of Zubić & Liò;
``lmnet train meshrecon``): a network predicts a UV texture and a displacement map of a UV-sphere
template, trained by rendering it under each image's SfM pose against the photograph and its mask.

Config :mod:`.config`, network :mod:`.network` (the original layer names), the trained module with
per-image pose offsets :mod:`.model`, datasets :mod:`.data`, trainer :mod:`.trainer`.
"""

from lmnet.methods.meshrecon.config import CONFIG, DEFAULTS
from lmnet.methods.meshrecon.model import DatasetParams, MeshReconstruction, build_model, model_config
from lmnet.methods.meshrecon.network import ReconstructionNetwork
from lmnet.methods.meshrecon.trainer import MeshReconTrainer, mean_iou, network_input
from lmnet.train.method import Method

METHOD = Method(config=CONFIG, build_model=build_model, trainer=MeshReconTrainer,
                cli={"meshrecon": lambda raw, sets: raw},
                summary="textured mesh from a photograph (convmesh reconstruction; CUB / Pascal3D+)")


def train_meshrecon(config: dict | None = None, **datasets):
    """Resolve ``config`` and train (or resume) a meshrecon run; returns the run folder."""
    return METHOD.train(config, **datasets)


__all__ = ["CONFIG", "DEFAULTS", "METHOD", "DatasetParams", "MeshReconTrainer", "MeshReconstruction",
           "ReconstructionNetwork", "build_model", "mean_iou", "model_config", "network_input", "train_meshrecon"]
