"""tree-sitter access for every stage: one parser per grammar per process, and one meaning of "parses".

Grammars come from tree-sitter-language-pack 0.13, which bundles them (1.x downloads them at run time,
which fails offline; see pyproject.toml).
"""

from __future__ import annotations

import ast
import warnings
from functools import cache
from typing import Any

# Our language names → the pack's grammar names.
GRAMMARS = {
    "python": "python",
    "go": "go",
    "typescript": "typescript",
    "tsx": "tsx",
    "javascript": "javascript",
    "protobuf": "proto",
    "shell": "bash",
    "dockerfile": "dockerfile",
    "makefile": "make",
    "yaml": "yaml",
    "toml": "toml",
    "json": "json",
    "markdown": "markdown",
    "rst": "rst",
}
# Languages whose files the corpus marks `parses` true/false; prose is not "parsed" in that sense.
CODE_GRAMMARS = {k: v for k, v in GRAMMARS.items() if k not in ("markdown", "rst")}


@cache
def parser(language: str) -> Any | None:
    """The tree-sitter parser for one of our language names, or None when no grammar applies or the
    grammar is missing from this install (callers fall back to line boundaries)."""
    grammar = GRAMMARS.get(language)
    if grammar is None:
        return None
    try:
        from tree_sitter_language_pack import get_parser

        return get_parser(grammar)
    except Exception:  # an install without this grammar
        return None


def parse_tree(language: str, content: str) -> Any | None:
    """The syntax tree of `content`, or None when no grammar applies."""
    p = parser(language)
    return None if p is None else p.parse(content.encode("utf-8"))


def parses(language: str, content: str) -> bool | None:
    """The corpus' `parses` column: True when tree-sitter finds no ERROR or MISSING node in `content`;
    None when no code grammar applies (prose, unknown languages)."""
    if language not in CODE_GRAMMARS:
        return None
    tree = parse_tree(language, content)
    return None if tree is None else not tree.root_node.has_error


def clean_tree(language: str, content: str) -> Any | None:
    """The tree of `content` when it parses AND, for Python, also compiles with `ast`; else None.

    Stricter than `parses`, for judging generated code: tree-sitter's Python grammar accepts wrong
    indentation (a dedented line inside a function body parses), which would count a badly indented fill
    as valid.
    """
    tree = parse_tree(language, content)
    if tree is None or tree.root_node.has_error:
        return None
    if language == "python":
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # SyntaxWarnings (e.g. invalid escapes) are not errors
                ast.parse(content)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None
    return tree
