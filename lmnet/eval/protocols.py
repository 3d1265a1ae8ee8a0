"""The names of ``lmnet eval --protocol`` and the other papers' protocols behind three of them.

- ``lmnet`` (:class:`lmnet.eval.protocol.Protocol`) and ``official``
  (:class:`lmnet.eval.official.OfficialProtocol`): 3D-LMNet's quantities, and its released code's
  computation;
- ``pix3d`` (:class:`lmnet.eval.protocol_pix3d.Pix3DProtocol`): the Pix3D benchmark's CD / EMD;
- ``meshrcnn`` and ``p2m`` (:class:`lmnet.eval.protocol_meshrcnn.MeshRCNNProtocol`): Mesh R-CNN's
  scale-normalised protocol and its Pixel2Mesh protocol.

The last three are "paper protocols": each names itself (``name``), lists its table columns
(``metrics``, ``titles``) and says whether its pairs must first move into their view's camera frame
(``camera_frame``); :func:`lmnet.eval.runner.evaluate` writes their reports as
``eval_<stem>_<name>.{md,csv}`` and ``eval_<stem>_<name>_pairs.csv``.
"""

from __future__ import annotations

from lmnet.errors import ConfigError
from lmnet.eval.protocol_meshrcnn import MeshRCNNProtocol
from lmnet.eval.protocol_pix3d import Pix3DProtocol

PROTOCOL_NAMES = ("lmnet", "official", "pix3d", "meshrcnn", "p2m")
PAPER_PROTOCOLS = ("pix3d", "meshrcnn", "p2m")
PaperProtocol = Pix3DProtocol | MeshRCNNProtocol


def check_protocol_name(name: str) -> str:
    """``name`` when it is one of :data:`PROTOCOL_NAMES`, else :class:`ConfigError` listing them."""
    if name not in PROTOCOL_NAMES:
        raise ConfigError(f"unknown protocol {name!r}; valid protocols: {', '.join(PROTOCOL_NAMES)}")
    return name


def paper_protocol(name: str, *, seed: int | None = None, emd: bool = True) -> PaperProtocol:
    """The paper protocol ``name`` (``pix3d``, ``meshrcnn`` or ``p2m``). ``seed`` (default 0) and
    ``emd`` only concern ``pix3d``; :class:`ConfigError` for any other name, listing the valid ones."""
    if check_protocol_name(name) not in PAPER_PROTOCOLS:
        raise ConfigError(f"{name!r} is not one of the other papers' protocols ({', '.join(PAPER_PROTOCOLS)})")
    if name == "pix3d":
        return Pix3DProtocol(seed=0 if seed is None else seed, emd=emd)
    return MeshRCNNProtocol(variant=name)


def is_paper_protocol(protocol) -> bool:
    return isinstance(protocol, (Pix3DProtocol, MeshRCNNProtocol))
