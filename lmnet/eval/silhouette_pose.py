"""A silhouette run's shape and pose, one table (issue #30): per category the lmnet-protocol Chamfer
×100 of the run and of the medoid mean shape (:func:`lmnet.eval.run.evaluate_run`, its baseline), and
for an unknown-pose run the student's pose as DPC reports it (:func:`lmnet.losses.pose.aligned_pose_errors`:
accuracy within 30° and median angular error after the best global rotation, per category since each
category's network learns its own frame; symmetric categories take each view's best symmetry).

The student sees every view of every model of the split once (its pose image), so the pose rows
count ``models × 24`` views; the Chamfer rows count the pairs :func:`~lmnet.eval.run.evaluate_run`
evaluated (``max_items`` limits those only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from lmnet.errors import DataError
from lmnet.eval.baselines import MEDOID_LABEL
from lmnet.eval.protocol import Protocol
from lmnet.eval.run import evaluate_run
from lmnet.eval.runner import MODEL_LABEL
from lmnet.losses.pose import aligned_pose_errors, rotations_from_view_angles
from lmnet.methods.silhouette.evaluate import student_poses_of_split
from lmnet.registry import load_model

def evaluate_silhouette_run(run_dir: str | Path, split: str = "test", *,
                            symmetries: Mapping[str, Sequence[np.ndarray]] | None = None, workers: int = 2,
                            max_items: int = 0, device: str = "cpu") -> dict[str, Any]:
    """Evaluate a silhouette run (``lmnet train silhouette``) → ``{"rows": [...], "pose_errors_deg":
    {category: (V,) degrees}, "markdown": str, "eval": evaluate_run's result}``.

    A row per category: ``category`` (name), ``n_pairs``, ``cd`` and ``cd_medoid`` (Chamfer ×100,
    lmnet protocol, EMD off), and with ``pose="unknown"`` ``n_views``, ``pose_accuracy_30``
    (fraction) and ``pose_median_deg``; ``None`` with known poses. ``symmetries``: ``{category name:
    rotations (3, 3)}`` (e.g. :func:`lmnet.losses.pose.symmetry_group`), identity for the others.
    ``evaluate_run`` writes its usual ``eval_<split>.*`` files into the run folder."""
    res = evaluate_run(run_dir, split=split, protocol=Protocol(emd=False), workers=workers, max_items=max_items,
                       device=device)
    if MEDOID_LABEL not in res["tables"]:
        raise DataError(f"{run_dir}: the evaluation has no medoid baseline row ({MEDOID_LABEL!r}); "
                        "it needs the run's training split on disk")
    medoid = {r["synset"]: r for r in res["tables"][MEDOID_LABEL]}
    rows = [{"category": r["category"], "n_pairs": r["n_pairs"], "cd": r["cd_x100"],
             "cd_medoid": medoid[r["synset"]]["cd_x100"], "n_views": None, "pose_accuracy_30": None,
             "pose_median_deg": None, "synset": r["synset"]} for r in res["tables"][MODEL_LABEL] if r["synset"]]
    errors: dict[str, np.ndarray] = {}
    model, config = load_model(run_dir)
    if getattr(model, "pose_net", None) is not None:
        poses = student_poses_of_split(model, config, split, device=device)
        for row in rows:
            pick = poses["synset"] == row["synset"]
            pred = rotations_from_view_angles(*poses["pred"][pick].T)
            true = rotations_from_view_angles(*poses["true"][pick].T)
            got = aligned_pose_errors(pred, true, (symmetries or {}).get(row["category"]))
            row.update(n_views=int(pick.sum()), pose_accuracy_30=got.accuracy_30, pose_median_deg=got.median_deg)
            errors[row["category"]] = got.errors_deg
    for row in rows:
        del row["synset"]
    return {"rows": rows, "pose_errors_deg": errors, "markdown": pose_table_markdown(rows), "eval": res}


def pose_table_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows of :func:`evaluate_silhouette_run` → a markdown table (CD ×100 with 3 decimals, accuracy as
    a percentage, median in degrees; "–" where a run has no pose to measure)."""
    head = ["category", "pairs", "CD ×100", "medoid CD ×100", "views", "pose acc. ≤30°", "median pose error"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for r in rows:
        pose = (["–"] * 3 if r["pose_accuracy_30"] is None else
                [str(r["n_views"]), f"{100 * r['pose_accuracy_30']:.1f} %", f"{r['pose_median_deg']:.1f}°"])
        lines.append(f"| {r['category']} | {r['n_pairs']} | {r['cd']:.3f} | {r['cd_medoid']:.3f} | " + " | ".join(pose) + " |")
    return "\n".join(lines) + "\n"


__all__ = ["evaluate_silhouette_run", "pose_table_markdown"]
