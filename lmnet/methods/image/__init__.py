"""3D-LMNet's image methods (``lmnet train variant1`` / ``variant2``): an image encoder trained to
match the latent of a frozen point autoencoder (Variant I: L1 / L2) or to predict a distribution
around it with a view-dependent spread (Variant II). Config :mod:`.config`, network :mod:`.model`,
trainer :mod:`.trainer`."""

from lmnet.methods.image.config import ARCH_DEFAULTS, CONFIG, DEFAULTS, cli_variant1, cli_variant2
from lmnet.methods.image.model import build_model, model_config
from lmnet.methods.image.trainer import ImageTrainer
from lmnet.train.method import Method

METHOD = Method(config=CONFIG, build_model=build_model, trainer=ImageTrainer,
                cli={"variant1": cli_variant1, "variant2": cli_variant2},
                summary="the image encoder: variant1 (L1 / L2 latent), variant2 (probabilistic)")


def train_image_encoder(config: dict | None = None, **datasets):
    """Resolve ``config`` and train (or resume) an image run (``variant`` l1 / l2 / probabilistic) on
    top of the frozen autoencoder ``config["ae_run"]``; returns the run folder."""
    return METHOD.train(config, **datasets)


__all__ = ["ARCH_DEFAULTS", "CONFIG", "DEFAULTS", "METHOD", "ImageTrainer", "build_model", "model_config",
           "train_image_encoder"]
