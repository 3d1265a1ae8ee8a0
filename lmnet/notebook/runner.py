"""Running notebooks headlessly (CI, ``make demo``) and keeping them clean in git."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Mapping

from lmnet import atomic_io
from lmnet.envvars import environ
from lmnet.errors import LmnetError
from lmnet.notebook.settings import ENV_VAR, project_root

INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
#: seconds one cell may run before the run is stopped: a guard against a hung kernel, not a time
#: budget. It was 1800 s, and the demo's Variant I cell took longer than that on a 2-core machine
#: shared with three other jobs, so a slow machine lost the demo to the guard
CELL_TIMEOUT_S = 6 * 3600


def has_outputs(path: str | Path) -> list[int]:
    """Indices of code cells in notebook ``path`` that carry outputs or execution counts."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    return [i for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)]


def strip_outputs(path: str | Path) -> bool:
    """Remove outputs and execution counts in place; returns whether anything changed."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    changed = False
    for c in nb.cells:
        if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None):
            c.outputs, c.execution_count = [], None
            changed = True
    if changed:
        atomic_io.write_text(path, nbformat.writes(nb) + "\n")
    return changed


def run_notebook(path: str | Path, out_path: str | Path | None = None, *,
                 overrides: Mapping[str, Any] | None = None, timeout: int = CELL_TIMEOUT_S,
                 cwd: str | Path | None = None) -> float:
    """Execute notebook ``path`` top to bottom in a fresh kernel; write the executed copy to
    ``out_path`` (atomically, also when a cell fails) when given. Raises :class:`LmnetError`
    naming the failing cell. Returns the wall time in seconds.

    The kernel runs in ``cwd`` (default: :func:`~lmnet.notebook.settings.project_root`, so relative
    paths such as ``data/`` and ``runs/`` mean the same in every notebook, wherever the notebook file lies) with
    matplotlib's inline backend, even when the caller's environment sets ``MPLBACKEND`` (CI sets
    ``Agg``, which would make every figure vanish from the executed notebook). ``overrides``
    reach the notebook's ``with_overrides`` through ``$LMNET_NOTEBOOK_OVERRIDES``. A cell that runs
    longer than ``timeout`` seconds stops the run with a :class:`LmnetError` (one line, naming the
    notebook, the cell and the limit).
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    path = Path(path)
    if not path.is_file():
        raise LmnetError(f"notebook {path} does not exist")
    nb = nbformat.read(str(path), as_version=4)
    env = {"MPLBACKEND": INLINE_BACKEND}
    if overrides is not None:
        env[ENV_VAR] = json.dumps(dict(overrides))
    t0 = time.perf_counter()
    with environ(env):  # the kernel inherits this process's environment when it starts
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(Path(cwd) if cwd else project_root())}})
        try:
            client.execute()
        except CellTimeoutError:
            ran = [c for c in nb.cells if c.cell_type == "code" and c.get("execution_count") is not None]
            lines = [line.strip() for line in (ran[-1].source if ran else "").splitlines() if line.strip()]
            first = lines[0] if lines else "?"
            raise LmnetError(f"notebook {path}: the cell starting {first!r} ran longer than {timeout} s and "
                             f"was stopped (run it again to resume: training runs continue from their "
                             f"last checkpoint)") from None
        except CellExecutionError as exc:
            raise LmnetError(f"notebook {path} failed:\n{exc}") from None
        finally:
            if out_path is not None:
                atomic_io.write_text(out_path, nbformat.writes(nb) + "\n")
    return time.perf_counter() - t0
