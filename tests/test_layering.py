"""The package's layering, read from the source: every ``import`` of every module in ``lmnet/``,
function-level ones included, against the declared order (docs/architecture.md).

Rules
1. An lmnet module imports only modules of its own top-level package (``lmnet.render.grids`` →
   ``lmnet.render.colors``) or of a *lower* layer. Nothing imports upward, nor sideways into another
   package of its own layer (``train`` and ``eval`` do not know each other).
2. A function-level import of an lmnet module is allowed only when that module imports a heavy
   optional dependency (:data:`HEAVY`) at module level, so that it is loaded when used and never
   to hide a cycle. The entry points (:data:`ENTRY`: the package root, the CLI and its
   commands) are the exception: they sit on top, so no cycle can hide there, and they import what
   they run on first use so that ``lmnet --help`` and ``import lmnet.camera`` stay fast.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lmnet
import lmnet.train  # the training package, loaded after the root (test_public_names_are_not_shadowed_by_submodules)

PACKAGE = Path(__file__).resolve().parent.parent / "lmnet"

#: lowest first; a name is the first component below ``lmnet`` ("" = the package root)
LAYERS: list[set[str]] = [
    {"errors"},
    {"image_sizes"},
    {"camera", "atomic_io", "config", "envvars", "quaternions"},
    {"colour_files"},
    {"projection"},
    {"losses"},
    {"models", "uvmesh", "fid"},
    {"data"},
    {"render"},
    {"synthetic", "runs"},
    {"train"},
    {"methods"},        # each lmnet.methods.<name> is a package of its own: methods do not import each other
    {"registry"},
    {"eval", "weights"},
    {"infer", "infer_textured", "generate_textured", "analysis", "mesh"},
    {"notebook", "app"},
    {"demo"},
    {"commands"},
    {"cli"},
    {"__main__", ""},
]
ENTRY = {"commands", "cli", "__main__", ""}
HEAVY = {"matplotlib", "open3d", "ipywidgets", "gdown", "tensorflow", "IPython", "nbclient", "nbformat", "plotly",
         "rembg", "gradio", "gradio_client"}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def read_sources(root: Path = PACKAGE) -> dict[str, str]:
    """``{module name: source}`` of every ``.py`` file under ``root`` (the ``lmnet`` folder)."""
    return {module_name(p, root): p.read_text() for p in sorted(root.rglob("*.py"))}


def _imports(name: str, source: str, modules: set[str]):
    """``(target module, line, function-level?)`` of every import in ``source``; ``from a import b``
    names the submodule ``a.b`` when there is one."""
    tree = ast.parse(source)
    is_pkg = any(m.startswith(name + ".") for m in modules)

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield alias.name, child.lineno, in_function
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:  # relative: resolve against this module's package
                    pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                    pkg = pkg[:len(pkg) - child.level + 1]
                    base = ".".join(pkg + ([child.module] if child.module else []))
                for alias in child.names:
                    sub = f"{base}.{alias.name}"
                    yield (sub if sub in modules else base), child.lineno, in_function
            yield from visit(child, inner)

    yield from visit(tree, False)


def _top(module: str) -> str:
    """The package ``module`` belongs to: the first component below ``lmnet``, and for a method its
    folder (``methods.image``), so that two methods are two packages of one layer."""
    parts = module.split(".")
    if len(parts) > 2 and parts[1] == "methods":
        return f"methods.{parts[2]}"
    return parts[1] if len(parts) > 1 else ""


def _layer(module: str) -> int:
    top = _top(module).split(".")[0]
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"{module}: package {top!r} is in no layer of LAYERS; declare it")


def check_layering(sources: dict[str, str]) -> list[str]:
    """Every violation of the rules (module docstring) in ``sources`` (:func:`read_sources`), one
    line each: ``module:line imports target: why``."""
    modules = set(sources)
    heavy = {m for m, src in sources.items()
             if any(t.split(".")[0] in HEAVY and not fn for t, _, fn in _imports(m, src, modules))}
    bad = []
    for mod, src in sorted(sources.items()):
        for target, line, fn in _imports(mod, src, modules):
            if target != "lmnet" and not target.startswith("lmnet."):
                continue
            if target == "lmnet":  # `import lmnet` / `from lmnet import __version__`: the root's constants
                continue
            same = _top(mod) == _top(target)
            if not same and _layer(target) >= _layer(mod):
                where = "a higher" if _layer(target) > _layer(mod) else "the same"
                bad.append(f"{mod}:{line} imports {target}: {where} layer ({_top(target)} vs {_top(mod) or 'lmnet'})")
            elif fn and _top(mod) not in ENTRY and target not in heavy:
                bad.append(f"{mod}:{line} imports {target} inside a function, and {target} needs no heavy "
                           f"optional dependency ({', '.join(sorted(HEAVY))}): import it at module level")
    return bad


def test_the_package_follows_its_layers():
    assert check_layering(read_sources()) == []


def test_every_package_is_in_a_layer():
    tops = {_top(m).split(".")[0] for m in read_sources()}
    declared = set().union(*LAYERS)
    assert tops <= declared, f"undeclared packages: {sorted(tops - declared)}"


@pytest.mark.parametrize("victim, line, expected", [
    # an upward import at module level
    ("lmnet.camera", "from lmnet.train.loop import Trainer", "lmnet.camera:1 imports lmnet.train.loop: a higher layer"),
    # the data layer reaching into render (the old synthetic generator did this)
    ("lmnet.data.layout", "from lmnet.render import render_mesh", "imports lmnet.render: a higher layer"),
    # sideways: eval must not know weights
    ("lmnet.eval.run", "from lmnet.weights import port", "imports lmnet.weights.port: the same layer"),
    # sideways: a method must not know another method
    ("lmnet.methods.image.trainer", "from lmnet.methods.autoencoder import model",
     "imports lmnet.methods.autoencoder.model: the same layer"),
    # the generic loop knows no method; a method does not reach up to the registry
    ("lmnet.train.loop", "from lmnet.methods.image import METHOD", "imports lmnet.methods.image: a higher layer"),
    ("lmnet.methods.image.trainer", "from lmnet.registry import load_model", "imports lmnet.registry: a higher layer"),
    # an upward import hidden in a function is found too
    ("lmnet.data.dataset", "def f():\n    from lmnet.runs import load_run\n", "imports lmnet.runs: a higher layer"),
    # a downward import hidden in a function for no heavy dependency
    ("lmnet.infer", "def f():\n    from lmnet.data.layout import read_image\n", "inside a function"),
])
def test_the_check_fails_on_purpose(victim, line, expected):
    sources = read_sources()
    before = set(check_layering(sources))
    sources[victim] = line + "\n" + sources[victim]
    bad = set(check_layering(sources)) - before
    assert any(victim in b and expected in b for b in bad), bad
    assert all(b.startswith(victim + ":") for b in bad), bad  # and nothing else is blamed


def test_heavy_optional_dependencies_may_load_late():
    sources = read_sources()
    before = set(check_layering(sources))
    sources["lmnet.render.plot3d"] = "import matplotlib.pyplot as plt\n"  # a module that needs matplotlib
    sources["lmnet.infer"] = "def f():\n    from lmnet.render import plot3d\n" + sources["lmnet.infer"]
    after = set(check_layering(sources))
    assert {b for b in after - before if not b.startswith("lmnet.infer:")} == set()
    assert not any("plot3d" in b for b in after)


def _function_level_lmnet_imports(folder: Path, heavy: set[str], modules: set[str]) -> list[str]:
    bad = []
    for path in sorted(folder.rglob("*.py")):
        for target, line, fn in _imports(path.stem, path.read_text(), modules):
            if fn and (target == "lmnet" or target.startswith("lmnet.")) and target not in heavy:
                bad.append(f"{path.relative_to(folder.parent)}:{line} imports {target} inside a function")
    return bad


def test_tests_benchmarks_and_studies_follow_the_import_rule():
    """The rule of function-level imports holds outside the package too: ``tests/``, ``benchmarks/``
    and ``studies/`` import lmnet modules at module level, except those that need a heavy optional
    dependency."""
    sources = read_sources()
    modules = set(sources)
    heavy = {m for m, src in sources.items()
             if any(t.split(".")[0] in HEAVY and not fn for t, _, fn in _imports(m, src, modules))}
    root = PACKAGE.parent
    bad = [b for folder in ("tests", "benchmarks", "studies") for b in
           _function_level_lmnet_imports(root / folder, heavy, modules)]
    assert bad == []


# --- the notebooks import from a handful of public modules ----------------------------------------

NOTEBOOKS = sorted((PACKAGE.parent / "notebooks").glob("*.ipynb"))

#: the modules a notebook may import from: the front door and the packages that export, in their
#: ``__init__``'s ``__all__``, what the notebooks use (docs/architecture.md#the-layers)
NOTEBOOK_MODULES = ("lmnet", "lmnet.notebook", "lmnet.analysis", "lmnet.render", "lmnet.eval", "lmnet.data",
                    "lmnet.weights", "lmnet.mesh", "lmnet.infer")


def public_names(module: str, sources: dict[str, str]) -> set[str]:
    """The literal ``__all__`` of ``module`` (read from its source, nothing imported)."""
    for node in ast.parse(sources[module]).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value))
    return set()


def notebook_code(path: Path) -> str:
    """The code cells of the notebook ``path``, IPython magics and shell lines blanked."""
    import json

    cells = [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
    lines = "\n".join("".join(c["source"]) for c in cells).splitlines()
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in lines)


def check_notebook_imports(code: str, sources: dict[str, str]) -> list[str]:
    """Every lmnet import in ``code`` that is not of a name in the ``__all__`` of one of
    :data:`NOTEBOOK_MODULES` (``import lmnet.render`` and ``import lmnet`` are fine), one line each;
    ``from lmnet.weights import pretrained`` imports the module ``lmnet.weights.pretrained``."""
    bad = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "lmnet" and alias.name not in NOTEBOOK_MODULES:
                    bad.append(f"line {node.lineno}: import {alias.name}: not one of the notebooks' modules")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "lmnet":
            if node.module not in NOTEBOOK_MODULES:
                bad.append(f"line {node.lineno}: from {node.module} import ...: not one of the notebooks' modules")
                continue
            public = public_names(node.module, sources)
            for alias in node.names:
                if alias.name in public:
                    continue
                sub = f"{node.module}.{alias.name}"
                what = f"the module {sub}" if sub in sources else f"{alias.name!r}, not in {node.module}.__all__"
                bad.append(f"line {node.lineno}: from {node.module} import {alias.name}: {what}")
    return bad


def test_notebooks_import_only_the_public_modules():
    sources = read_sources()
    assert len(NOTEBOOKS) >= 8
    bad = {p.name: check_notebook_imports(notebook_code(p), sources) for p in NOTEBOOKS}
    assert {name: b for name, b in bad.items() if b} == {}


@pytest.mark.parametrize("code, expected", [
    ("from lmnet.render.grids import show", "from lmnet.render.grids import ...: not one of"),
    ("import lmnet.registry", "import lmnet.registry: not one of"),
    ("from lmnet import projection", "the module lmnet.projection"),
    ("from lmnet.weights import pretrained", "the module lmnet.weights.pretrained"),
    ("from lmnet.render import _font", "'_font', not in lmnet.render.__all__"),
    ("if True:\n    from lmnet.synthetic.pix3d_synth import generate_pix3d", "from lmnet.synthetic.pix3d_synth"),
])
def test_the_notebook_check_fails_on_purpose(code, expected):
    sources = read_sources()
    fine = "import lmnet\nimport lmnet.render\nfrom lmnet import train\nfrom lmnet.render import make_grid\n"
    assert check_notebook_imports(fine, sources) == []
    bad = check_notebook_imports(fine + code, sources)
    assert len(bad) == 1 and expected in bad[0], bad


def test_public_names_are_not_shadowed_by_submodules():
    """A package's public name that is also one of its submodules is replaced by that module as soon
    as anything imports it (``import lmnet.train`` at the top of this file): ``lmnet.train`` (the
    function) is kept by loading the package first in ``lmnet/__init__.py``; no other name may collide."""
    assert callable(lmnet.train) and lmnet.train.__module__ == "lmnet"
    sources = read_sources()
    clash = sorted(f"{m}.{n}" for m in NOTEBOOK_MODULES for n in public_names(m, sources)
                   if f"{m}.{n}" in sources and f"{m}.{n}" != "lmnet.train")
    assert clash == []
