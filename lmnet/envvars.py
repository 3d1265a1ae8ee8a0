"""Environment variables: setting some for a while (child processes and kernels read them at
start), and the resource limits a user can raise with them.

Resource limits (:class:`Limit`, one constant each below, listed in docs/reliability.md#resource-limits)
are checked on what a command is about to compute — the padded image, the sample clouds of a batch,
the pixels of a render, the points of a mesh, the bytes an archive expands to — before it is
computed. Each variable holds a whole number (``_`` separators allowed); ``0`` means no limit.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Iterator, Mapping

from lmnet.errors import ConfigError, ResourceLimitError


@contextlib.contextmanager
def environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set ``values`` in ``os.environ`` for the ``with`` block, then put back what was there before
    (a variable that was unset is unset again), also when the block raises."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass(frozen=True)
class Limit:
    """A resource limit: environment variable ``env``, its ``default`` and the ``unit`` it counts
    (a plural noun for messages: ``"pixels"``)."""

    env: str
    default: int
    unit: str

    def value(self) -> int | None:
        """``$env`` or the default; None when the variable is ``0`` (no limit)."""
        raw = os.environ.get(self.env, "").strip().replace("_", "")
        if not raw:
            return self.default
        if not raw.isdigit():
            raise ConfigError(f"{self.env} must be a whole number of {self.unit} (0 = no limit), got {raw!r}")
        return int(raw) or None

    def check(self, amount: int, what: str, hint: str = "", error: type = ResourceLimitError) -> None:
        """Raise ``error`` when ``amount`` is over the limit: one line with ``what`` (the file or
        argument and what it asks for), the limit, ``hint`` (how to ask for less) and the variable."""
        limit = self.value()
        if limit is not None and amount > limit:
            raise error(f"{what}: {amount:,} {self.unit} is over the limit of {limit:,} {self.unit}; "
                        f"{hint + ', or ' if hint else ''}set {self.env}={amount} (0 = no limit) to allow it")


#: pixels of an image decoded (the file) and of the square it is padded to (``infer --images``)
MAX_IMAGE_PIXELS = Limit("LMNET_MAX_IMAGE_PIXELS", 50_000_000, "pixels")
#: bytes of one file uploaded to ``lmnet app`` (the web app; its pixels are held to MAX_IMAGE_PIXELS too)
MAX_UPLOAD_BYTES = Limit("LMNET_MAX_UPLOAD_BYTES", 50 << 20, "bytes")
#: Variant II sample clouds decoded at once: images in a batch × ``--samples`` (2048 points each, 24 KiB)
MAX_SAMPLE_CLOUDS = Limit("LMNET_MAX_SAMPLE_CLOUDS", 4096, "sample clouds")
#: pixels one ``lmnet render`` holds: cells × size² for a strip, frames × size² for a GIF
MAX_RENDER_PIXELS = Limit("LMNET_MAX_RENDER_PIXELS", 100_000_000, "pixels")
#: points of a cloud ``lmnet mesh`` meshes (16,384 took ~10 s, 65,536 ~24 s on the development machine)
MAX_MESH_POINTS = Limit("LMNET_MAX_MESH_POINTS", 100_000, "points")
#: bytes one archive may expand to when extracted
MAX_EXTRACT_BYTES = Limit("LMNET_MAX_EXTRACT_BYTES", 64 << 30, "bytes")
#: uncompressed / compressed size of one archive member (members over 1 MiB; a tar: the whole archive)
MAX_COMPRESSION_RATIO = Limit("LMNET_MAX_COMPRESSION_RATIO", 200, "times compression")
