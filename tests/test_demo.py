"""`make demo` wiring (lmnet.demo): every demo override reaches a notebook, per-notebook overrides
apply to their notebook only, and the user's --set wins. The notebooks themselves are executed by
tests/test_notebooks.py; the full-size demo is timed by hand (docs/results.md)."""

from __future__ import annotations

import json
import re

from lmnet import demo
import lmnet.notebook.runner as nt


def _config_keys(name: str) -> set[str]:
    nb = json.loads((demo.notebooks_dir() / name).read_text())
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] == "code" and src.lstrip().startswith("config = {"):
            return set(re.findall(r'^\s*"(\w+)":', src, flags=re.M))
    raise AssertionError(f"{name}: no `config = {{...}}` cell")


def test_every_demo_override_reaches_a_notebook():
    keys = {name: _config_keys(name) for name in demo.DEMO_NOTEBOOKS}
    every = set().union(*keys.values())
    for key in demo.demo_overrides("/tmp/x"):
        assert key.startswith("?"), key
        assert key[1:] in every, f"demo override {key} matches no notebook config"
    for name, extra in demo.DEMO_NOTEBOOK_OVERRIDES.items():
        assert name in demo.DEMO_NOTEBOOKS
        for key in extra:
            assert key[1:] in keys[name], f"{name}: per-notebook override {key} is not in its config"


def test_per_notebook_overrides_apply_to_their_notebook_and_set_wins(tmp_path, monkeypatch):

    seen = {}

    def fake_run_notebook(src, dst, overrides=None, timeout=None):
        seen[src.name] = dict(overrides)
        dst.write_text("{}")
        return 0.0

    monkeypatch.setattr(nt, "run_notebook", fake_run_notebook)
    res = demo.run_demo(tmp_path / "out", notebooks=["02_variant_I.ipynb", "03_variant_II.ipynb"],
                        overrides={"?spread_items": 7}, log=lambda msg: None)
    assert set(res["times"]) == {"02_variant_I.ipynb", "03_variant_II.ipynb"}
    v1, v2 = seen["02_variant_I.ipynb"], seen["03_variant_II.ipynb"]
    assert v1["?image_epochs"] == demo.DEMO_OVERRIDES["?image_epochs"]
    assert v1["?views"] is None
    assert v1["?eval_views"] == [0] and demo.DEMO_OVERRIDES["?eval_views"] == list(range(24))
    per = demo.DEMO_NOTEBOOK_OVERRIDES["03_variant_II.ipynb"]
    assert v2["?image_epochs"] == per["?image_epochs"] and v2["?views"] == per["?views"]
    assert v1["?spread_items"] == v2["?spread_items"] == 7          # --set beats both layers
    assert v2["?data_root"] == str((tmp_path / "out" / "data").resolve())
