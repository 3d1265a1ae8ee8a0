"""A toy method in its own folder, to show (and test) what adding a method takes: this folder and
one registry line (``lmnet.registry.register(METHOD)``; a built-in method's line lives in
``lmnet/registry.py``). It learns one template cloud, scaled by the size of the input cloud."""

from lmnet.train.method import Method
from .config import CONFIG
from .model import build_model
from .trainer import ToyTrainer

METHOD = Method(config=CONFIG, build_model=build_model, trainer=ToyTrainer, cli={"toy": lambda raw, sets: raw},
                summary="a learnt template cloud scaled to the input (a toy)")
