"""API-usage tasks: single-line holes at Flyte API sites of held-out Python, and *API validity* of a fill.

Sites (found with `ast` in files that parse; one line each, so the hole is exactly that line):
- `api_import`: `from flytekit[...] import ...` / `import flytekit[...]` (flytekitplugins too);
- `api_decorator`: a decorator whose name the file imported from flytekit (`@task(...)`, `@workflow`, ...);
- `api_call`: a statement line that calls a name the file imported from flytekit (`Resources(...)`, ...).

A fill is *API-valid* when the filled file parses, the fill's line references at least one flytekit name,
every such name exists in the installed flytekit (or plugin) and every call to one binds to its real
signature (`inspect.signature(...).bind`). Checked statically: flytekit is imported, the fill never runs.
A task whose *reference* line is not API-valid here (a plugin that is not installed, an API the installed
flytekit lacks) gets None, so the reference scores 100% on the tasks that count.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import warnings
from functools import cache
from typing import Any

FAMILIES = ("api_import", "api_decorator", "api_call")
ROOTS = ("flytekit", "flytekitplugins")
# Statements whose first line is a header, not a call site.
COMPOUND = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.If,
    ast.For,
    ast.While,
    ast.With,
    ast.Try,
)


def _is_flyte(module: str | None) -> bool:
    return bool(module) and module.split(".")[0] in ROOTS


def _parse(source: str) -> ast.Module | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def bindings(tree: ast.Module) -> dict[str, str]:
    """{local name: dotted flytekit path} of every flytekit import in the file."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and _is_flyte(node.module) and node.level == 0:
            for alias in node.names:
                if alias.name != "*":
                    out[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if _is_flyte(alias.name):
                    local = alias.asname or alias.name.split(".")[0]
                    out[local] = alias.name if alias.asname else alias.name.split(".")[0]
    return out


def _dotted(node: ast.AST) -> list[str] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return None


def api_sites(content: str) -> dict[str, list[tuple[int, int]]]:
    """{family: sorted (row, row)} single-line API sites of a Python file (0-based rows)."""
    tree = _parse(content)
    found: dict[str, set[int]] = {f: set() for f in FAMILIES}
    if tree is None:
        return {f: [] for f in FAMILIES}
    names = bindings(tree)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and node.lineno == node.end_lineno:
            modules = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            if any(_is_flyte(m) for m in modules) and getattr(node, "level", 0) == 0:
                found["api_import"].add(node.lineno - 1)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for deco in node.decorator_list:
                target = deco.func if isinstance(deco, ast.Call) else deco
                path = _dotted(target)
                if path and path[0] in names and deco.lineno == deco.end_lineno:
                    found["api_decorator"].add(deco.lineno - 1)
        if isinstance(node, ast.stmt) and not isinstance(node, COMPOUND):
            if node.lineno != node.end_lineno:
                continue
            for sub in ast.walk(node):
                if isinstance(sub, ast.Call) and (path := _dotted(sub.func)) and path[0] in names:
                    found["api_call"].add(node.lineno - 1)
                    break
    taken = found["api_import"] | found["api_decorator"]
    found["api_call"] -= taken
    return {f: [(r, r) for r in sorted(rows)] for f, rows in found.items()}


def api_holes(language: str, content: str) -> dict[str, list[tuple[int, int]]]:
    """`extract_tasks(holes_of=...)` callback: API sites of Python files, nothing for other languages."""
    return api_sites(content) if language == "python" else {f: [] for f in FAMILIES}


@cache
def _resolve(path: str) -> tuple[bool, Any]:
    """(found, object) for a dotted flytekit path: the longest importable module, then attributes."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except Exception:  # any import failure means "not available here"
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False, None
        return True, obj
    return False, None


def _binds(obj: Any, call: ast.Call) -> bool:
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        return True  # *args / **kwargs at the call site: nothing to check statically
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return True  # a builtin without a signature
    try:
        sig.bind(*[None] * len(call.args), **{k.arg: None for k in call.keywords})
    except TypeError:
        return False
    return True


def line_validity(source: str, row: int) -> bool | None:
    """API validity of line `row` (0-based) of `source`: None when the file does not parse."""
    tree = _parse(source)
    if tree is None:
        return None
    names = bindings(tree)
    refs = 0
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) != row + 1:
            continue
        if isinstance(node, ast.ImportFrom) and _is_flyte(node.module):
            for alias in node.names:
                refs += 1
                if alias.name != "*" and not _resolve(f"{node.module}.{alias.name}")[0]:
                    return False
        elif isinstance(node, ast.Import):
            for alias in (a for a in node.names if _is_flyte(a.name)):
                refs += 1
                if not _resolve(alias.name)[0]:
                    return False
        elif isinstance(node, (ast.Name, ast.Attribute)) and not isinstance(
            getattr(node, "ctx", None), ast.Store
        ):
            path = _dotted(node)
            if path and path[0] in names:
                refs += 1
                found, _ = _resolve(".".join([names[path[0]], *path[1:]]))
                if not found:
                    return False
        if isinstance(node, ast.Call) and (path := _dotted(node.func)) and path[0] in names:
            found, obj = _resolve(".".join([names[path[0]], *path[1:]]))
            if not found or not _binds(obj, node):
                return False
    return refs > 0


def api_valid(content: str, span: tuple[int, int], middle: str, fill: str, row: int) -> bool:
    """Whether `fill` in the hole (one line, 0-based `row`) is API-valid (see the module docstring)."""
    if not fill.strip():
        return False
    filled = content[: span[0]] + fill.split("\n", 1)[0].rstrip() + ("\n" if middle.endswith("\n") else "")
    return bool(line_validity(filled + content[span[1] :], row))
