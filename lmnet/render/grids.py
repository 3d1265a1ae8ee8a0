"""Figure grids: input image | GT | prediction (| Variant II samples), one row per item.

- :func:`make_grid` / :func:`save_grid` — rows of dicts (e.g. dataset items plus predictions) or of
  plain sequences → one white PIL image with column titles, a caption per row (category name,
  model id, view) and per-cell metric labels when given;
- :func:`to_pil`, :func:`show` — images to PIL; inline display in notebooks (no-op elsewhere).

Cell contents are recognised by column and type: the ``"input"`` column (alias ``"image"``) holds
an image — a ``(3, H, W)`` float tensor/array in raw 0–255 (dataset items), a ``uint8 (H, W, 3|4)``
array or a PIL image; the ``"samples"`` column holds ``K`` clouds (``(K, N, 3)`` or a list) spread
over ``K`` sub-columns; every other column holds a cloud ``(N, 3)``, a mesh ``(vertices (V, 3),
faces (F, 3))`` tuple, or an image as above.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, NamedTuple, Sequence

import numpy as np
import torch

from lmnet.atomic_io import atomic_path
from lmnet.data.categories import name_of
from lmnet.render.colors import DEFAULT_ERROR_MAX, ERROR_CMAP, colormap
from lmnet.render.pointclouds import render_cloud, render_mesh_preview

DEFAULT_COLUMNS = ("input", "gt", "prediction", "samples")
DEFAULT_TITLES = {"input": "input image", "image": "input image", "gt": "ground truth",
                  "prediction": "prediction", "samples": "sample", "mesh": "mesh"}
IMAGE_COLUMNS = ("input", "image")
_BG = (255, 255, 255)
_TEXT = (30, 30, 30)
_SUBTLE = (95, 95, 95)
_RULE = (225, 225, 225)


# ----------------------------------------------------------------------------- helpers
def _font(size: int):
    from PIL import ImageFont

    try:
        from matplotlib import font_manager

        return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)
    except Exception:  # noqa: BLE001 - any font problem: fall back to Pillow's bundled font
        return ImageFont.load_default(size=size)


def to_pil(img):
    """A PIL image from a PIL image, or a ``uint8`` tensor/array ``(H, W, 3|4)`` / ``(B, H, W, 3|4)``
    (a batch becomes a horizontal strip), or a ``(3, H, W)`` float image in raw 0–255."""
    from PIL import Image

    if isinstance(img, Image.Image):
        return img
    a = img.detach().cpu().numpy() if isinstance(img, torch.Tensor) else np.asarray(img)
    if a.ndim == 4:
        a = np.concatenate(list(a), axis=1)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (3, 4):
        a = np.repeat(a, 3, 0) if a.shape[0] == 1 else a
        a = a.transpose(1, 2, 0)
    if a.ndim != 3 or a.shape[-1] not in (3, 4):
        raise ValueError(f"expected an image (H, W, 3|4), (B, H, W, 3|4) or (3, H, W), got {a.shape}")
    if a.dtype != np.uint8:
        a = np.clip(np.round(a.astype(np.float64)), 0, 255).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(a), "RGBA" if a.shape[-1] == 4 else "RGB")


def _on_white(img):
    from PIL import Image

    if img.mode == "RGBA":
        bg = Image.new("RGB", img.size, _BG)
        bg.paste(img, mask=img.getchannel("A"))
        return bg
    return img.convert("RGB")


def show(img) -> None:
    """Display ``img`` (anything :func:`to_pil` takes) inline in a Jupyter kernel; outside a
    notebook kernel (scripts, tests, a terminal IPython) it does nothing. Returns None, so a trailing
    ``show(x)`` does not display twice."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    ip = get_ipython()
    if ip is None or not hasattr(ip, "kernel"):
        return None
    from IPython.display import display

    display(to_pil(img))
    return None


def _is_mesh(value) -> bool:
    return (isinstance(value, (tuple, list)) and len(value) == 2
            and np.asarray(value[1]).ndim == 2 and np.asarray(value[1]).shape[-1] == 3
            and not np.issubdtype(np.asarray(value[1]).dtype, np.floating))


def _as_cloud(value, what: str) -> torch.Tensor:
    t = value if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
    t = t.detach().cpu()
    if t.dim() != 2 or t.shape[-1] != 3:
        raise ValueError(f"{what}: expected a cloud (N, 3), a mesh (V, F) or an image, got shape "
                         f"{tuple(t.shape)}")
    return t.float()


def _row_meta(row: Mapping):
    if "meta" in row:
        return row["meta"]
    if all(k in row for k in ("azimuth", "elevation", "distance_ratio")):
        return {k: row[k] for k in ("azimuth", "elevation", "distance_ratio", "fov") if k in row}
    return None


def _caption(row: Mapping) -> str:
    if "title" in row:
        return str(row["title"])

    parts = []
    if "category" in row:
        parts.append(name_of(str(row["category"])))
    if "model_id" in row:
        parts.append(str(row["model_id"]))
    if "view" in row and int(row["view"]) >= 0:
        parts.append(f"view {int(row['view'])}")
    return " · ".join(parts)


def _metric_text(value) -> str:
    if isinstance(value, Mapping):
        return "  ".join(f"{k} {float(v):.2f}" if isinstance(v, (int, float, np.floating)) else f"{k} {v}"
                         for k, v in value.items())
    if isinstance(value, (int, float, np.floating)):
        return f"{float(value):.2f}"
    return str(value)


def compose(cells: Sequence[Sequence], cell: int, col_titles: Sequence[str] | None = None,
            row_captions: Sequence[str] | None = None,
            cell_captions: Sequence[Sequence[str | None]] | None = None, footer=None):
    """Lay out ``cells[r][c]`` (PIL images or None for an empty cell) as a white grid.

    Every cell is resized to ``cell × cell``. Geometry (tests rely on it):
    width ``= n_cols * cell``; height ``= header + n_rows * (caption + cell)`` with
    ``header = grid_header_height(cell)`` when ``col_titles`` is given (else 0) and
    ``caption = grid_caption_height(cell)`` when any row caption is non-empty (else 0), plus the
    height of ``footer`` (a PIL image pasted under the grid, e.g. :func:`error_legend`) if given.
    """
    from PIL import Image, ImageDraw

    n_rows = len(cells)
    n_cols = max((len(r) for r in cells), default=0)
    if n_rows == 0 or n_cols == 0:
        raise ValueError("nothing to draw: the grid has no cells")
    header = grid_header_height(cell) if col_titles else 0
    has_caption = bool(row_captions) and any(row_captions)
    cap = grid_caption_height(cell) if has_caption else 0
    W, H = n_cols * cell, header + n_rows * (cap + cell)
    out = Image.new("RGB", (W, H + (footer.size[1] if footer is not None else 0)), _BG)
    if footer is not None:
        out.paste(_on_white(footer), (0, H))
    draw = ImageDraw.Draw(out)
    title_font, cap_font, small_font = _font(_fs(cell)), _font(_fs(cell)), _font(max(10, _fs(cell) - 3))
    if col_titles:
        for c, t in enumerate(col_titles[:n_cols]):
            if t:
                draw.text((c * cell + cell / 2, header / 2), _fit(draw, str(t), title_font, cell - 8),
                          fill=_TEXT, font=title_font, anchor="mm")
        draw.line([(0, header - 1), (W, header - 1)], fill=_RULE)
    for r, row in enumerate(cells):
        y0 = header + r * (cap + cell)
        if has_caption:
            if r > 0:
                draw.line([(0, y0), (W, y0)], fill=_RULE)
            text = row_captions[r] if r < len(row_captions) else ""
            if text:
                draw.text((6, y0 + cap / 2), _fit(draw, str(text), cap_font, W - 12), fill=_TEXT,
                          font=cap_font, anchor="lm")
        for c, img in enumerate(row):
            if img is None:
                continue
            im = _on_white(img)
            if im.size != (cell, cell):
                im = im.resize((cell, cell), resample=3 if im.size[0] < cell else 1)  # bicubic / lanczos
            out.paste(im, (c * cell, y0 + cap))
            text = cell_captions[r][c] if cell_captions and c < len(cell_captions[r]) else None
            if text:
                draw.text((c * cell + 6, y0 + cap + cell - 5), _fit(draw, text, small_font, cell - 12),
                          fill=_SUBTLE, font=small_font, anchor="ld")
        for c in range(1, n_cols):
            draw.line([(c * cell, y0 + cap + 8), (c * cell, y0 + cap + cell - 8)], fill=_RULE)
    return out


def grid_legend_height(cell: int) -> int:
    """Height in pixels of the error colour legend under a grid of ``cell``-pixel cells."""
    return _fs(cell) + 22


def error_legend(width: int, cell: int, error_max=DEFAULT_ERROR_MAX):
    """A ``width × grid_legend_height(cell)`` strip: the error colour bar from 0 to ``error_max``
    with its meaning (Euclidean NN distance to the GT, unit-diagonal frame)."""
    from PIL import Image, ImageDraw

    h = grid_legend_height(cell)
    out = Image.new("RGB", (width, h), _BG)
    draw = ImageDraw.Draw(out)
    font = _font(max(10, _fs(cell) - 3))
    top = ("≥ " + f"{float(error_max):g}") if not isinstance(error_max, str) else f"{error_max} of each cloud"
    label = "error = distance to nearest GT point:"
    x = 8
    draw.text((x, h / 2), label, fill=_SUBTLE, font=font, anchor="lm")
    x += int(draw.textlength(label, font=font)) + 10
    draw.text((x, h / 2), "0", fill=_SUBTLE, font=font, anchor="lm")
    x += int(draw.textlength("0", font=font)) + 6
    bar_w = max(40, min(240, width - x - int(draw.textlength(top, font=font)) - 20))
    ramp = colormap(ERROR_CMAP, torch.linspace(0, 1, bar_w)).numpy()
    bar = (np.repeat(ramp[None], max(6, h // 2 - 2), 0) * 255).round().astype(np.uint8)
    out.paste(Image.fromarray(bar, "RGB"), (x, (h - bar.shape[0]) // 2))
    draw.text((x + bar_w + 6, h / 2), top, fill=_SUBTLE, font=font, anchor="lm")
    return out


def _fs(cell: int) -> int:
    return max(11, min(20, cell // 15))


def grid_header_height(cell: int) -> int:
    """Height in pixels of the column-title band for ``cell``-pixel cells."""
    return _fs(cell) + 14


def grid_caption_height(cell: int) -> int:
    """Height in pixels of a row caption band for ``cell``-pixel cells."""
    return _fs(cell) + 10


def _fit(draw, text: str, font, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


# ----------------------------------------------------------------------------- grids
def _normalise_rows(rows, columns):
    out = []
    for i, row in enumerate(rows):
        if isinstance(row, Mapping):
            d = dict(row)
            # dataset items: "image" is the input, "points" the ground truth
            if "input" not in d and "image" in d:
                d["input"] = d["image"]
            if "gt" not in d and "points" in d:
                d["gt"] = d["points"]
            out.append(d)
        elif isinstance(row, (list, tuple)) and not _is_mesh(row):
            if columns is None:
                raise ValueError("rows given as sequences need columns=(...) naming their entries")
            if len(row) != len(columns):
                raise ValueError(f"row {i} has {len(row)} entries but columns are {tuple(columns)}")
            out.append(dict(zip(columns, row)))
        else:
            out.append({"prediction": row})
    return out


class _CellSpec(NamedTuple):
    """How :func:`make_grid` fills its cells (its keyword arguments of the same names), and
    ``k_max``, the number of sample sub-columns."""

    view: object
    color_by: str
    error_max: object
    cell: int
    backend: str
    radius: object
    max_samples: int
    k_max: int


def _grid_columns(rows: list[dict], columns) -> list:
    """The columns to draw: ``columns``, or those of :data:`DEFAULT_COLUMNS` that some row has."""
    if columns is None:
        columns = [c for c in DEFAULT_COLUMNS if any(c in r for r in rows)]
    columns = list(columns)
    if not columns:
        raise ValueError(f"make_grid: rows have none of the columns {DEFAULT_COLUMNS}; pass columns=")
    return columns


def _column_titles(columns: list, titles) -> list:
    """One title per column: ``titles`` as a ``{column: title}`` mapping over
    :data:`DEFAULT_TITLES` (None: the defaults), or a list of the same length as ``columns``."""
    if isinstance(titles, Mapping) or titles is None:
        tmap = {**DEFAULT_TITLES, **(titles or {})}
        return [tmap.get(c, c) for c in columns]
    tlist = list(titles)
    if len(tlist) != len(columns):
        raise ValueError(f"{len(tlist)} titles for {len(columns)} columns {columns}")
    return tlist


def _max_samples_shown(rows: list[dict], columns: list, max_samples: int) -> int:
    """How many sample sub-columns the grid needs: the most samples any row shows (≤ ``max_samples``),
    0 without a ``"samples"`` column."""
    if "samples" not in columns:
        return 0
    return max(0 if r.get("samples") is None else min(len(r["samples"]), max_samples) for r in rows)


def _header_titles(columns: list, tlist: list, k_max: int) -> list:
    """The titles of the drawn columns: the ``"samples"`` column's title becomes ``k_max`` numbered
    ones (``"sample 1"``, ``"sample 2"``, …)."""
    col_titles = []
    for c, t in zip(columns, tlist):
        if c == "samples":
            col_titles += [f"{t} {i + 1}" for i in range(k_max)]
        else:
            col_titles.append(t)
    return col_titles


def _cloud_coloring(row: Mapping, column: str, what: str, color_by: str):
    """``(color_by, gt)`` for a cloud of ``row`` in ``column``. With ``"error"`` the GT column is
    drawn uniform and a row without a cloud GT by height; ``gt`` is the row's GT cloud ``(N, 3)``
    when colouring by error, else None."""
    gt = row.get("gt")
    by = color_by
    if color_by == "error":
        if column == "gt" or gt is None or _is_mesh(gt):
            by = "uniform" if column == "gt" else "height"
        else:
            gt = _as_cloud(gt, f"row {what.split(',')[0]} gt")
    return by, gt if by == "error" else None


def _cloud_cell(value, row: Mapping, column: str, what: str, spec: _CellSpec):
    """A ``spec.cell``-square RGBA PIL image of a cloud ``(N, 3)`` or a mesh ``(vertices (V, 3),
    faces (F, 3))`` of ``row`` (its R2N2 camera for ``view="r2n2"``); ``what`` names the cell in
    errors."""
    if _is_mesh(value):
        rgba = render_mesh_preview(value[0], value[1], view=spec.view, meta=_row_meta(row), image_size=spec.cell)
        return to_pil(rgba[0])
    pts = _as_cloud(value, what)
    by, gt = _cloud_coloring(row, column, what, spec.color_by)
    rgba = render_cloud(pts, view=spec.view, meta=_row_meta(row), color_by=by, gt=gt, image_size=spec.cell,
                        error_max=spec.error_max, backend=spec.backend, radius=spec.radius)
    return to_pil(rgba[0])


def _sample_cells(row: Mapping, what: str, per, spec: _CellSpec):
    """The ``spec.k_max`` cells of the ``"samples"`` column of ``row`` (None past its last sample)
    and their captions from the per-sample metrics ``per`` (a list, or None)."""
    value = row.get("samples")
    samples = [] if value is None else list(value)[:spec.max_samples]
    line, caps = [], []
    for j in range(spec.k_max):
        line.append(_cloud_cell(samples[j], row, "samples", what, spec) if j < len(samples) else None)
        caps.append(_metric_text(per[j]) if isinstance(per, (list, tuple)) and j < len(per) else None)
    return line, caps


def _row_cells(i: int, row: Mapping, columns: list, spec: _CellSpec):
    """Row ``i``'s cells (PIL images, None where empty) and metric captions (str or None), one of
    each per drawn column: images as given, clouds and meshes rendered."""
    line, caps = [], []
    metrics = row.get("metrics") or {}
    for c in columns:
        what = f"row {i}, column {c!r}"
        value = row.get(c)
        if c == "samples":
            cells, texts = _sample_cells(row, what, metrics.get("samples"), spec)
            line += cells
            caps += texts
            continue
        if value is None:
            line.append(None)
        elif c in IMAGE_COLUMNS or _looks_like_image(value):
            line.append(to_pil(value))
        else:
            line.append(_cloud_cell(value, row, c, what, spec))
        caps.append(_metric_text(metrics[c]) if c in metrics else None)
    return line, caps


def make_grid(rows, columns=None, titles=None, cell: int = 256, view="three_quarter",
              color_by="height", error_max=DEFAULT_ERROR_MAX, max_samples: int = 4,
              backend: str = "torch", radius=None):
    """Draw one row per item.

    Args:
        rows: dicts (keys = column names plus optional ``"category"`` (synset or name),
            ``"model_id"``, ``"view"``, ``"title"`` (replaces the caption), ``"metrics"``
            ``{column: {"CD": 5.2, ...} | str}`` printed in that cell as given — state ×100 etc. in
            the key — and R2N2 camera fields ``azimuth/elevation/distance_ratio[/fov]`` or
            ``"meta"`` for ``view="r2n2"``), or sequences matched to ``columns``, or bare clouds
            (drawn in a ``"prediction"`` column). A dataset item dict works as is.
        columns: the columns in order; default: those of ``("input", "gt", "prediction",
            "samples")`` that some row has. A missing entry leaves its cell empty.
        titles: ``{column: title}`` or a list (one per column); defaults to readable names.
        cell: side of every cell in pixels.
        view: ``"three_quarter"``, ``"r2n2"`` (each row's own R2N2 camera, i.e. the input
            image's viewpoint), ``"r2n2:AZ,EL,DIST"`` or a Camera — see
            :mod:`lmnet.render.pointclouds`.
        color_by: ``"height"``, ``"uniform"`` or ``"error"``: clouds other than ``gt`` coloured
            by NN distance to the row's ``gt`` (0 → ``error_max``; the GT itself is drawn uniform).
        max_samples: at most this many Variant II samples per row.
    Returns:
        an RGB ``PIL.Image`` of size ``(n_cols * cell, header + n_rows * (caption + cell))``
        (see :func:`compose`), plus ``grid_legend_height(cell)`` for the colour legend with
        ``color_by="error"``; ``n_cols`` counts each shown sample as a column.
    """
    rows = _normalise_rows(list(rows), columns)
    if not rows:
        raise ValueError("make_grid: no rows")
    columns = _grid_columns(rows, columns)
    tlist = _column_titles(columns, titles)
    k_max = _max_samples_shown(rows, columns, max_samples)
    col_titles = _header_titles(columns, tlist, k_max)
    spec = _CellSpec(view, color_by, error_max, cell, backend, radius, max_samples, k_max)
    cells, captions, row_caps = [], [], []
    for i, row in enumerate(rows):
        line, caps = _row_cells(i, row, columns, spec)
        cells.append(line)
        captions.append(caps)
        row_caps.append(_caption(row))
    footer = None
    if color_by == "error" and any(r.get("gt") is not None for r in rows):
        footer = error_legend(len(col_titles) * cell, cell, error_max)
    return compose(cells, cell, col_titles, row_caps, captions, footer=footer)


def _looks_like_image(value) -> bool:
    from PIL import Image

    if isinstance(value, Image.Image):
        return True
    shape = tuple(value.shape) if hasattr(value, "shape") else ()
    return len(shape) == 3 and (shape[-1] in (3, 4) and shape[0] > 4 or shape[0] == 3 and shape[-1] > 4)


def save_grid(path, rows, **kwargs) -> Path:
    """:func:`make_grid` (same keyword arguments) written to ``path`` as PNG, atomically."""
    return save_png(path, make_grid(rows, **kwargs))


#: the image formats :func:`save_image` writes, by file extension
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def save_image(path, img) -> Path:
    """Write ``img`` (anything :func:`to_pil` takes) atomically in the format of ``path``'s
    extension (:data:`IMAGE_FORMATS`): PNG, or JPEG (quality 95, alpha composited on white, JPEG
    has none); any other extension is a ValueError. Returns the path."""
    path = Path(path)
    fmt = IMAGE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unknown image extension {path.suffix!r}; use one of {', '.join(IMAGE_FORMATS)}")
    if fmt == "PNG":
        return save_png(path, img)
    with atomic_path(path, suffix=path.suffix.lower()) as tmp:
        _on_white(to_pil(img)).save(tmp, format="JPEG", quality=95)
    return path


def save_png(path, img) -> Path:
    """Write ``img`` (anything :func:`to_pil` takes) to ``path`` as PNG, atomically. Returns the path."""

    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        to_pil(img).save(tmp, format="PNG")
    return path
