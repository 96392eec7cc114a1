"""The project's import graph as text: package-level edges with counts, and every cycle.

    python bench/import_graph.py                 # the working tree
    python bench/import_graph.py --rev 1253e6f   # a commit (git archive into a temp folder)

Every import statement of every module is read with `ast`, function-local and relative ones included (a
lazy import is still a dependency). A module is a package's .py file, a top-level script (job.py, ...) or
a bench/ script. Nodes of the package graph are the top-level packages; the CLIs that live inside a
package (`dataset_builder.__main__`, `training.__main__`, `training.mini_experiment`) are entry points
and get their own node, `<package>:cli`, since an entry point may import any layer. An edge A -> B (n)
means n modules of A import at least one module of B. Cycles are listed twice: between packages, and
between modules (strongly connected components of the module graph, Tarjan).
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENTRY_POINTS = {"dataset_builder.__main__", "training.__main__", "training.mini_experiment"}


def modules(root: Path) -> dict[str, Path]:
    """module name → file, for every package (a top-level folder with __init__.py), script and bench file."""
    mods = {p.stem: p for p in root.glob("*.py")}
    mods |= {f"bench.{p.stem}": p for p in root.glob("bench/*.py")}
    for init in sorted(root.glob("*/__init__.py")):
        package = init.parent
        if package.name in ("tests", "bench"):
            continue
        for path in package.rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = path
    return mods


def imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules `module` imports, anywhere in its file."""
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


def node(module: str) -> str:
    """The package-graph node of a module."""
    if module in ENTRY_POINTS:
        return f"{module.split('.')[0]}:cli"
    return module.split(".")[0]


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Components of more than one node (iterative Tarjan, so deep graphs need no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == v:
                            break
                    if len(component) > 1:
                        out.append(sorted(component))
    return sorted(out)


def report(root: Path, title: str) -> str:
    known = modules(root)
    graph = {m: imports(m, p, known) for m, p in known.items()}
    edges: Counter[tuple[str, str]] = Counter()
    examples: dict[tuple[str, str], list[str]] = {}
    for m, targets in sorted(graph.items()):
        for pair in sorted({(node(m), node(t)) for t in targets if node(t) != node(m)}):
            edges[pair] += 1
            examples.setdefault(pair, []).append(m)
    package_graph: dict[str, set[str]] = {}
    for a, b in edges:
        package_graph.setdefault(a, set()).add(b)
    lines = [f"{title}: {len(known)} modules, {sum(len(t) for t in graph.values())} module imports", ""]
    lines.append("package edges (importer -> imported: number of importing modules, e.g. one of them)")
    for (a, b), n in sorted(edges.items()):
        lines.append(f"  {a:<22} -> {b:<22} {n:>3}   e.g. {examples[a, b][0]}")
    package_cycles = strongly_connected(package_graph)
    module_cycles = strongly_connected(graph)
    lines.append("")
    lines.append("package cycles: " + ("none" if not package_cycles else ""))
    lines += [f"  {' <-> '.join(c)}" for c in package_cycles]
    lines.append("module cycles: " + ("none" if not module_cycles else ""))
    lines += [f"  {' <-> '.join(c)}" for c in module_cycles]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rev", help="a commit of this repository (default: the working tree)")
    args = ap.parse_args()
    if args.rev is None:
        print(report(ROOT, "working tree"))
        return
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.rev], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        print(report(Path(tmp), f"commit {args.rev}"))


if __name__ == "__main__":
    sys.exit(main())
