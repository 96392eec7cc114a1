"""95% percentile-bootstrap intervals, seeded: of a mean, of a ratio of sums, and of paired differences.

Values are put in a canonical order before resampling, so the same tasks in another order (a published,
sorted copy) give bit-identical intervals. Paired: the same resampled task indices are used for both
systems, so the interval of adapter − base reflects only how the two differ on the same tasks (much
narrower than two independent intervals when they agree).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95


def _resample(stat: Callable[[np.ndarray], np.ndarray], n: int, seed: int, resamples: int) -> list[float]:
    """Percentile interval of `stat` (index rows → one value per row) over `resamples` bootstrap draws."""
    rng = np.random.default_rng(seed)
    values = np.empty(resamples)
    chunk = max(1, 4_000_000 // n)  # bound memory: draw index rows in chunks
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        values[start : start + rows] = stat(rng.integers(0, n, (rows, n)))
    lo, hi = np.quantile(values, [(1 - LEVEL) / 2, 1 - (1 - LEVEL) / 2])
    return [float(lo), float(hi)]


def bootstrap_ci(values: Sequence[float], seed: int = 0, resamples: int = RESAMPLES) -> list[float] | None:
    """[low, high] of a 95% bootstrap interval of the mean of `values` (None when empty)."""
    x = np.sort(np.asarray(values, dtype=float))
    if len(x) == 0:
        return None
    return _resample(lambda idx: x[idx].mean(axis=1), len(x), seed, resamples)


def ratio_ci(
    num: Sequence[float], den: Sequence[float], seed: int = 0, resamples: int = RESAMPLES
) -> list[float] | None:
    """[low, high] of a 95% bootstrap interval of sum(num) / sum(den) (e.g. nats per character)."""
    a, b = _canonical(num, den)
    if len(a) == 0:
        return None
    return _resample(lambda idx: a[idx].sum(axis=1) / b[idx].sum(axis=1), len(a), seed, resamples)


def paired_ci(
    a: Sequence[float], b: Sequence[float], seed: int = 0, resamples: int = RESAMPLES
) -> list[float] | None:
    """[low, high] of a 95% paired-bootstrap interval of mean(a - b) over the same tasks."""
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length: {len(a)} vs {len(b)}")
    return bootstrap_ci(np.asarray(a, dtype=float) - np.asarray(b, dtype=float), seed, resamples)


def paired_ratio_ci(
    num_a: Sequence[float],
    num_b: Sequence[float],
    den: Sequence[float],
    seed: int = 0,
    resamples: int = RESAMPLES,
) -> list[float] | None:
    """Paired interval of sum(num_a)/sum(den) − sum(num_b)/sum(den) on the same resampled tasks."""
    a, b, d = _canonical(num_a, num_b, den)
    if len(a) == 0:
        return None
    return _resample(
        lambda idx: (a[idx].sum(axis=1) - b[idx].sum(axis=1)) / d[idx].sum(axis=1), len(a), seed, resamples
    )


def _canonical(*columns: Sequence[float]) -> list[np.ndarray]:
    """The columns' rows sorted lexicographically (first column first), as float arrays."""
    arrays = [np.asarray(c, dtype=float) for c in columns]
    order = np.lexsort(arrays[::-1]) if len(arrays[0]) else np.arange(0)
    return [a[order] for a in arrays]


def half_width(interval: Sequence[float] | None) -> float | None:
    return None if interval is None else (interval[1] - interval[0]) / 2
