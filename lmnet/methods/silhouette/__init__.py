"""Reconstruction without rendering (Zubić & Liò, ``lmnet train silhouette``): image → point cloud
trained from masks alone, with known cameras or with K pose candidates and a student head.

Config :mod:`.config`, network :mod:`.model` (with the pose network), trainer :mod:`.trainer`,
multi-view items :mod:`.data`, mask losses :mod:`.losses`, pose losses :mod:`.pose_losses`, the
pose student over a dataset :mod:`.evaluate`. A silhouette run loads as an ``image`` run."""

from lmnet.methods.silhouette.config import CONFIG, DEFAULTS
from lmnet.methods.silhouette.data import MultiViewDataset, build_multiview_dataset
from lmnet.methods.silhouette.evaluate import every_view_dataset, predict_poses, student_poses_of_split
from lmnet.methods.silhouette.model import PoseNet, SilhouetteNetwork, build_model, model_config
from lmnet.methods.silhouette.pose_losses import pose_errors
from lmnet.methods.silhouette.trainer import SilhouetteTrainer
from lmnet.train.method import Method

METHOD = Method(config=CONFIG, build_model=build_model, trainer=SilhouetteTrainer, loads_as="image",
                cli={"silhouette": lambda raw, sets: raw},
                summary="the mask-supervised network (image -> cloud from silhouettes)")


def train_silhouette(config: dict | None = None, **datasets):
    """Resolve ``config`` and train (or resume) a silhouette run; ``datasets``: optional ``train_set``
    / ``val_set`` (:class:`MultiViewDataset`-like items). Returns the run folder."""
    return METHOD.train(config, **datasets)


__all__ = ["CONFIG", "DEFAULTS", "METHOD", "MultiViewDataset", "PoseNet", "SilhouetteNetwork", "SilhouetteTrainer",
           "build_model", "build_multiview_dataset", "every_view_dataset", "model_config", "pose_errors", "predict_poses",
           "student_poses_of_split", "train_silhouette"]
