"""Likelihood baselines: byte n-gram models of the train split, so a model's bits per byte and nats per char
are read against what counting alone achieves.

A language model's held-out perplexity and its teacher-forced likelihood of reference middles mean little
alone: a model can improve on its base and still know less than a table of byte counts. These baselines give
those numbers a floor in the same units (bits per byte of the test documents; nats per character of the
middles), tokenizer-free, so they compare with any model:

- `byte_unigram`: the train split's byte frequencies (order 1);
- `byte_ngram`: an interpolated Witten-Bell byte n-gram (Witten & Bell 1991; the PPM family of text
  compressors), its order picked on the validation split, never on the test split.

Witten-Bell interpolation: P_k(c | h) = (C(h, c) + T(h) · P_{k-1}(c | h')) / (C(h) + T(h)), where h' drops
the oldest byte of h, T(h) is the number of distinct bytes seen after h, and an unseen context falls back to
P_{k-1}; below order 1 sits the uniform distribution over the 256 bytes and the document boundary. It is
normalised, so its nats are a probability, like a model's. Contexts never reach across a document's start
(a boundary symbol fills them, as a model's BOS). The n-gram reads only the text before a hole (it has no
notion of a suffix) and pays nothing for an end-of-middle token: both favour the models it is compared with.

No maintained library does this at this size in seconds (KenLM needs a C++ build; NLTK's `lm` scores a few
thousand n-grams per second), so it is vectorised numpy: contexts are 64-bit polynomial hashes (collisions
among ~10^8 keys are ~10^-4 likely, and would only merge two counts), counted with `np.unique` and looked up
with `np.searchsorted`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BOUNDARY = 256  # the document-start symbol; bytes are 0..255
ALPHABET = 257
MAX_ORDER = 8
_MUL = np.uint64(0x9E3779B97F4A7C15)  # odd: the hash is a bijection of the previous hash per step
_JOINT = np.uint64(0xD6E8FEB86659FD93)


def _symbols(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(every text's UTF-8 bytes concatenated as uint16, each byte's offset from its text's start)."""
    parts = [np.frombuffer(t.encode("utf-8"), dtype=np.uint8) for t in texts]
    sizes = np.array([len(p) for p in parts], dtype=np.int64)
    syms = np.concatenate(parts).astype(np.uint16) if parts else np.zeros(0, np.uint16)
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    return syms, np.arange(len(syms), dtype=np.int64) - starts


def _context_hashes(syms: np.ndarray, offset: np.ndarray, orders: int) -> list[np.ndarray]:
    """[hash of the k symbols before each position, for k = 0 .. orders-1]; symbols before a text's start
    are BOUNDARY, so no context reaches into the previous text."""
    out = [np.zeros(len(syms), dtype=np.uint64)]
    h = out[0]
    for k in range(1, orders):
        prev = np.full(len(syms), BOUNDARY, dtype=np.uint64)
        ok = offset >= k
        prev[ok] = syms[np.flatnonzero(ok) - k]
        h = h * _MUL + prev + np.uint64(1)
        out.append(h)
    return out


def _joint(ctx: np.ndarray, syms: np.ndarray) -> np.ndarray:
    return (ctx ^ _JOINT) * _MUL + syms.astype(np.uint64) + np.uint64(1)


@dataclass
class Table:
    """Counts of one order: sorted joint keys and C(h, c); sorted context keys, C(h) and T(h)."""

    joint: np.ndarray
    joint_count: np.ndarray
    context: np.ndarray
    context_count: np.ndarray
    distinct: np.ndarray


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    if not len(keys):
        return np.zeros(len(query), dtype=np.float64)
    at = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return np.where(keys[at] == query, values[at], 0).astype(np.float64)


@dataclass
class ByteNgram:
    tables: list[Table]  # tables[k]: contexts of k bytes (order k + 1)
    train_bytes: int

    @property
    def order(self) -> int:
        return len(self.tables)

    @classmethod
    def train(cls, texts: Sequence[str], order: int = 6, max_bytes: int = 32_000_000) -> ByteNgram:
        """Count contexts of 0 .. order-1 bytes over `texts` (in order, up to `max_bytes` bytes)."""
        if not 1 <= order <= MAX_ORDER:
            raise ValueError(f"order={order}: must be 1..{MAX_ORDER}")
        kept, total = [], 0
        for text in texts:
            size = len(text.encode("utf-8"))
            if total + size > max_bytes:
                break
            kept.append(text)
            total += size
        syms, offset = _symbols(kept)
        tables = []
        for ctx in _context_hashes(syms, offset, order):
            joint, first, count = np.unique(_joint(ctx, syms), return_index=True, return_counts=True)
            context, context_count = np.unique(ctx, return_counts=True)
            owners = np.unique(ctx[first], return_counts=True)[1]  # distinct next bytes per context
            tables.append(Table(joint, count, context, context_count, owners))
        return cls(tables=tables, train_bytes=int(total))

    def nats_by_order(self, texts: Sequence[str], score_from: Sequence[int] | None = None) -> np.ndarray:
        """[order, text] summed nats of each text's bytes from byte `score_from[i]` on, under every order
        1 .. self.order (one pass: order k's probability is built on order k-1's)."""
        full, offset = _symbols(texts)
        doc = np.repeat(np.arange(len(texts)), [len(t.encode("utf-8")) for t in texts])
        start = np.zeros(len(texts), np.int64) if score_from is None else np.asarray(score_from, np.int64)
        scored = offset >= start[doc]
        # contexts are hashed over the whole texts (so the bytes before `score_from` are context), then kept
        # for the scored positions only
        contexts = [c[scored] for c in _context_hashes(full, offset, self.order)]
        syms, doc = full[scored], doc[scored]
        prob = np.full(len(syms), 1.0 / ALPHABET)
        out = np.zeros((self.order, len(texts)))
        for k, (table, ctx) in enumerate(zip(self.tables, contexts, strict=True)):
            c_hc = _lookup(table.joint, table.joint_count, _joint(ctx, syms))
            c_h = _lookup(table.context, table.context_count, ctx)
            t_h = _lookup(table.context, table.distinct, ctx)
            seen = c_h > 0
            prob = np.where(seen, (c_hc + t_h * prob) / np.where(seen, c_h + t_h, 1.0), prob)
            out[k] = np.bincount(doc, weights=-np.log(prob), minlength=len(texts))
        return out


def bits_per_byte(nats: Sequence[float], texts: Sequence[str]) -> float:
    size = sum(len(t.encode("utf-8")) for t in texts)
    return math.fsum(nats) / math.log(2) / max(size, 1)


def pick_order(model: ByteNgram, validation: Sequence[str]) -> tuple[int, dict[int, float]]:
    """(the order with the fewest bits per byte on `validation`, {order: bits per byte})."""
    nats = model.nats_by_order(validation)
    scores = {k + 1: bits_per_byte(nats[k], validation) for k in range(model.order)}
    return min(scores, key=lambda k: (scores[k], k)), scores
