"""The paper's evaluation protocol (docs/evaluation.md): :mod:`.protocol` (one pair), :mod:`.parallel`
(many pairs, multiprocessing), :mod:`.report` (per-category tables ×100), :mod:`.baselines`
(mean shape, nearest training shape, AE ceiling), :mod:`.gap` (the share of the baseline-to-floor
gap a method closes), :mod:`.runner` (a trained run folder end to end, one runner
for every dataset) with its dataset sources :mod:`.run` (ShapeNet) and :mod:`.pix3d_run` (Pix3D);
:mod:`.official` and :mod:`.official_run` follow the released evaluation code;
:mod:`.protocol_pix3d` and :mod:`.protocol_meshrcnn` follow other papers' evaluation code (the Pix3D
benchmark; Mesh R-CNN and its Pixel2Mesh protocol), named in :mod:`.protocols`, with
:mod:`.camera_frame` moving pairs into their view's camera frame.
:mod:`.silhouette_pose` puts a silhouette run's Chamfer, its medoid baseline and its student's pose
(DPC's accuracy within 30° and median angle) in one table.

Importable from here: the two protocols (:class:`Protocol`, :class:`OfficialProtocol`) and the pair
evaluators. This package imports no torch: the ``spawn`` workers of :mod:`.parallel` import it, and
each would pay for torch. A run folder is evaluated with ``lmnet.evaluate`` / ``lmnet.evaluate_pix3d``
(the front door), whose records ``lmnet.analysis`` turns into figures.

FID and KID for generated images (docs/fid.md) are imported from their modules: :mod:`.fid`
(distances, NumPy / SciPy only), :mod:`.fid_stats` (convmesh's statistics files), and, with torch,
:mod:`.inception` (Inception-v3 and its two weight files), :mod:`.proxy_features` (the offline
stand-in) and :mod:`.features` (``extract_features``)."""

from lmnet.eval.official import OfficialProtocol
from lmnet.eval.protocol import Protocol, evaluate_pair
from lmnet.eval.parallel import evaluate_pairs

__all__ = ["Protocol", "OfficialProtocol", "evaluate_pair", "evaluate_pairs"]
