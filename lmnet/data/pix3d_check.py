"""Pix3D health check behind ``lmnet check-data --dataset pix3d``: which photographs the paper's
evaluation can use, and every missing or bad file or ``pix3d.json`` entry by name.

An entry of ``pix3d.json`` is checked for the keys and types :mod:`lmnet.data.pix3d` needs, its
``img``, ``mask`` and ``model`` for relative paths inside the root (never opened otherwise); a used
entry (chair/sofa/table, no truncation or occlusion flag) is *usable* when its photograph and mask
decode (within ``LMNET_MAX_IMAGE_PIXELS``), its bbox lies inside the image, its mask marks an object
pixel inside the bbox, and its ground truth loads: the official ``pcl_1024`` file
when present, else a readable ``model.obj`` with faces. A photograph whose size differs from
``img_size``, or a mask of another size than its photograph (resized to it), is a note, not a problem.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from lmnet.data import pix3d
from lmnet.data.check import problem_lines
from lmnet.errors import DataError


@dataclass
class Pix3DReport:
    root: str
    categories: tuple[str, ...]
    entries: int = 0
    problems: list[str] = field(default_factory=list)     #: "<file or entry>: <reason>"
    notes: list[str] = field(default_factory=list)        #: harmless size mismatches (not problems)
    used: dict[str, int] = field(default_factory=dict)     #: category → used entries
    usable: dict[str, int] = field(default_factory=dict)   #: category → usable entries
    gt_official: dict[str, int] = field(default_factory=dict)
    gt_sampled: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems and sum(self.used.values()) > 0

    def table(self, max_problems: int = 200) -> str:
        lines = [f"Pix3D at {self.root}: {self.entries} entries in {pix3d.INDEX_FILE}",
                 "| category | used | usable | GT official | GT sampled from obj |", "|---|---:|---:|---:|---:|"]
        for c in self.categories:
            lines.append(f"| {c} | {self.used.get(c, 0)} | {self.usable.get(c, 0)} | "
                         f"{self.gt_official.get(c, 0)} | {self.gt_sampled.get(c, 0)} |")
        if self.notes:
            lines += ["", f"{len(self.notes)} note(s) (usable; sizes that disagree):"]
            lines += [f"- {n}" for n in self.notes[:max_problems]]
        return "\n".join(lines + problem_lines(self.problems, max_problems))

    def to_dict(self) -> dict:
        return asdict(self)


def _entries(root: Path, report: Pix3DReport) -> list[dict]:
    """The entries whose keys and types are valid; the others become problems."""
    path = root / pix3d.INDEX_FILE
    if not path.is_file():
        report.problems.append(f"{path}: missing")
        return []
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        report.problems.append(f"{path}: not valid JSON ({exc})")
        return []
    if not isinstance(data, list):
        report.problems.append(f"{path}: expected a list of entries")
        return []
    report.entries = len(data)
    good = []
    for i, e in enumerate(data):
        try:
            pix3d._check_entry(e, i, path)
            good.append(e)
        except DataError as exc:
            report.problems.append(str(exc))
    return good


def check_pix3d(root: str | Path, categories: Sequence[str] | str | None = None) -> Pix3DReport:
    """Check every used entry of ``categories`` (default chair, sofa, table); see the module docstring."""
    root = Path(root)
    cats = pix3d.parse_categories(categories)
    report = Pix3DReport(root=str(root), categories=cats)
    gt_status: dict[str, str | None] = {}  # model path → "official"/"sampled" or None (bad)
    for e in pix3d.select(_entries(root, report), cats):
        c = e["category"]
        report.used[c] = report.used.get(c, 0) + 1
        ok = True
        try:
            rgb, mask = pix3d.read_photo(root, e)
            pix3d.check_mask(root, e, mask, pix3d.check_bbox(e, rgb.shape[1], rgb.shape[0]))
            report.notes += pix3d.size_notes(root, e, rgb)
        except DataError as exc:
            report.problems.append(str(exc))
            ok = False
        m = str(e["model"])
        if m not in gt_status:
            try:
                gt_status[m] = pix3d.load_gt(root, e)[1]
            except DataError as exc:
                report.problems.append(f"{exc} (ground truth of {pix3d.entry_key(e)})")
                gt_status[m] = None
        src = gt_status[m]
        if src == "official":
            report.gt_official[c] = report.gt_official.get(c, 0) + 1
        elif src == "sampled":
            report.gt_sampled[c] = report.gt_sampled.get(c, 0) + 1
        if ok and src is not None:
            report.usable[c] = report.usable.get(c, 0) + 1
    return report
