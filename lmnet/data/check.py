"""Dataset health check behind ``lmnet check-data``: which models are fully usable, and why not.

A model is *usable* when all 24 PNGs decode to 137×137 RGBA, its ``rendering_metadata.txt`` has 24
valid lines, and every *required* point cloud (``n_points``) has shape ``(N, 3)`` with finite
floats. Every missing or corrupt file is named in :attr:`DataReport.problems` (a missing model
folder is reported once, as the folder).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from lmnet.data import layout
from lmnet.data.categories import name_of
from lmnet.data.splits import select_keys
from lmnet.errors import CorruptFileError, DataError


def problem_lines(problems: Sequence, max_problems: int) -> list[str]:
    """The report lines listing ``problems`` (at most ``max_problems`` in full), or saying there are
    none: the tail of the Pix3D, CUB and Pascal3D+ check tables."""
    if not problems:
        return ["", "no problems found"]
    lines = ["", f"{len(problems)} problem(s):"] + [f"- {p}" for p in problems[:max_problems]]
    if len(problems) > max_problems:
        lines.append(f"- … and {len(problems) - max_problems} more")
    return lines


@dataclass
class Problem:
    key: str       # "synset/model"
    path: str      # the file or folder
    reason: str
    required: bool = True  # False: a point-cloud size that was not requested

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" + ("" if self.required else " (not required)")


@dataclass
class ModelCheck:
    key: str
    views_ok: int = 0                                   # valid PNGs out of 24
    metadata_ok: bool = False
    points_ok: dict[int, bool] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def usable(self, n_points: Sequence[int], images: bool = True) -> bool:
        imgs = (self.views_ok == layout.N_VIEWS and self.metadata_ok) if images else True
        return imgs and all(self.points_ok.get(n, False) for n in n_points)


@dataclass
class CategoryStats:
    synset: str
    name: str
    models: int = 0
    all_views: int = 0      # models with all 24 valid views
    metadata: int = 0       # models with valid metadata
    points: dict[int, int] = field(default_factory=dict)  # size -> models with a valid cloud
    usable: int = 0


@dataclass
class DataReport:
    root: str
    split: str | None
    n_points: tuple[int, ...]
    images: bool
    categories: list[CategoryStats]
    problems: list[Problem]

    @property
    def n_models(self) -> int:
        return sum(c.models for c in self.categories)

    @property
    def n_usable(self) -> int:
        return sum(c.usable for c in self.categories)

    @property
    def ok(self) -> bool:
        """True when there is at least one model and every requested model is usable."""
        return self.n_models > 0 and self.n_usable == self.n_models

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok, "n_models": self.n_models, "n_usable": self.n_usable}

    def table(self, max_problems: int | None = 200) -> str:
        """A readable multi-line report (categories, totals, problems, verdict)."""
        sizes = layout.POINT_COUNTS
        head = ["category", "synset", "models"] + (["24 views", "metadata"] if self.images else []) \
            + [f"pc{n}" + ("*" if n in self.n_points else "") for n in sizes] + ["usable"]
        rows = []
        tot = CategoryStats("", "total", points={n: 0 for n in sizes})
        for c in self.categories:
            rows.append([c.name, c.synset, c.models] + ([c.all_views, c.metadata] if self.images else [])
                        + [c.points.get(n, 0) for n in sizes] + [c.usable])
            tot.models += c.models
            tot.all_views += c.all_views
            tot.metadata += c.metadata
            tot.usable += c.usable
            for n in sizes:
                tot.points[n] += c.points.get(n, 0)
        rows.append(["total", "", tot.models] + ([tot.all_views, tot.metadata] if self.images else [])
                    + [tot.points[n] for n in sizes] + [tot.usable])
        widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
        fmt = lambda r: "  ".join(str(v).ljust(w) if i < 2 else str(v).rjust(w)  # noqa: E731
                                  for i, (v, w) in enumerate(zip(r, widths)))
        lines = [f"root: {self.root}   split: {self.split or '(everything on disk)'}   "
                 f"required point clouds (*): {', '.join(map(str, self.n_points)) or 'none'}"
                 + ("" if self.images else "   renderings: not checked"),
                 "", fmt(head), fmt(["-" * w for w in widths])]
        lines += [fmt(r) for r in rows[:-1]] + [fmt(["-" * w for w in widths]), fmt(rows[-1])]
        if self.problems:
            lines += ["", f"problems ({len(self.problems)}):"]
            shown = self.problems if max_problems is None else self.problems[:max_problems]
            lines += [f"  {p.key}  {p}" for p in shown]
            if len(shown) < len(self.problems):
                lines.append(f"  … and {len(self.problems) - len(shown)} more")
        lines.append("")
        if self.ok:
            lines.append(f"OK: all {self.n_models} models are usable")
        elif self.n_models == 0:
            lines.append("NOT USABLE: no models found")
        else:
            lines.append(f"NOT USABLE: {self.n_models - self.n_usable} of {self.n_models} models "
                         f"have missing or corrupt required files")
        return "\n".join(lines)


def check_model(root: str | Path, key: str, n_points: Sequence[int] = layout.POINT_COUNTS,
                images: bool = True) -> ModelCheck:
    """Fully validate one model: decode every PNG, parse the metadata, read every point cloud."""
    synset, model = key.split("/", 1)
    out = ModelCheck(key)
    if images:
        rdir = layout.rendering_dir(root, synset, model)
        if not rdir.is_dir():
            out.problems.append(Problem(key, str(rdir), "missing rendering folder (24 PNGs + metadata)"))
        else:
            try:
                layout.parse_metadata(layout.metadata_path(root, synset, model))
                out.metadata_ok = True
            except CorruptFileError as exc:
                out.problems.append(Problem(key, exc.path, exc.reason))
            for v in range(layout.N_VIEWS):
                try:
                    layout.read_image(layout.image_path(root, synset, model, v))
                    out.views_ok += 1
                except CorruptFileError as exc:
                    out.problems.append(Problem(key, exc.path, exc.reason))
    pdir = Path(root) / layout.POINTCLOUD_DIR / synset / model
    if not pdir.is_dir():
        out.problems.append(Problem(key, str(pdir), "missing point-cloud folder"))
        out.points_ok = {n: False for n in layout.POINT_COUNTS}
        return out
    for n in layout.POINT_COUNTS:
        try:
            layout.read_pointcloud(layout.pointcloud_path(root, synset, model, n), n)
            out.points_ok[n] = True
        except CorruptFileError as exc:
            out.points_ok[n] = False
            out.problems.append(Problem(key, exc.path, exc.reason, required=n in n_points))
    return out


def check_data(root: str | Path, split=None, categories=None,
               n_points: Iterable[int] = layout.POINT_COUNTS, images: bool = True,
               workers: int = 0, progress: bool = False) -> DataReport:
    """Check every model of ``split`` (None → everything under ``root``) in ``categories``.

    Args:
        split: None, a split file path, or ``{synset: ["synset/model", ...]}``.
        n_points: point-cloud sizes a model needs to count as usable (all three are counted).
        images: also check renderings and metadata.
        workers: threads decoding in parallel (0 = this thread).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset root {root} does not exist")
    n_points = tuple(sorted(set(int(n) for n in n_points)))
    bad = [n for n in n_points if n not in layout.POINT_COUNTS]
    if bad:
        raise DataError(f"n_points must be among {layout.POINT_COUNTS}, got {bad}")
    keys = select_keys(root, split, categories, point_clouds_only=not images)
    if workers and len(keys) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            results = list(_progress(pool.map(lambda k: check_model(root, k, n_points, images), keys),
                                     len(keys), progress))
    else:
        results = [check_model(root, k, n_points, images) for k in _progress(keys, len(keys), progress)]
    stats: dict[str, CategoryStats] = {}
    problems: list[Problem] = []
    for r in results:
        s = r.key.split("/", 1)[0]
        c = stats.setdefault(s, CategoryStats(s, name_of(s), points={n: 0 for n in layout.POINT_COUNTS}))
        c.models += 1
        c.all_views += r.views_ok == layout.N_VIEWS
        c.metadata += r.metadata_ok
        for n, ok in r.points_ok.items():
            c.points[n] += ok
        c.usable += r.usable(n_points, images)
        problems += r.problems
    split_name = None if split is None else (str(split) if isinstance(split, (str, Path)) else "<dict>")
    return DataReport(root=str(root), split=split_name, n_points=n_points, images=images,
                      categories=[stats[s] for s in sorted(stats)], problems=problems)


def _progress(it, total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(it, total=total, desc="checking", unit="model", disable=not enabled or total < 2,
                leave=False)
