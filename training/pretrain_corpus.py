"""The proxy base's pretraining text: Python code that contains no Flyte.

The mini experiment stands in for Code Llama with a small Llama pretrained from scratch. Code Llama saw
public code in general, not Flyte's repos in particular; the proxy must not have seen Flyte either, or the
fine-tune's gain would be measured against a base that already knows the answer. So the text comes from two
sources every machine with this project installed has:

- the Python standard library (`stdlib_files`);
- the sources of installed third-party packages named by the recipe (`package_files`): numpy, torch,
  transformers and the like, all dependencies of this project, so they are present wherever it runs.

Never flytekit, flyteidl or any `flyte*` distribution: a package named so is refused when the recipe loads
(`flyte_packages`), and any file whose text mentions "flyte" (case-insensitive: an import, a docstring, a
plugin registration) is dropped and counted. Both selections are deterministic for the same installed files:
candidates are taken in SHA-256 order of their relative path, up to a byte budget, so a small budget spreads
over many modules instead of the first letters of the alphabet.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.util
import re
import sysconfig
from collections.abc import Iterable
from pathlib import Path

# Any mention, in any case: `import flytekit`, `flyteidl.core`, "Flyte" in a docstring.
FLYTE = re.compile(rb"flyte", re.IGNORECASE)
PACKAGE_PREFIX = "site-packages/"


def flyte_packages(names: Iterable[str]) -> list[str]:
    """The names in `names` that are Flyte's own packages (refused as pretraining text)."""
    return [name for name in names if FLYTE.search(name.encode())]


def _candidates(root: Path, exclude: list[str], max_file_bytes: int) -> list[str]:
    out = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).as_posix()
        if any(fnmatch.fnmatch(part, pat) for part in rel.split("/")[:-1] for pat in exclude):
            continue
        if path.is_file() and not path.is_symlink() and path.stat().st_size <= max_file_bytes:
            out.append(rel)
    return out


def _pick(files: list[tuple[str, Path]], budget: int, dropped: dict[str, int]) -> list[tuple[str, str]]:
    """Files in SHA-256 order of their names, up to `budget` bytes; Flyte mentions and non-UTF-8 dropped."""
    files = sorted(files, key=lambda item: hashlib.sha256(item[0].encode()).hexdigest())
    out, total = [], 0
    for rel, path in files:
        if total + path.stat().st_size > budget:
            continue  # a file that would overflow the budget is skipped; a smaller later one may fit
        try:
            data = path.read_bytes()
            text = data.decode("utf-8")
        except (UnicodeDecodeError, OSError):
            dropped["not_utf8"] = dropped.get("not_utf8", 0) + 1  # a few stdlib files are Latin-1 test data
            continue
        if FLYTE.search(data):
            dropped["mentions_flyte"] = dropped.get("mentions_flyte", 0) + 1
            continue
        out.append((rel, text))
        total += len(data)
    return out


def stdlib_files(
    budget: int, exclude: list[str], max_file_bytes: int, root: Path | None = None,
    dropped: dict[str, int] | None = None,
) -> list[tuple[str, str]]:  # fmt: skip
    """[(path relative to the stdlib, text)], deterministic, up to `budget` bytes."""
    root = Path(root or sysconfig.get_paths()["stdlib"])
    files = [(rel, root / rel) for rel in _candidates(root, exclude, max_file_bytes)]
    out = _pick(files, budget, {} if dropped is None else dropped)
    if not out:
        raise FileNotFoundError(f"no .py files under {root} after excluding {exclude}")
    return out


def package_root(name: str) -> Path | None:
    """The folder of the installed top-level package `name`, or None if it is not installed."""
    spec = importlib.util.find_spec(name)  # finds without importing (no torch start-up cost)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def package_files(
    names: list[str], budget: int, exclude: list[str], max_file_bytes: int,
    dropped: dict[str, int] | None = None,
) -> tuple[list[tuple[str, str]], dict[str, str | None]]:  # fmt: skip
    """([("site-packages/<pkg>/<path>", text)], {package: its folder or None when not installed}).

    The budget is shared by all packages and filled in SHA-256 order of the names, so it mixes them.
    """
    refused = flyte_packages(names)
    if refused:
        raise ValueError(f"packages {refused}: Flyte's own code cannot be the proxy base's pretraining text")
    roots = {name: package_root(name) for name in names}
    files = [
        (f"{PACKAGE_PREFIX}{name}/{rel}", root / rel)
        for name, root in roots.items()
        if root is not None
        for rel in _candidates(root, exclude, max_file_bytes)
    ]
    picked = _pick(files, budget, {} if dropped is None else dropped) if budget else []
    return picked, {name: str(root) if root else None for name, root in roots.items()}
