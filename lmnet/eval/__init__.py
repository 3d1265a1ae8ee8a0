"""The paper's evaluation protocol (docs/evaluation.md): :mod:`.protocol` (one pair), :mod:`.parallel`
(many pairs, multiprocessing), :mod:`.report` (per-category tables ×100), :mod:`.baselines`
(mean shape, nearest training shape) and :mod:`.run` (a trained run folder end to end)."""

from lmnet.eval.protocol import Protocol, evaluate_pair
from lmnet.eval.parallel import evaluate_pairs

__all__ = ["Protocol", "evaluate_pair", "evaluate_pairs"]
