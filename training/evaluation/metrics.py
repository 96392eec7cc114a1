"""Infilling metrics, defined once (docs/EVALUATION.md explains each and why).

- `exact_match`: the field's convention (HumanEval-infilling, bigcode-evaluation-harness): surrounding
  whitespace stripped, and on a single-line task the generation cut at its first newline, so a model that
  writes the right line and then keeps going is not punished for the extra text.
- `exact_match_strict`: trailing whitespace of each line stripped, indentation kept, nothing truncated.
- `edit_similarity`: 1 - Levenshtein / longer length on the strict normalisation (as before).
- `valid_fill`: the filled file parses (tree-sitter and, for Python, `ast`) **and** the fill introduces no
  name that pyflakes finds undefined in the filled file but not in the original; a blank fill is never
  valid. This replaces the parse rate, which a bare identifier (`plplplpl`) passed. Python only.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Callable

SINGLE_LINE = "single_line"


def normalize(code: str) -> str:
    """Trailing whitespace stripped from every line, trailing empty lines dropped (indentation kept)."""
    return "\n".join(line.rstrip() for line in code.split("\n")).rstrip("\n")


def effective_fill(prediction: str, kind: str) -> str:
    """What a fill counts as: on a single-line task, the generation up to its first newline."""
    if kind == SINGLE_LINE:
        return prediction.split("\n", 1)[0]
    return prediction


def exact_match(prediction: str, reference: str, kind: str) -> bool:
    """The field's exact match: stripped, single-line generations cut at their first newline."""
    return effective_fill(prediction, kind).strip() == reference.strip()


def exact_match_strict(prediction: str, reference: str) -> bool:
    """Indentation kept, trailing whitespace ignored, nothing truncated."""
    return normalize(prediction) == normalize(reference)


def edit_similarity(prediction: str, reference: str) -> float:
    """1 - Levenshtein distance / length of the longer string, on normalized text (1.0 = identical)."""
    from rapidfuzz.distance import Levenshtein

    return float(Levenshtein.normalized_similarity(normalize(prediction), normalize(reference)))


def undefined_names(source: str) -> set[str] | None:
    """Names pyflakes reports as undefined in `source`, or None when it does not compile."""
    from pyflakes import checker, messages

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarnings (invalid escapes) are not errors
            tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    found = checker.Checker(tree, filename="<fill>")
    return {m.message_args[0] for m in found.messages if isinstance(m, messages.UndefinedName)}


def fill_file(content: str, span: tuple[int, int], middle: str, fill: str) -> str:
    """`content` with its `span` replaced by `fill` (normalized; a newline kept where the middle had one)."""
    filled = normalize(fill) + ("\n" if middle.endswith("\n") else "")
    return content[: span[0]] + filled + content[span[1] :]


def valid_fill(
    language: str,
    content: str,
    span: tuple[int, int],
    middle: str,
    fill: str,
    parses: Callable[[str, str], bool],
) -> bool | None:
    """Whether `fill` in the hole gives a file that parses and uses no new undefined name (Python only)."""
    if language != "python":
        return None
    if not fill.strip():
        return False
    source = fill_file(content, span, middle, fill)
    if not parses(language, source):
        return False
    after = undefined_names(source)
    before = undefined_names(content) or set()
    return after is not None and not (after - before)
