"""Jupyter notebooks → percent-format scripts (`# %%` cells), outputs dropped.

The percent format is what jupytext and VS Code read back as cells, so the model learns plain code
with light cell markers instead of JSON escaping and base64 plot outputs.
"""

from __future__ import annotations

import json

from .languages import SHEBANG_INTERPRETERS


class NotebookError(ValueError):
    """The .ipynb is not valid notebook JSON."""


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _comment(text: str, prefix: str) -> str:
    return "\n".join(f"{prefix} {line}".rstrip() for line in text.splitlines())


def notebook_language(nb: dict) -> str:
    """Kernel language from the notebook metadata (language_info, then kernelspec); python by default."""
    meta = nb.get("metadata") or {}
    name = (meta.get("language_info") or {}).get("name") or (meta.get("kernelspec") or {}).get("language")
    name = (name or "python").lower()
    return SHEBANG_INTERPRETERS.get(name, name)


def notebook_to_percent(raw: str) -> tuple[str, str]:
    """Return (percent-format text, language). Code and markdown cells are kept, outputs dropped.

    Markdown cells become comment blocks under `# %% [markdown]` as jupytext writes them.
    """
    try:
        nb = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise NotebookError(f"invalid notebook JSON: {exc}") from exc
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise NotebookError("not a notebook: no 'cells' list (nbformat 4 expected)")
    language = notebook_language(nb)
    comment = "//" if language in {"javascript", "typescript", "go"} else "#"
    parts = []
    for cell in nb["cells"]:
        text = _source(cell).strip("\n")
        kind = cell.get("cell_type")
        if kind == "code":
            parts.append(f"{comment} %%\n{text}" if text else f"{comment} %%")
        elif kind == "markdown" and text:
            parts.append(f"{comment} %% [markdown]\n{_comment(text, comment)}")
    return ("\n\n".join(parts) + "\n") if parts else "", language
