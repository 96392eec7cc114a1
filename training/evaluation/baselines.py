"""Trivial infilling baselines, scored on the same tasks as the models: a model number means something only
beside them (a "repeat the previous line" floor beat every model reported before these existed).

- `previous_line`: the last non-blank line before the hole, repeated.
- `file_copy`: find the visible line most similar to the one before the hole (elsewhere in the prefix or the
  suffix) and copy the lines that follow it, as many as the hole has: the "copy from the same file" a
  completion engine gets for free. It never looks at the reference.
- `ngram`: a greedy 4-gram model (backing off to 3-, 2- and 1-grams) over the train split's code tokens,
  continued from the prefix until the hole's line count is reached.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

TOKEN = re.compile(r"\n|[ \t]+|\w+|[^\w\s]")
ORDER = 4
MAX_TOKENS = 64
NAMES = ("previous_line", "file_copy", "ngram")


def _lines(text: str) -> list[str]:
    return text.split("\n")


def previous_line(prefix: str) -> str:
    for line in reversed(_lines(prefix)):
        if line.strip():
            return line
    return ""


def file_copy(prefix: str, suffix: str, hole_lines: int) -> str:
    """The lines after the visible line most similar to the line before the hole."""
    from rapidfuzz.distance import Levenshtein

    before = [line for line in _lines(prefix) if line.strip()]
    if not before:
        return ""
    anchor = before[-1].strip()
    visible = before[:-1] + [line for line in _lines(suffix) if line.strip()]
    best, best_score = None, -1.0
    for i, line in enumerate(visible[:-1]):
        score = Levenshtein.normalized_similarity(line.strip(), anchor)
        if score > best_score:
            best, best_score = i, score
    if best is None:
        return ""
    return "\n".join(visible[best + 1 : best + 1 + hole_lines])


@dataclass
class NgramModel:
    """Most frequent next token for each context of 1..ORDER-1 tokens (ints packed into one key)."""

    vocab: dict[str, int]
    words: list[str]
    best: list[dict[int, int]]  # best[n] maps a packed n-token context to its most frequent next token
    tokens: int

    @classmethod
    def train(cls, texts: Iterable[str], max_tokens: int = 4_000_000) -> NgramModel:
        vocab: dict[str, int] = {}
        ids: list[int] = []
        for text in texts:
            for tok in TOKEN.findall(text):
                ids.append(vocab.setdefault(tok, len(vocab)))
            ids.append(vocab.setdefault("\n", len(vocab)))  # documents end on a line break
            if len(ids) >= max_tokens:
                break
        arr = np.asarray(ids[:max_tokens], dtype=np.int64)
        bits = max(1, len(vocab).bit_length())
        best: list[dict[int, int]] = [{}]
        counts = np.bincount(arr, minlength=len(vocab)) if len(arr) else np.zeros(1, dtype=np.int64)
        best[0][0] = int(np.argmax(counts))
        for n in range(1, ORDER):
            if len(arr) <= n or bits * n > 63:  # the packed context must fit in an int64
                best.append({})
                continue
            key = np.zeros(len(arr) - n, dtype=np.int64)
            for j in range(n):
                key = (key << bits) | arr[j : len(arr) - n + j]
            nxt = arr[n:]
            order = np.lexsort((nxt, key))  # group equal (context, next) pairs
            key, nxt = key[order], nxt[order]
            starts = np.flatnonzero(np.r_[True, (key[1:] != key[:-1]) | (nxt[1:] != nxt[:-1])])
            freq = np.diff(np.r_[starts, len(key)])
            ukey, unxt = key[starts], nxt[starts]
            # Most frequent next token per context (ties: the smaller token id): sort by (context, -count).
            pick = np.lexsort((unxt, -freq, ukey))
            ukey, unxt = ukey[pick], unxt[pick]
            first = np.r_[True, ukey[1:] != ukey[:-1]]
            best.append(dict(zip(ukey[first].tolist(), unxt[first].tolist(), strict=True)))
        return cls(vocab=vocab, words=list(vocab), best=best, tokens=len(arr))

    def _pack(self, context: Sequence[int]) -> int:
        bits = max(1, len(self.vocab).bit_length())
        key = 0
        for tok in context:
            key = (key << bits) | tok
        return key

    def next_token(self, history: Sequence[int]) -> int:
        for n in range(min(ORDER - 1, len(history)), 0, -1):
            context = history[-n:]
            if any(t < 0 for t in context):
                continue
            hit = self.best[n].get(self._pack(context))
            if hit is not None:
                return hit
        return self.best[0][0]

    def complete(self, prefix: str, hole_lines: int) -> str:
        """Greedy continuation of `prefix` until `hole_lines` line breaks (or MAX_TOKENS tokens)."""
        history = [self.vocab.get(t, -1) for t in TOKEN.findall(prefix)[-(ORDER - 1) :]]
        out: list[str] = []
        newline = self.vocab.get("\n")
        for _ in range(MAX_TOKENS):
            tok = self.next_token(history)
            history.append(tok)
            if tok == newline and sum(w == "\n" for w in out) + 1 >= hole_lines:
                break
            out.append(self.words[tok])
        return "".join(out)


def predictions(tasks: Sequence, model: NgramModel | None) -> dict[str, list[str]]:
    """{baseline name: one prediction per task} (ngram only when a model is given)."""
    holes = [max(1, t.middle.rstrip("\n").count("\n") + 1) for t in tasks]
    out = {
        "previous_line": [previous_line(t.prefix) for t in tasks],
        "file_copy": [file_copy(t.prefix, t.suffix, n) for t, n in zip(tasks, holes, strict=True)],
    }
    if model is not None:
        out["ngram"] = [model.complete(t.prefix, n) for t, n in zip(tasks, holes, strict=True)]
    return out
