"""Line-level decontamination of infilling tasks against the train and validation splits.

File-level MinHash keeps near-duplicate *files* out of the test split, but a test file can still share a
hole and its surroundings with a train file (a vendored helper, a copied docs snippet, a CHANGELOG entry).
A task is dropped when, after whitespace normalisation (each line stripped, runs of spaces collapsed, blank
lines skipped):

- `window_seen`: the hole's lines with `k` lines of context on each side occur as consecutive lines of a
  train/validation document, or
- `middle_seen`: the middle has at least `min_chars` characters and its lines occur consecutively in one.

Lines are hashed once; windows of each needed length are polynomial hashes over those (numpy, uint64
wrapping), so checking thousands of tasks against the whole train split costs seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

CLEAN = "clean"
WINDOW_SEEN = "window_seen"
MIDDLE_SEEN = "middle_seen"
REASONS = (WINDOW_SEEN, MIDDLE_SEEN)
_MULT = np.uint64(0x100000001B3)  # FNV prime: any odd 64-bit multiplier works for a rolling hash
_MASK = (1 << 64) - 1


def norm_line(line: str) -> str:
    return " ".join(line.split())


def norm_lines(text: str) -> list[str]:
    """The non-blank lines of `text`, each stripped with inner whitespace runs collapsed."""
    return [n for n in (norm_line(line) for line in text.split("\n")) if n]


def _line_hashes(lines: Sequence[str]) -> np.ndarray:
    return np.fromiter((hash(line) & _MASK for line in lines), dtype=np.uint64, count=len(lines))


def _window_hashes(hashes: np.ndarray, length: int) -> np.ndarray:
    if length > len(hashes):
        return np.empty(0, dtype=np.uint64)
    count = len(hashes) - length + 1
    acc = np.zeros(count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(length):
            acc = acc * _MULT + hashes[j : j + count]
    return acc


@dataclass
class LineIndex:
    """Every run of consecutive normalised lines of some documents, queryable by length."""

    docs: list[np.ndarray]
    lines: set[str] = field(default_factory=set)
    _windows: dict[int, set[int]] = field(default_factory=dict)

    @classmethod
    def build(cls, texts: Iterable[str]) -> LineIndex:
        docs, lines = [], set()
        for text in texts:
            normed = norm_lines(text)
            lines.update(normed)
            docs.append(_line_hashes(normed))
        return cls(docs=docs, lines=lines)

    def windows(self, length: int) -> set[int]:
        if length not in self._windows:
            found: set[int] = set()
            for doc in self.docs:
                found.update(_window_hashes(doc, length).tolist())
            self._windows[length] = found
        return self._windows[length]

    def contains(self, lines: Sequence[str]) -> bool:
        """Whether `lines` (normalised, non-blank) occur consecutively in one indexed document."""
        if not lines:
            return False
        key = int(_window_hashes(_line_hashes(lines), len(lines))[0])
        return key in self.windows(len(lines))


def hole_window(content: str, span: tuple[int, int], k: int) -> list[str]:
    """The hole's normalised lines with up to `k` non-blank lines of the file on each side."""
    before = norm_lines(content[: span[0]])[-k:] if k else []
    after = norm_lines(content[span[1] :])[:k] if k else []
    return before + norm_lines(content[span[0] : span[1]]) + after


def verdict(
    index: LineIndex, content: str, span: tuple[int, int], middle: str, k: int, min_chars: int
) -> str:
    """`clean`, or the reason the task occurs in the indexed (train + validation) documents."""
    if index.contains(hole_window(content, span, k)):
        return WINDOW_SEEN
    middle_lines = norm_lines(middle)
    if sum(map(len, middle_lines)) >= min_chars and index.contains(middle_lines):
        return MIDDLE_SEEN
    return CLEAN


def line_overlap(index: LineIndex, texts: Iterable[str], min_chars: int = 20) -> dict[str, float | int]:
    """How many of the test documents' lines (≥ `min_chars` after normalising) occur verbatim in train."""
    total = seen = 0
    for text in texts:
        for line in norm_lines(text):
            if len(line) >= min_chars:
                total += 1
                seen += line in index.lines
    return {"lines": total, "in_train": seen, "share": seen / total if total else 0.0}
