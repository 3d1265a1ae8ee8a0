"""An ipywidgets browser over reconstruction records (works in JupyterLab and classic Notebook).

``Browser(records)`` shows one record at a time as a :func:`~lmnet.render.grids.make_grid` row
(input | GT | prediction | samples) in an ``ipywidgets.Image``, with a slider over the records of
the selected category, a category dropdown (``"all"`` + the categories present) and a toggle for
the Variant II samples. The logic lives in plain methods (:meth:`Browser.set_category`,
:meth:`Browser.set_index`, :meth:`Browser.set_samples`, :meth:`Browser.render_png`), which the
widget callbacks call, so it is testable without a browser; widgets are created on first use of
:attr:`Browser.widget`. Rendered PNGs are cached per ``(record, samples)``.

Records are dicts as for :func:`make_grid` rows (a dataset item plus ``"prediction"`` /
``"samples"`` / ``"metrics"`` works), each with a ``"category"`` (synset id or name).
"""

from __future__ import annotations

import io
from typing import Mapping, Sequence

from lmnet.data.categories import name_of
from lmnet.render.grids import make_grid

ALL = "all"


class Browser:
    """Browse ``records`` (see the module docs). ``grid_kwargs`` go to :func:`make_grid`
    (``cell``, ``view``, ``color_by``, ...)."""

    def __init__(self, records: Sequence[Mapping], show_samples: bool = True, cache_size: int = 64,
                 **grid_kwargs):
        self.records = list(records)
        if not self.records:
            raise ValueError("Browser: no records to show")
        for i, r in enumerate(self.records):
            if not isinstance(r, Mapping):
                raise ValueError(f"Browser: record {i} is a {type(r).__name__}, expected a dict")
        self.grid_kwargs = {"cell": 224, **grid_kwargs}
        self.categories = sorted({name_of(str(r.get("category", "?"))) for r in self.records})
        self.category = ALL
        self.show_samples = bool(show_samples)
        self.filtered = list(range(len(self.records)))
        self.position = 0
        self._cache: dict[tuple[int, bool], bytes] = {}
        self._cache_size = int(cache_size)
        self._widgets = None
        self._just_displayed = False

    # ------------------------------------------------------------------ logic
    @property
    def current(self) -> int:
        """Index into ``records`` of the record shown now."""
        return self.filtered[self.position]

    @property
    def has_samples(self) -> bool:
        return any(r.get("samples") is not None for r in self.records)

    def set_category(self, category: str) -> list[int]:
        """Show only ``category`` (a name, a synset id or ``"all"``); returns the record indices
        kept. The slider goes back to the first of them."""
        wanted = ALL if category == ALL else name_of(str(category))
        if wanted != ALL and wanted not in self.categories:
            raise ValueError(f"unknown category {category!r}; have {[ALL] + self.categories}")
        self.category = wanted
        self.filtered = [i for i, r in enumerate(self.records)
                         if wanted == ALL or name_of(str(r.get("category", "?"))) == wanted]
        self.position = 0
        self._sync()
        return list(self.filtered)

    def set_index(self, position: int) -> int:
        """Select the ``position``-th record of the current category; returns its record index."""
        position = int(position)
        if not 0 <= position < len(self.filtered):
            raise IndexError(f"position {position} out of range 0..{len(self.filtered) - 1}")
        self.position = position
        self._sync()
        return self.current

    def set_samples(self, show: bool) -> None:
        """Show or hide the Variant II samples column."""
        self.show_samples = bool(show)
        self._sync()

    def render_png(self) -> bytes:
        """PNG bytes of the current record's grid row."""
        key = (self.current, self.show_samples)
        if key not in self._cache:

            row = dict(self.records[self.current])
            if not self.show_samples:
                row.pop("samples", None)
            buf = io.BytesIO()
            make_grid([row], **self.grid_kwargs).save(buf, format="PNG")
            if len(self._cache) >= self._cache_size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = buf.getvalue()
        return self._cache[key]

    # ------------------------------------------------------------------ widgets
    @property
    def widget(self):
        """The ``ipywidgets.VBox`` (controls + image), built on first access."""
        if self._widgets is None:
            self._build()
        return self._widgets["box"]

    def _build(self) -> None:
        import ipywidgets as w

        slider = w.IntSlider(value=0, min=0, max=len(self.filtered) - 1, description="item",
                             continuous_update=False)
        dropdown = w.Dropdown(options=[ALL] + self.categories, value=self.category, description="category")
        toggle = w.ToggleButton(value=self.show_samples, description="samples",
                                disabled=not self.has_samples, tooltip="show Variant II samples")
        label = w.Label()
        image = w.Image(format="png")
        self._widgets = {"slider": slider, "dropdown": dropdown, "toggle": toggle, "label": label,
                         "image": image,
                         "box": w.VBox([w.HBox([dropdown, slider, toggle, label]), image])}
        slider.observe(lambda ch: self.set_index(ch["new"]), names="value")
        dropdown.observe(lambda ch: self.set_category(ch["new"]), names="value")
        toggle.observe(lambda ch: self.set_samples(ch["new"]), names="value")
        self._sync()

    def _sync(self) -> None:
        """Push the state into the widgets (if built) and re-render the image."""
        if self._widgets is None:
            return
        ws = self._widgets
        if ws["dropdown"].value != self.category:
            ws["dropdown"].value = self.category
        if ws["toggle"].value != self.show_samples:
            ws["toggle"].value = self.show_samples
        ws["slider"].max = max(len(self.filtered) - 1, 0)
        if ws["slider"].value != self.position:
            ws["slider"].value = self.position   # re-enters set_index with the same position
        ws["label"].value = f"{self.position + 1}/{len(self.filtered)} (record {self.current})"
        ws["image"].value = self.render_png()

    def _ipython_display_(self):
        from IPython.display import display

        if self._just_displayed:   # browse() already showed it; don't show it twice
            self._just_displayed = False
            return
        display(self.widget)


def browse(records: Sequence[Mapping], **kwargs) -> Browser:
    """Build a :class:`Browser` over ``records`` and display it when running in a notebook kernel
    (once, even when ``browse(...)`` ends the cell). Returns the browser (its ``widget`` can be
    placed in other layouts)."""
    b = Browser(records, **kwargs)
    try:
        from IPython import get_ipython
    except ImportError:
        return b
    ip = get_ipython()
    if ip is not None and hasattr(ip, "kernel"):
        from IPython.display import display

        display(b.widget)
        b._just_displayed = True
    return b
