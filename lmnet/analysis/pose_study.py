"""The figures of ``studies/silhouette_pose.py`` (issue #30) on disk, their table and the pose-error
histogram that notebook 06 shows.

Files, in one results folder (written atomically, merged with what is there, so categories can be
run one at a time):

- ``silhouette_pose.json``: ``{category: {pose mode: entry}}`` with pose mode ``"known"`` /
  ``"unknown"`` and entry keys ``pose_accuracy_30`` (fraction of views within 30°), ``pose_median_deg``
  (degrees; both ``null`` for ``"known"``, whose cameras are given, not predicted), ``cd``,
  ``cd_medoid`` (Chamfer ×100, lmnet protocol, of the run and of the medoid mean shape on the same
  pairs), ``minutes`` (training time, the sum of the run's epoch times) and ``command`` (the study
  command that produced the entry);
- ``silhouette_pose_errors.npz``: ``"<category>.<mode>"`` → ``(V,)`` float64 per-view pose errors in
  degrees after the global alignment (:func:`lmnet.losses.pose.aligned_pose_errors`), unknown mode only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from lmnet.atomic_io import save_npz, write_json
from lmnet.errors import CorruptFileError
from lmnet.losses.pose import ACCURACY_THRESHOLD_DEG

FIGURES_FILE = "silhouette_pose.json"
ERRORS_FILE = "silhouette_pose_errors.npz"
ENTRY_KEYS = ("pose_accuracy_30", "pose_median_deg", "cd", "cd_medoid", "minutes", "command")
HOW_TO = ("No `{file}` in `{folder}` yet. It comes from the long runs of the study (about an hour per "
          "category and pose mode on 2 CPU cores), e.g.\n\n"
          "    python -m studies.silhouette_pose --data DATA_ROOT --categories chair table --modes known unknown\n")


@dataclass
class PoseStudy:
    """``figures``: the json's ``{category: {mode: entry}}``; ``errors``: ``{"<category>.<mode>": (V,) degrees}``."""

    figures: dict[str, dict[str, dict[str, Any]]]
    errors: dict[str, np.ndarray]


def read_pose_study(folder: str | Path) -> PoseStudy | None:
    """The study's files in ``folder``; ``None`` when the json is not there (errors: empty without the npz)."""
    folder = Path(folder)
    path = folder / FIGURES_FILE
    if not path.is_file():
        return None
    try:
        figures = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CorruptFileError(f"{path}: not valid JSON ({e})") from None
    for cat, modes in figures.items():
        for mode, entry in modes.items():
            missing = [k for k in ENTRY_KEYS if k not in entry]
            if missing:
                raise CorruptFileError(f"{path}: entry {cat}/{mode} lacks keys {missing}; expected {list(ENTRY_KEYS)}")
    errors = {}
    if (folder / ERRORS_FILE).is_file():
        try:
            with np.load(folder / ERRORS_FILE, allow_pickle=False) as z:
                errors = {k: z[k] for k in z.files}
        except (OSError, ValueError) as e:  # a pickled (object) array is refused here, never executed
            raise CorruptFileError(folder / ERRORS_FILE, f"unreadable per-view pose errors ({e})") from None
    return PoseStudy(figures, errors)


def write_pose_study(folder: str | Path, figures: Mapping[str, Mapping[str, Mapping[str, Any]]],
                     errors: Mapping[str, np.ndarray]) -> PoseStudy:
    """Merge new ``figures`` / ``errors`` (as in :class:`PoseStudy`) into ``folder``'s files (a new
    entry replaces the one of the same category and mode) and write both atomically; returns the merged study."""
    old = read_pose_study(folder) or PoseStudy({}, {})
    for cat, modes in figures.items():
        for mode, entry in modes.items():
            if set(entry) != set(ENTRY_KEYS):
                raise ValueError(f"entry {cat}/{mode} has keys {sorted(entry)}; expected {list(ENTRY_KEYS)}")
            old.figures.setdefault(cat, {})[mode] = dict(entry)
            old.errors.pop(f"{cat}.{mode}", None)
    old.errors.update({k: np.asarray(v, dtype=np.float64) for k, v in errors.items()})
    save_npz(Path(folder) / ERRORS_FILE, **old.errors)
    write_json(Path(folder) / FIGURES_FILE, old.figures)
    return old


def pose_study_markdown(figures: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """The json's figures → a markdown table, one row per (category, pose mode)."""
    head = "| category | pose | CD ×100 | medoid CD ×100 | pose acc. ≤30° | median pose error | training (min) |"
    lines = [head, "|---|---|---:|---:|---:|---:|---:|"]
    for cat in sorted(figures):
        for mode in sorted(figures[cat]):
            e = figures[cat][mode]
            acc = "–" if e["pose_accuracy_30"] is None else f"{100 * e['pose_accuracy_30']:.1f} %"
            med = "–" if e["pose_median_deg"] is None else f"{e['pose_median_deg']:.1f}°"
            lines.append(f"| {cat} | {mode} | {e['cd']:.3f} | {e['cd_medoid']:.3f} | {acc} | {med} | {e['minutes']:.1f} |")
    return "\n".join(lines) + "\n"


def plot_pose_errors(errors: Mapping[str, np.ndarray], bins: int = 36):
    """``{label: (V,) degrees}`` → a matplotlib Figure: the histogram of per-view pose errors
    (0–180°, fraction of each label's views per bin) with the 30° accuracy threshold marked."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    edges = np.linspace(0.0, 180.0, bins + 1)
    for label, err in sorted(errors.items()):
        err = np.asarray(err, dtype=np.float64)
        ax.hist(err, bins=edges, weights=np.full(len(err), 1.0 / max(1, len(err))), histtype="step", lw=1.5,
                label=f"{label} ({len(err)} views, median {np.median(err):.1f}°)")
    ax.axvline(ACCURACY_THRESHOLD_DEG, color="0.5", ls="--", lw=0.8)
    ax.set_xlabel("pose error after the global alignment (degrees)")
    ax.set_ylabel("fraction of views")
    ax.set_xlim(0, 180)
    if errors:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def pose_study_report(folder: str | Path):
    """Notebook 06's cell: ``(markdown, figure or None)``, the study's table and its pose-error
    histogram, or how to produce the files when ``folder`` has none."""
    study = read_pose_study(folder)
    if study is None:
        return HOW_TO.format(file=FIGURES_FILE, folder=folder), None
    return pose_study_markdown(study.figures), (plot_pose_errors(study.errors) if study.errors else None)


__all__ = ["ENTRY_KEYS", "ERRORS_FILE", "FIGURES_FILE", "PoseStudy", "plot_pose_errors", "pose_study_markdown",
           "pose_study_report", "read_pose_study", "write_pose_study"]
