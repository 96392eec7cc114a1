"""Imports point one way: shared helpers ← dataset_builder ← training ← model_card ← entry points.

Every import is read from the source (function-local ones included, since a lazy import is still a
dependency), so a cycle cannot hide behind `import` inside a function.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {"flyte_llama_common": 0, "samples": 0, "dataset_builder": 1, "training": 2, "model_card": 3}
TOP = 4  # job.py, workflows.py, push.py, bench/, and the entry points below
# Entry points that live inside a package: they parse configs and call stages of any layer.
ENTRY_POINTS = {"dataset_builder.__main__", "training.__main__", "training.mini_experiment"}


def _modules() -> dict[str, Path]:
    mods = {}
    for path in [*ROOT.glob("*.py"), *ROOT.glob("bench/*.py"), *(ROOT / "samples").glob("*.py")]:
        mods[path.stem if path.parent == ROOT else f"{path.parent.name}.{path.stem}"] = path
    for package in ("flyte_llama_common", "dataset_builder", "training", "model_card"):
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = path
    return mods


def _layer(module: str) -> int:
    if module in ENTRY_POINTS:
        return TOP
    return LAYERS.get(module.split(".")[0], TOP)


def _imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(
                    package[: len(package) - node.level + 1] + ([node.module] if node.module else [])
                )
            else:
                base = node.module or ""
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != module:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {m: _imports(m, p, known) for m, p in known.items()}


def test_no_import_points_up_the_layers():
    wrong = [
        f"{m} (layer {_layer(m)}) imports {t} (layer {_layer(t)})"
        for m, targets in _graph().items()
        for t in sorted(targets)
        if _layer(t) > _layer(m)
    ]
    assert not wrong, (
        "imports against shared ← dataset_builder ← training ← model_card ← CLIs:\n" + "\n".join(wrong)
    )


def test_no_module_level_cycles():
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_checker_sees_function_local_and_relative_imports(tmp_path):
    """The graph must catch the imports that hid the old cycles: lazy and relative ones."""
    known = {"pkg.a": tmp_path / "a.py", "pkg.b": tmp_path / "b.py", "other.c": tmp_path / "c.py"}
    known["pkg.a"].write_text("def f():\n    from .b import x\n    import other.c\n")
    assert _imports("pkg.a", known["pkg.a"], known) == {"pkg.b", "other.c"}


def test_layers_cover_every_package():
    packages = defaultdict(int)
    for module in _modules():
        packages[module.split(".")[0]] += 1
    for package in ("flyte_llama_common", "dataset_builder", "training", "model_card"):
        assert packages[package] > 0
