"""The layer order of DESIGN.md, held by an AST walk over every module of ``automl_nb``.

Imports anywhere in a file count (module level, inside functions, under TYPE_CHECKING), and
so do ``import_module("automl_nb....")`` calls with a literal name. A module may import its
own top-level package or a lower level; a higher level is "upward", the same level
"sideways", and both fail. Also held here: no private name crosses a module boundary, and
what ``job.submit()`` imports into the notebook kernel loads no torch.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "automl_nb"

# Lowest first; a name is a top-level module or subpackage of automl_nb.
LAYERS = [
    {"errors"},
    {"_atomic", "lazy_exports", "ui_events"},  # ui_events: kernel plumbing the sweep waits on
    {"object_store"},  # whole-object and conditional writes: the run store and the shared image cache
    {"spec"},
    {"metrics", "plots"},
    {"data", "cluster"},
    {"models"},
    {"train"},
    {"sweep", "infer"},
    {"export"},  # ONNX export: a trial's model (train, infer) and its run (sweep)
    {"explain"},
    {"analysis"},  # trials' kept predictions: compared, analysed, audited (reads run folders, runs Predictors)
    {"widgets"},
    {"cli", "magics"},
    {"__init__", "testing"},  # the package's lazy front door and the test helpers see everything
]
LEVEL = {name: level for level, names in enumerate(LAYERS) for name in names}

# (importing module, function around the import, imported module) allowed against the order.
ALLOWED = {
    # job.submit() is the spec's one entry into a sweep, imported when called (DESIGN.md, Layers).
    ("automl_nb.spec.job", "ImageJob.submit", "automl_nb.sweep"),
    # run.export() is the Run's thin door to ONNX export, imported when called.
    ("automl_nb.sweep.run", "Run.export", "automl_nb.export"),
    # A trial writes its validation predictions in the file format analysis owns, at its best evaluation.
    ("automl_nb.train.trainer", "_Training._write_predictions", "automl_nb.analysis.predictions"),
    # run.predictions(trial) reads that file.
    ("automl_nb.sweep.run", "Run.predictions", "automl_nb.analysis.predictions"),
}


def _module_name(path: Path) -> tuple[str, str]:
    """(module, package it resolves relative imports against) for a file under automl_nb/."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (ROOT / rel).with_suffix(".py").is_file() or (ROOT / rel / "__init__.py").is_file()


def _scoped_nodes(tree: ast.AST, scope: str = ""):
    """Yield (node, qualified name of the function or class around it) for every node."""
    for node in ast.iter_child_nodes(tree):
        yield node, scope
        inner = scope
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            inner = f"{scope}.{node.name}" if scope else node.name
        yield from _scoped_nodes(node, inner)


def _imports(path: Path):
    """Yield (line, scope, imported module, imported names, source text) for each import."""
    module, package = _module_name(path)
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    for node, scope in _scoped_nodes(ast.parse(source, str(path))):
        if not isinstance(node, (ast.Import, ast.ImportFrom, ast.Call)):
            continue
        text = " ".join(line.strip() for line in lines[node.lineno - 1: node.end_lineno])
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, scope, alias.name, [], text
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([target] if target else []))
            for alias in node.names:
                # `from automl_nb.spec import job` imports the module automl_nb.spec.job
                sub = f"{target}.{alias.name}"
                if _is_module(sub):
                    yield node.lineno, scope, sub, [], text
                else:
                    yield node.lineno, scope, target, [alias.name], text
        elif (getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            yield node.lineno, scope, node.args[0].value, [], text


def _ours(module: str) -> bool:
    return module == "automl_nb" or module.startswith("automl_nb.")


def _component(module: str) -> str:
    """automl_nb.sweep.run -> sweep; the package itself -> __init__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _files():
    return sorted(PACKAGE.rglob("*.py"))


def _where(path: Path, line: int, text: str) -> str:
    return f"{path.relative_to(ROOT)}:{line}: {text}"


def test_every_component_has_a_layer():
    found = {_component(_module_name(p)[0]) for p in _files()}
    assert found <= set(LEVEL), f"add to LAYERS: {sorted(found - set(LEVEL))}"


def test_imports_point_down_only():
    bad, seen = [], set()
    for path in _files():
        module, _ = _module_name(path)
        for line, scope, target, _, text in _imports(path):
            if not _ours(target):
                continue
            src, dst = _component(module), _component(target)
            if src == dst or LEVEL[dst] < LEVEL[src]:
                continue
            key = (module, scope, target)
            seen.add(key)
            if key in ALLOWED:
                continue
            kind = "sideways" if LEVEL[dst] == LEVEL[src] else "upward"
            bad.append(f"{_where(path, line, text)}  [{kind}: {src} -> {dst}]")
    assert not bad, "imports against the layer order of DESIGN.md:\n" + "\n".join(bad)
    stale = ALLOWED - seen
    assert not stale, f"allow-listed imports no longer made, drop them: {sorted(stale)}"


def test_no_private_names_across_modules():
    """A leading underscore means "this module only": no other module imports such a name
    (dunders aside), and a private module is imported only from inside its own package."""
    bad = []
    for path in _files():
        module, _ = _module_name(path)
        for line, _, target, names, text in _imports(path):
            if not _ours(target) or target == module:
                continue
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            parts = target.split(".")
            for i, part in enumerate(parts):
                owner = ".".join(parts[:i])
                inside = module == owner or module.startswith(owner + ".")
                if part.startswith("_") and not part.startswith("__") and not inside:
                    private.append(".".join(parts[: i + 1]))
            if private:
                bad.append(f"{_where(path, line, text)}  [private: {', '.join(private)}]")
    assert not bad, "private names imported from another module:\n" + "\n".join(bad)


# What job.submit() imports into the notebook kernel.
KERNEL = ("automl_nb, automl_nb.spec, automl_nb.cluster, automl_nb.sweep, automl_nb.sweep.plan, "
          "automl_nb.sweep.store, automl_nb.sweep.driver, automl_nb.sweep.worker")

# Run in a fresh interpreter: records the automl_nb lines on the stack when torch is first
# looked up, so a failure shows the chain of imports that pulled it in.
_PROBE = """
import sys, traceback
chain = []
class Probe:
    def find_spec(self, name, path=None, target=None):
        if name in ("torch", "torchvision") and not chain:
            chain.extend(f"automl_nb{f.filename.split('/automl_nb', 1)[-1]}:{f.lineno}: {f.line}"
                         for f in traceback.extract_stack() if "/automl_nb/" in f.filename)
sys.meta_path.insert(0, Probe())
import {imports}
print(" ".join(m for m in ("torch", "torchvision") if m in sys.modules))
print("\\n".join(chain))
"""


def _heavy_modules_after(imports: str) -> tuple[list[str], str]:
    code = _PROBE.replace("{imports}", imports)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    loaded, _, chain = out.stdout.partition("\n")
    return loaded.split(), chain


def test_train_trial_does_not_import_torch():
    """The sweep's side of a trial (its parameters and result) is plain data."""
    loaded, chain = _heavy_modules_after("automl_nb.train, automl_nb.train.trial")
    assert loaded == [], f"imported {loaded} through:\n{chain}"


def test_submitting_a_job_does_not_import_torch():
    """job.submit() runs in the notebook kernel; torch belongs in the workers."""
    loaded, chain = _heavy_modules_after(KERNEL)
    assert loaded == [], f"imported {loaded} through:\n{chain}"
