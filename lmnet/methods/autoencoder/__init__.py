"""The 3D-LMNet point autoencoder (``lmnet train ae``): Chamfer-trained, its latent space is what the
image methods match into. Config :mod:`.config`, network :mod:`.model`, trainer :mod:`.trainer`."""

from lmnet.methods.autoencoder.config import CONFIG, DEFAULTS
from lmnet.methods.autoencoder.model import build_model, model_config
from lmnet.methods.autoencoder.trainer import AutoencoderTrainer
from lmnet.train.method import Method

METHOD = Method(config=CONFIG, build_model=build_model, trainer=AutoencoderTrainer, cli={"ae": lambda raw, sets: raw},
                summary="the point-cloud autoencoder")


def train_autoencoder(config: dict | None = None, **datasets):
    """Resolve ``config`` and train (or resume) an autoencoder run; returns the run folder.
    ``datasets``: optional ``train_set=`` / ``val_set=`` replacing the ShapeNet ones."""
    return METHOD.train(config, **datasets)


__all__ = ["CONFIG", "DEFAULTS", "METHOD", "AutoencoderTrainer", "build_model", "model_config", "train_autoencoder"]
