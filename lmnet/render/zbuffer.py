"""Fragment generation and the z-buffer shared by the triangle and the splat rasterisers.

Primitives (triangles, sphere splats) come with a pixel bounding box. Boxes are grouped into a few
size classes so each group is evaluated as one dense ``(m, bh, bw)`` tensor; groups are chunked so
no tensor exceeds ``max_fragments`` elements (memory stays bounded for big meshes / images).

The z-buffer stores, per sample, one int64 key ``(quantised depth << id_bits) | primitive id`` and
keeps the minimum with ``scatter_reduce(amin)``: one pass gives the nearest primitive of every
sample, deterministically (ties go to the lower primitive id) on CPU and CUDA alike.
"""

from __future__ import annotations

from typing import Iterator

import torch

_SENTINEL = torch.iinfo(torch.int64).max
_KEY_BITS = 62


def _size_classes(max_size: int) -> list[int]:
    """1, 2, 3, 4, 6, 8, 12, 16, 24, … (≤ 1.5× waste per axis) up to ``max_size``."""
    sizes = [1, 2, 3]
    while sizes[-1] < max_size:
        sizes.append(sizes[-2] * 2)
    return sizes


def iter_fragments(x0: torch.Tensor, y0: torch.Tensor, w: torch.Tensor, h: torch.Tensor,
                   max_fragments: int = 1 << 21) -> Iterator[tuple]:
    """Enumerate the pixels of ``M`` boxes, grouped by size.

    Args:
        x0, y0: ``(M,)`` long, first column / row of each box.
        w, h: ``(M,)`` long, box width / height in pixels (≥ 1).
        max_fragments: largest ``m * bh * bw`` yielded at once.
    Yields:
        ``(idx (m,), dx (1, 1, bw), dy (1, bh, 1), valid (m, bh, bw))``: the primitives of this chunk,
        the pixel offsets inside the box (long) and which offsets lie inside each box.
    """
    if x0.numel() == 0:
        return
    device = x0.device
    max_side = int(torch.maximum(w.max(), h.max()))
    sizes = torch.tensor(_size_classes(max_side), device=device)
    cw = torch.searchsorted(sizes, w)
    ch = torch.searchsorted(sizes, h)
    key = ch * len(sizes) + cw
    order = torch.argsort(key, stable=True)
    uniq, counts = torch.unique_consecutive(key[order], return_counts=True)
    start = 0
    for k, n in zip(uniq.tolist(), counts.tolist()):
        bh, bw = int(sizes[k // len(sizes)]), int(sizes[k % len(sizes)])
        group = order[start:start + n]
        start += n
        step = max(1, max_fragments // (bh * bw))
        dy = torch.arange(bh, device=device).view(1, bh, 1)
        dx = torch.arange(bw, device=device).view(1, 1, bw)
        for s in range(0, n, step):
            idx = group[s:s + step]
            valid = (dy < h[idx].view(-1, 1, 1)) & (dx < w[idx].view(-1, 1, 1))
            yield idx, dx, dy, valid


class ZBuffer:
    """Nearest-primitive buffer over ``n_samples`` samples.

    Args:
        n_samples: number of samples (e.g. ``K * H * W``).
        n_prims: number of primitives (ids ``0 … n_prims-1``).
        z_range: ``(zmin, zmax)`` of the depth values passed to :meth:`add` (smaller = nearer);
            depths are quantised to ``62 - id_bits`` bits over this range.
    """

    def __init__(self, n_samples: int, n_prims: int, z_range: tuple[float, float], device=None):
        self.id_bits = max(1, int(n_prims).bit_length())
        depth_bits = _KEY_BITS - self.id_bits
        if depth_bits < 16:
            raise ValueError(f"too many primitives for one z-buffer pass: {n_prims}")
        self.max_q = float((1 << depth_bits) - 1)
        zmin, zmax = float(z_range[0]), float(z_range[1])
        self.zmin = zmin
        self.scale = self.max_q / max(zmax - zmin, 1e-12)
        self.keys = torch.full((n_samples,), _SENTINEL, dtype=torch.int64, device=device)

    def add(self, sample: torch.Tensor, z: torch.Tensor, prim: torch.Tensor) -> None:
        """Offer fragments: ``sample (n,)`` long sample index, ``z (n,)`` depth, ``prim (n,)`` id."""
        q = ((z.double() - self.zmin) * self.scale).clamp_(0.0, self.max_q).long()
        self.keys.scatter_reduce_(0, sample, (q << self.id_bits) | prim, reduce="amin")

    def winners(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(sample (c,), prim (c,))`` for every covered sample, samples in increasing order."""
        sample = torch.nonzero(self.keys != _SENTINEL).squeeze(-1)
        prim = self.keys[sample] & ((1 << self.id_bits) - 1)
        return sample, prim
