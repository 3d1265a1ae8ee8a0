"""What the web app computes for one uploaded photo, without any web framework: the checks on the
upload, the mask and the network input to show, the predicted cloud and its Variant II samples, and
the files to download (.ply / .glb / .obj).

The photo goes through the functions ``lmnet infer --images`` uses (:func:`lmnet.data.inputs.prepare_image`
for the network input, :func:`lmnet.infer.predict_prepared` for the prediction, seed 0), so the
cloud shown is the one ``lmnet infer`` writes for the same image and run, and sample ``k`` is
``lmnet infer --samples K``'s ``samples[k - 1]``. Points are in the 3D-LMNet frame, in its units.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from lmnet import atomic_io
from lmnet.colour_files import glb_bytes, ply_bytes
from lmnet.data.inputs import check_image_header, composite, read_rgba, run_background
from lmnet.data.photo_mask import array_crop
from lmnet.envvars import MAX_SAMPLE_CLOUDS, MAX_UPLOAD_BYTES
from lmnet.errors import ConfigError, DataError
from lmnet.infer import predict_prepared
from lmnet.registry import load_model, require_kind
from lmnet.render.point_colours import colour_points

#: the longest side of the photo and mask the app shows (the network never sees these copies)
DISPLAY_SIDE = 512
#: the download formats, in the order the app lists them
FORMATS = ("ply", "glb", "obj")


@dataclass
class Reconstruction:
    """One photo's result: ``photo`` ``uint8 (h, w, 3)`` and ``mask`` ``uint8 (h, w)`` (255 = object)
    at display size, ``network_input`` ``uint8 (128, 128, 3)``, ``clouds`` ``float32 (1 + K, 2048, 3)``:
    ``[0]`` the prediction (Variant II: μ's decoding), ``[k]`` sample ``k``; ``crop`` ``uint8 (128, 128, 4)``:
    the network's crop with the object's mask as alpha, which colours the clouds (:func:`photo_colours`)."""

    photo: np.ndarray
    mask: np.ndarray
    network_input: np.ndarray
    clouds: np.ndarray
    crop: np.ndarray


def check_upload(path: str | Path, name: str) -> None:
    """Refuse an uploaded file over ``LMNET_MAX_UPLOAD_BYTES``, or one that is not an image or is
    over the pixel limit (:func:`~lmnet.data.inputs.check_image_header`), before it is decoded;
    ``name`` (the file's name on the user's side) is what the byte-limit message calls it."""
    MAX_UPLOAD_BYTES.check(os.path.getsize(path), f"upload {name}", hint="send a smaller photo")
    check_image_header(path)


def _display(image: np.ndarray) -> np.ndarray:
    """``uint8 (H, W)`` or ``(H, W, 3)`` → the same scaled down to at most :data:`DISPLAY_SIDE` px."""
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(image))
    im.thumbnail((DISPLAY_SIDE, DISPLAY_SIDE), Image.BILINEAR)
    return np.asarray(im)


class AppRun:
    """An image run loaded once for the app (any run folder :func:`lmnet.registry.load_model` reads,
    trained or imported). ``samples``: K Variant II samples per photo (0 for a Variant I run)."""

    def __init__(self, run: str | Path, *, samples: int = 8, device: str = "cpu"):
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 0:
            raise ConfigError(f"--samples must be a whole number >= 0, got {samples!r}")
        MAX_SAMPLE_CLOUDS.check(samples, f"--samples {samples} per photo", hint="lower --samples")
        self.model, config = load_model(run, which="best", device=device)
        require_kind(config, "image", run, "lmnet app")
        self.run, self.device = str(run), device
        self.background = run_background(config, f"{run}/config.json")
        self.probabilistic = bool(getattr(self.model, "probabilistic", False))
        self.samples = samples if self.probabilistic else 0

    def reconstruct(self, path: str | Path, name: str) -> Reconstruction:
        """The uploaded file ``path`` (its user-side ``name`` for messages) → :class:`Reconstruction`."""
        check_upload(path, name)
        rgba = read_rgba(path)
        # the front end of `lmnet infer --images` (an opaque photo masked and framed): the same cloud
        crop, _ = array_crop(rgba, name)
        prepared = composite(crop, self.background)[0]
        pred, smp = predict_prepared(self.model, prepared[None], samples=self.samples, device=self.device,
                                     names=[name], source=self.run)
        clouds = pred if smp is None else np.concatenate([pred, smp[0]])
        # the mask: the photo's alpha, or for an opaque photo the object's mask in the network's crop
        mask = rgba[..., 3] if bool((rgba[..., 3] < 255).any()) else crop[..., 3]
        return Reconstruction(photo=_display(rgba[..., :3]), mask=_display(mask),
                              network_input=np.clip(prepared.transpose(1, 2, 0), 0, 255).round().astype(np.uint8),
                              clouds=clouds.astype(np.float32, copy=False), crop=crop)


def photo_colours(points: np.ndarray, crop: np.ndarray) -> np.ndarray:
    """``uint8 (N, 3)`` colours of ``points (N, 3)`` from the photo's network ``crop`` ``uint8 (128, 128, 4)``:
    the colours ``lmnet infer --color`` gives the same cloud (:func:`lmnet.render.point_colours.colour_points`)."""
    return colour_points(points, crop).colours


def display_colours(points: np.ndarray) -> np.ndarray:
    """``(N, 3)`` points → ``uint8 (N, 4)`` RGBA, each channel the point's x, y, z rescaled over the
    cloud's box to 40–255 (a colour that shows the shape when no colours were predicted)."""
    p = np.asarray(points, np.float64)
    lo, span = p.min(0), np.ptp(p, axis=0)
    rgb = 40 + 215 * (p - lo) / np.where(span > 0, span, 1)
    return np.concatenate([rgb.round(), np.full((len(p), 1), 255)], axis=1).astype(np.uint8)


def cloud_bytes(points: np.ndarray, colours: np.ndarray | None, file_type: str) -> bytes:
    """``float32 (N, 3)`` points (optional ``uint8 (N, 3 | 4)`` colours) → a point cloud file of
    ``file_type`` (one of :data:`FORMATS`; .glb: glTF binary with a POINTS primitive). The vertices
    are the points' float32 values (.ply / .glb: lmnet's own writers, :mod:`lmnet.colour_files`, as
    ``lmnet infer --color`` writes them; .obj: as text, to 9 significant digits by trimesh)."""
    if file_type not in FORMATS:
        raise DataError(f"point cloud format must be one of {list(FORMATS)}, got {file_type!r}")
    if file_type in ("ply", "glb") and colours is not None:
        writer = ply_bytes if file_type == "ply" else glb_bytes
        return writer(np.asarray(points, np.float32), np.asarray(colours, np.uint8)[:, :3])
    data = trimesh.PointCloud(np.asarray(points, np.float32), colors=colours).export(file_type=file_type)
    return data.encode() if isinstance(data, str) else data


def write_cloud_files(points: np.ndarray, folder: str | Path, stem: str,
                      colours: np.ndarray | None = None) -> dict[str, Path]:
    """Write ``<stem>.ply/.glb/.obj`` of ``points`` ``(N, 3)`` coloured by ``colours`` ``uint8 (N, 3 | 4)``
    (None: :func:`display_colours`) into ``folder``, atomically; returns ``{format: path}``."""
    colours = display_colours(points) if colours is None else colours
    out = {}
    for fmt in FORMATS:
        out[fmt] = Path(folder) / f"{stem}.{fmt}"
        atomic_io.write_bytes(out[fmt], cloud_bytes(points, colours, fmt))
    return out
