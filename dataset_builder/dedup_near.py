"""Near-duplicate detection: MinHash signatures of code-token 5-grams, computed in numpy, indexed by
datasketch's MinHashLSH.

Why numpy instead of `MinHash.update_batch` per document: the corpus is ~10M tokens, and hashing each
shingle through a Python callable is the slow part (datasketch hashes on CPU in a Python loop). We compute
*the same* affine32 signatures datasketch would (same permutations from `MinHash(num_perm, seed)`, same
MurmurHash3 fmix32 pre-mix; a test checks bit equality with `MinHash.update_batch`) in three vectorised steps:

1. Tokens: the UTF-8 bytes of many documents are joined with "\n" and classified with a 256-entry lookup
   table (word byte / whitespace / other). A token is a maximal run of word bytes (identifiers, numbers;
   non-ASCII bytes count as word bytes so unicode identifiers stay whole) or one punctuation byte
   (operators). This is exactly `TOKEN_RE` below, just without a Python loop.
2. Token hashes: a polynomial prefix hash over bytes, made position-independent with the modular inverse
   of the base (mod 2^64), so a token hashes the same wherever it occurs; 5-grams combine 5 consecutive
   token hashes with fixed odd multipliers and are mixed down to 32 bits.
3. Signatures: `a * fmix32(h) + b` (uint32, wrapping) for all 256 permutations at once on a
   (num_perm × chunk) block that fits the CPU cache, then `np.minimum.reduceat` per document.

Cost is linear in corpus bytes (one pass per step). LSH uses datasketch's (bands, rows) optimum for the
threshold; bucketing is np.unique per band (a test checks it finds the same pairs as MinHashLSH.query).
datasketch itself is not imported here: its package __init__ pulls in scipy (~0.5 s of every cold build)
only for the LSH optimum's integrals. `affine32_permutations` and `lsh_params` reproduce its
`MinHash._init_permutations` and `lsh._optimal_param` in a few lines of numpy; tests check both are equal
to datasketch's over many seeds and thresholds.
Candidate pairs are verified with the signature-estimated Jaccard, so banding false positives never
become drops.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from itertools import pairwise

import numpy as np

# The reference definition of a code token; `_token_bounds` implements it on bytes with numpy.
TOKEN_RE = re.compile(rb"[A-Za-z0-9_\x80-\xff]+|[^A-Za-z0-9_\x80-\xff \t\n\r\f\v]")

_CLASS = np.full(256, 2, dtype=np.uint8)  # 2 = a one-byte operator/punctuation token
_CLASS[list(b" \t\n\r\f\v")] = 0  # whitespace separates tokens and is not one
_CLASS[list(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")] = 1
_CLASS[0x80:] = 1
_CLASS_TABLE = _CLASS.tobytes()  # the same table for bytes.translate

_BASE = np.uint64(0x9E3779B97F4A7C15)  # odd, so it is invertible mod 2^64
_BASE_INV = np.uint64(pow(int(_BASE), -1, 1 << 64))
# Odd multipliers that combine n consecutive token hashes into one n-gram hash (order-sensitive).
_NGRAM_MULT = np.array(
    [0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93, 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53,
     0x9FB21C651E98DF25, 0xA0761D6478BD642F, 0xE7037ED1A0B428DB],
    dtype=np.uint64,
)  # fmt: skip
_CHUNK = 8192  # shingles per (num_perm × chunk) uint32 block: 8 MB at 256 permutations, cache friendly


def affine32_permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) uint32 arrays of `MinHash(num_perm, seed, scheme="affine32").permutations`: datasketch draws
    an odd `a` (h -> a*h + b mod 2^32 is a bijection) and any `b` from RandomState(seed), in this order."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def _powers(base: np.uint64, n: int) -> np.ndarray:
    """base^0 .. base^(n-1) mod 2^64. By doubling (B^(k+i) = B^i * B^k: log2(n) vectorised multiplies)
    rather than np.cumprod, whose integer loop is sequential and was most of the token-hashing time."""
    out = np.empty(max(n, 1), dtype=np.uint64)
    out[0] = 1
    done = 1
    while done < n:
        step = min(done, n - done)
        b_done = np.uint64(int(out[done - 1]) * int(base) % (1 << 64))  # B^done, exact
        np.multiply(out[:step], b_done, out=out[done : done + step])  # uint64 arrays wrap: mod 2^64
        done += step
    return out[:n]


def hash_powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(B^j, B^-j) for j < n: what token_hashes needs for `n` bytes; compute once for many calls."""
    return _powers(_BASE, n), _powers(_BASE_INV, n)


def token_hashes(
    data: bytes, powers: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(hash, start offset) of every code token of `data`, as uint64/int64 arrays.

    The hash depends only on the token's bytes, never on where it occurs or on the rest of the corpus.
    `powers`: hash_powers(m) for some m >= len(data), to share them between calls.
    """
    n = len(data)
    if n == 0:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    if powers is None or len(powers[0]) < n:
        powers = hash_powers(n)
    arr = np.frombuffer(data, dtype=np.uint8)
    cls = np.frombuffer(data.translate(_CLASS_TABLE), dtype=np.uint8)  # C speed, vs fancy indexing
    word = cls == 1
    other = cls == 2
    edge = np.empty(n + 1, dtype=bool)  # edge[i]: byte i-1 and byte i differ in "is a word byte"
    edge[0] = edge[n] = True
    np.not_equal(word[1:], word[:-1], out=edge[1:-1])
    starts = np.flatnonzero(other | (word & edge[:-1]))
    ends = np.flatnonzero(other | (word & edge[1:])) + 1
    prefix = np.zeros(n + 1, dtype=np.uint64)
    np.multiply(arr, powers[0][:n], out=prefix[1:])
    np.cumsum(prefix[1:], out=prefix[1:])
    # sum_{j in [s, e)} c_j B^j, shifted down to B^0 by B^-s: position independent.
    hashes = (prefix[ends] - prefix[starts]) * powers[1][starts]
    return hashes, starts


def fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, as datasketch applies it before its affine32 permutations."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def _ngram_hashes(tok: np.ndarray, tok_doc: np.ndarray, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """uint32 hash and document index of every n-gram of consecutive tokens inside one document."""
    m = len(tok) - ngram + 1
    if m <= 0:
        return np.empty(0, np.uint32), np.empty(0, np.int64)
    acc = tok[:m] * _NGRAM_MULT[0]
    for k in range(1, ngram):
        acc += tok[k : k + m] * _NGRAM_MULT[k]
    valid = tok_doc[:m] == tok_doc[ngram - 1 :]  # n-grams never straddle two documents
    acc = acc[valid]
    # Fold 64 → 32 bits (datasketch's affine32 scheme takes 32-bit input hashes).
    return (acc ^ (acc >> np.uint64(32))).astype(np.uint32), tok_doc[:m][valid]


def _signature_block(
    texts: Sequence[bytes],
    ngram: int,
    perms: tuple[np.ndarray, np.ndarray],
    num_perm: int,
    powers: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Signatures (len(texts) × num_perm, uint32) and shingle counts of a batch of documents."""
    a, b = perms[0][:, None], perms[1][:, None]
    sig = np.full((len(texts), num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
    lengths = np.fromiter((len(t) + 1 for t in texts), dtype=np.int64, count=len(texts))
    doc_starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    tok, tok_start = token_hashes(b"\n".join(texts), powers)
    tok_doc = np.searchsorted(doc_starts, tok_start, side="right") - 1
    shingles, shingle_doc = _ngram_hashes(tok, tok_doc, ngram)
    counts = np.bincount(shingle_doc, minlength=len(texts))
    # A minimum does not change when a value repeats: each document's distinct n-grams only. Code repeats
    # itself (~37% of a Flyte document's 5-grams occur earlier in it), and the permutations below cost
    # ~150 ns per n-gram. One sort of (document, hash) keys does it: np.unique hashes instead of sorting in
    # numpy 2.3+, ~100x slower here.
    key = np.sort((shingle_doc.astype(np.uint64) << np.uint64(32)) | shingles.astype(np.uint64))
    first = np.empty(len(key), dtype=bool)
    first[:1] = True
    np.not_equal(key[1:], key[:-1], out=first[1:])
    key = key[first]
    shingles, shingle_doc = key.astype(np.uint32), (key >> np.uint64(32)).astype(np.int64)
    mixed = fmix32(shingles)
    buf = np.empty((num_perm, _CHUNK), dtype=np.uint32)
    for lo in range(0, len(mixed), _CHUNK):
        x, docs = mixed[lo : lo + _CHUNK], shingle_doc[lo : lo + _CHUNK]
        block = buf[:, : len(x)]
        np.multiply(a, x[None, :], out=block)
        np.add(block, b, out=block)
        seg = np.flatnonzero(np.concatenate(([True], docs[1:] != docs[:-1])))
        mins = np.minimum.reduceat(block, seg, axis=1).T  # one row per document present in the chunk
        rows = docs[seg]
        sig[rows] = np.minimum(sig[rows], mins)
    return sig, counts


def minhash_signatures(
    texts: Sequence[str], num_perm: int = 256, seed: int = 1, ngram: int = 5, workers: int = 2,
    batch_bytes: int = 1_000_000,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """datasketch affine32 MinHash signatures (n × num_perm uint32) and n-gram counts of `texts`.

    `batch_bytes`: documents are hashed in batches of about this many bytes. A batch's arrays take ~40
    bytes per input byte; at 1 MB they are reused from the allocator's free lists, at 4 MB every batch
    paid fresh, zeroed pages (~30% more CPU on the Flyte corpus, measured).

    A document with no n-gram (fewer than `ngram` tokens) keeps the all-max "empty" signature and a
    count of 0; callers must leave such documents out of LSH (every empty signature collides).
    """
    if ngram < 1 or ngram > len(_NGRAM_MULT):
        raise ValueError(f"ngram must be in 1..{len(_NGRAM_MULT)}, got {ngram}")
    perms = affine32_permutations(num_perm, seed)
    encoded = [t.encode("utf-8", "surrogatepass") for t in texts]
    batches, lo, size = [], 0, 0
    for i, data in enumerate(encoded):
        size += len(data)
        if size >= batch_bytes:
            batches.append((lo, i + 1))
            lo, size = i + 1, 0
    if lo < len(encoded) or not batches:
        batches.append((lo, len(encoded)))
    # One table of powers for every batch (a batch's joined bytes: its documents plus one "\n" each).
    powers = hash_powers(max(sum(len(d) + 1 for d in encoded[a:b]) for a, b in batches))
    # numpy releases the GIL in the big array ops, so threads give real parallelism here.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        parts = list(
            pool.map(
                lambda r: _signature_block(encoded[r[0] : r[1]], ngram, perms, num_perm, powers), batches
            )
        )
    sig = np.concatenate([p[0] for p in parts]) if parts else np.empty((0, num_perm), np.uint32)
    counts = np.concatenate([p[1] for p in parts]) if parts else np.empty(0, np.int64)
    return sig, counts


def gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of n-point Gauss-Legendre quadrature, as np.polynomial.legendre.leggauss gives
    them (to 1e-14; tested), by Newton's method on the Legendre recurrence.

    Why not leggauss: it finds the nodes with LAPACK's eigvalsh, which wakes OpenBLAS's thread pool, and
    those threads then spin on the CPU for a while (0.1-0.2 CPU-s of every cold build, taken from the
    per-repo workers). Elementwise numpy never wakes them."""

    def legendre(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(P_n(x), P_n'(x)) by the recurrence m P_m = (2m-1) x P_{m-1} - (m-1) P_{m-2}."""
        p0, p1 = np.ones_like(x), x
        for m in range(2, n + 1):
            p0, p1 = p1, ((2 * m - 1) * x * p1 - (m - 1) * p0) / m
        return p1, n * (x * p1 - p0) / (x * x - 1)

    x = np.cos(np.pi * (np.arange(1, n + 1) - 0.25) / (n + 0.5))  # Tricomi's first guesses, descending
    for _ in range(100):
        value, slope = legendre(x)
        step = value / slope
        x = x - step
        if np.abs(step).max() < 1e-16:
            break
    _, slope = legendre(x)
    weights = 2 / ((1 - x * x) * slope * slope)
    return x[::-1].copy(), weights[::-1].copy()


@cache
def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) that datasketch's MinHashLSH picks for this threshold: over every b·r ≤
    num_perm, the first minimum of ½·P(false positive) + ½·P(false negative), i.e. of the integrals of
    1-(1-s^r)^b over [0, threshold] and of (1-s^r)^b over [threshold, 1].

    datasketch integrates with scipy's `quad`; 16 panels of 64-point Gauss-Legendre per interval, all
    (b, r) at once, give the same optimum (tested) without importing scipy."""
    pairs = np.array([(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)], float)
    bands, rows = pairs[:, :1], pairs[:, 1:]
    nodes, weights = gauss_legendre(64)

    def integral(lo: float, hi: float, miss: bool) -> np.ndarray:
        total = np.zeros(len(pairs))
        edges = np.linspace(lo, hi, 17)
        for a, c in pairwise(edges):
            s = (c - a) / 2 * nodes[None, :] + (c + a) / 2
            no_band = (1 - s**rows) ** bands  # probability that no band collides at similarity s
            total += ((no_band if miss else 1 - no_band) * weights).sum(axis=1) * (c - a) / 2
        return total

    error = 0.5 * integral(0.0, threshold, miss=False) + 0.5 * integral(threshold, 1.0, miss=True)
    best = int(np.argmin(error))  # the first minimum, as datasketch's strict `<` scan keeps
    return int(pairs[best, 0]), int(pairs[best, 1])


def candidate_pairs(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """All (i, j), i < j, that share at least one LSH band — what MinHashLSH.query would return, but
    bucketed with np.unique per band instead of one Python dict insert per (document, band). Sorted."""
    n = len(signatures)
    found = np.empty(0, dtype=np.int64)
    for band in range(bands):
        key = np.ascontiguousarray(signatures[:, band * rows : (band + 1) * rows])
        _, bucket = np.unique(key.view(np.dtype((np.void, key.shape[1] * 4))).ravel(), return_inverse=True)
        order = np.argsort(bucket, kind="stable")
        sorted_bucket = bucket[order]
        # For the document at sorted position p: how many later positions share its bucket.
        group_end = np.searchsorted(sorted_bucket, sorted_bucket, side="right")
        after = group_end - np.arange(n) - 1
        total = int(after.sum())
        if total == 0:
            continue
        first = np.repeat(np.arange(n), after)
        offset = np.arange(total) - np.repeat(np.cumsum(after) - after, after)
        second = first + 1 + offset
        i, j = order[first], order[second]
        found = np.union1d(found, np.minimum(i, j) * n + np.maximum(i, j))
    return np.stack([found // n, found % n], axis=1) if len(found) else np.empty((0, 2), np.int64)


def near_duplicate_pairs(signatures: np.ndarray, threshold: float = 0.7) -> list[tuple[int, int, float]]:
    """(i, j, estimated Jaccard) with i < j for every LSH candidate pair whose estimated Jaccard (the
    fraction of equal signature slots) is at least `threshold`. Sorted by (i, j)."""
    n, num_perm = signatures.shape
    if n < 2:
        return []
    pairs = candidate_pairs(signatures, *lsh_params(threshold, num_perm))
    sims = np.empty(len(pairs))
    for lo in range(0, len(pairs), 65536):  # bounded memory for big candidate sets
        chunk = pairs[lo : lo + 65536]
        sims[lo : lo + len(chunk)] = (signatures[chunk[:, 0]] == signatures[chunk[:, 1]]).mean(axis=1)
    keep = sims >= threshold
    return [(int(i), int(j), float(x)) for (i, j), x in zip(pairs[keep], sims[keep], strict=True)]
