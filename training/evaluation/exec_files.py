"""The files of the execution tasks: which held-out files are runnable Flyte examples, what a run's box holds
(the file and, for a project's sibling modules, their package), how files are run in the sandbox, and the
cache of reference runs keyed by the file's git blob sha and the environment (training/evaluation/execution.py
uses all of them)."""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from flyte_llama_common.atomic import write_text_atomic
from training.evaluation import sandbox

LIBRARIES = ("flytekit", "numpy", "pandas", "scikit-learn")


@dataclass(frozen=True)
class ExecSettings:
    """How files are run. `reference_budget_s`: a candidate whose reference run takes longer is too slow;
    `timeout_s`: the wall-clock limit of every run (a fill that loops forever fails at it)."""

    reference_budget_s: float = 30.0
    timeout_s: float = 60.0
    memory_mb: int = 4096
    file_mb: int = 64
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    cache_dir: str | None = None

    def limits(self) -> sandbox.Limits:
        cpu = int(self.timeout_s * 2) + 5
        return sandbox.Limits(self.timeout_s, cpu, self.memory_mb, self.file_mb)


def _decorator_names(node: ast.AST) -> set[str]:
    names = set()
    for dec in getattr(node, "decorator_list", []):
        target = dec.func if isinstance(dec, ast.Call) else dec
        if isinstance(target, ast.Name):
            names.add(target.id)
        elif isinstance(target, ast.Attribute):
            names.add(target.attr)
    return names


def _tree(content: str) -> ast.Module | None:
    try:
        return ast.parse(content)
    except (SyntaxError, ValueError):
        return None


def is_example(content: str) -> bool:
    """A file that defines at least one `@task` and one `@workflow` at module level."""
    tree = _tree(content)
    if tree is None:
        return False
    found = set().union(*(_decorator_names(n) for n in tree.body)) if tree.body else set()
    return "task" in found and "workflow" in found


def task_functions(content: str) -> list[tuple[str, tuple[int, int]]]:
    """(function name, (first row, last row) 0-based) of the body of every module-level `@task` function,
    docstring excluded; functions whose body shares the `def` line or is only a docstring are skipped."""
    tree = _tree(content)
    found = []
    for node in tree.body if tree is not None else []:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or "task" not in _decorator_names(
            node
        ):
            continue
        body = node.body
        first = body[0] if body else None
        if isinstance(first, ast.Expr) and isinstance(getattr(first.value, "value", None), str):
            body = body[1:]  # the docstring stays in the prefix
        if not body or body[0].lineno == node.lineno:
            continue
        found.append((node.name, (body[0].lineno - 1, node.end_lineno - 1)))
    return found


def imported_modules(content: str) -> set[str]:
    """The dotted names of the file's absolute imports (`import a.b`, `from a.b import c` → "a.b")."""
    tree = _tree(content)
    names = set()
    for node in ast.walk(tree) if tree is not None else []:
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def missing_modules(content: str) -> list[str]:
    """Top-level modules the file imports that this interpreter cannot find (checked without importing)."""
    tops = {name.split(".")[0] for name in imported_modules(content)}
    return sorted(m for m in tops if importlib.util.find_spec(m) is None)


@dataclass(frozen=True)
class Box:
    """What a run of one file needs: the files (repo path → text), the file to load, and the folders (repo
    paths) that go on sys.path so its imports of sibling modules resolve, as from the project's root."""

    files: dict[str, str]
    module: str
    sys_path: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()


def box_for(repo: str, path: str, text: str, contents: Mapping[tuple[str, str], str]) -> Box:
    """The box for `text` as `repo`/`path`. Each import is looked for first among the split's files of the
    same repo (`workflows.example_00_intro` → `<root>/workflows/example_00_intro.py`, the root an ancestor
    folder of `path`, nearest first), as the project's root comes first on sys.path when `pyflyte run` runs
    from it; that module's whole top-level package comes along. An import found neither there nor installed
    is `missing`."""
    ancestors = [str(parent) for parent in Path(path).parents]
    ancestors = ["" if a == "." else a for a in ancestors]
    python = {p: t for (r, p), t in contents.items() if r == repo and p.endswith(".py")}
    files: dict[str, str] = {}
    roots: list[str] = []
    missing: set[str] = set()
    for name in sorted(imported_modules(text)):
        top = name.split(".")[0]
        rel = name.replace(".", "/")
        root = next(
            (
                a
                for a in ancestors
                if any(f"{a}/{c}".lstrip("/") in python for c in (f"{rel}.py", f"{rel}/__init__.py"))
            ),
            None,
        )
        if root is None:  # not the project's own: it must be installed
            if importlib.util.find_spec(top) is None:
                missing.add(top)
            continue
        if root not in roots:
            roots.append(root)
        package = f"{root}/{top}".lstrip("/")
        files |= {p: t for p, t in python.items() if p == f"{package}.py" or p.startswith(f"{package}/")}
    files[path] = text
    return Box(files, path, tuple(roots), tuple(sorted(missing)))


def blob_sha(text: str) -> str:
    """git's blob id of `text` (what `git hash-object` prints)."""
    data = text.encode("utf-8")
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@functools.cache
def environment_key() -> str:
    """What a cached run depends on besides the file: the runner's code, Python and the libraries."""
    from importlib.metadata import PackageNotFoundError, version

    def v(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    runner = hashlib.sha256(sandbox.RUNNER.read_bytes()).hexdigest()
    key = {"runner": runner, "python": sys.version, "libs": {n: v(n) for n in LIBRARIES}}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def cache_root(settings: ExecSettings) -> Path:
    if settings.cache_dir:
        return Path(settings.cache_dir)
    return Path(os.environ.get("FLYTE_LLAMA_CACHE") or Path.home() / ".cache" / "flyte-llama") / "exec"


def run_file(box: Box, settings: ExecSettings, *, cache: bool = False, run: int = 1) -> sandbox.RunResult:
    """One sandboxed run of `box`; cached (never a timeout) when `cache`, under the git blob sha of the file
    it loads (plus a digest of the other files, the runner, Python and the libraries). `run` 2 is the
    survey's second, independent run of a reference (cached on its own, so a rerun executes nothing)."""
    layout = json.dumps(
        [box.module, list(box.sys_path), sorted((p, blob_sha(t)) for p, t in box.files.items())]
    )
    digest = hashlib.sha256((layout + environment_key()).encode()).hexdigest()[:16]
    path = cache_root(settings) / f"{blob_sha(box.files[box.module])}-{digest}-{run}.json"
    if cache and path.is_file():
        try:
            return sandbox.RunResult(**json.loads(path.read_text()))
        except (TypeError, json.JSONDecodeError):
            pass  # a damaged entry is recomputed
    spec = {"module": box.module, "sys_path": list(box.sys_path)}
    result = sandbox.run_files(box.files, spec, settings.limits())
    if cache and result.status != "timeout":
        write_text_atomic(path, json.dumps(result.to_dict(), sort_keys=True))
    return result


# What an error says about why a reference run failed, checked in this order (the first match wins).
