"""Per-task scores and their aggregation: means with 95% bootstrap intervals, by slice, and paired
differences between two systems scored on the same tasks (docs/EVALUATION.md defines every number).

A *system* is anything that writes a middle for every task: the base, the adapter, or a trivial baseline.
Rows are plain dicts (one per task, in task order) so the same code scores all of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from training.evaluation import intervals, metrics

FILL_METRICS = ("exact_match", "exact_match_strict", "edit_similarity", "valid_fill")
# Reported only by the benchmarks whose rows carry them (API-usage tasks; execution tasks).
OPTIONAL_METRICS = ("api_valid", "pass_at_1")
# (reported name, per-task numerator key, per-task denominator key)
LIKELIHOOD_METRICS = tuple(
    (f"nats_per_{unit}_{mode}", f"nll_{mode}", f"{unit}s_{mode}" if unit == "token" else "chars")
    for mode in ("psm", "spm")
    for unit in ("char", "token")
)


def score_row(task, content: str, prediction: str, parses: Callable[[str, str], bool]) -> dict[str, Any]:
    """Every fill metric of one prediction (valid_fill is None for non-Python tasks)."""
    fill = metrics.effective_fill(prediction, task.kind)
    return {
        "task_id": task.task_id,
        "prediction": prediction,
        "exact_match": metrics.exact_match(prediction, task.middle, task.kind),
        "exact_match_strict": metrics.exact_match_strict(prediction, task.middle),
        "edit_similarity": metrics.edit_similarity(prediction, task.middle),
        "valid_fill": metrics.valid_fill(task.language, content, task.span, task.middle, fill, parses),
    }


def add_likelihood(rows: list[dict[str, Any]], mode: str, nll: Sequence[tuple[float, int, int]]) -> None:
    """Attach teacher-forced (nats, tokens, chars) of `mode` to each row (in place)."""
    for row, (nats, tokens, chars) in zip(rows, nll, strict=True):
        row[f"nll_{mode}"], row[f"tokens_{mode}"], row["chars"] = nats, tokens, chars


def _mean(values: list[float]) -> float:
    # fsum is exactly rounded: the same tasks in another order give bit-identical results.
    return math.fsum(values) / len(values)


def metrics_of(rows: Sequence[Mapping[str, Any]], indices: list[int], seed: int) -> dict[str, Any]:
    """Means (and ratio-of-sums likelihoods) of the rows at `indices`, each with its 95% interval."""
    out: dict[str, Any] = {"tasks": len(indices)}
    ci: dict[str, Any] = {}
    present = [m for m in OPTIONAL_METRICS if any(m in rows[i] for i in indices)]
    for name in (*FILL_METRICS, *present):
        values = [float(rows[i][name]) for i in indices if rows[i].get(name) is not None]
        out[name] = _mean(values) if values else None
        ci[name] = intervals.bootstrap_ci(values, seed) if values else None
    for name, num, den in LIKELIHOOD_METRICS:  # a byte-count baseline has nats per char, not per token
        if indices and all(num in rows[i] and den in rows[i] for i in indices):
            a = [rows[i][num] for i in indices]
            b = [rows[i][den] for i in indices]
            out[name] = math.fsum(a) / math.fsum(b)
            ci[name] = intervals.ratio_ci(a, b, seed)
    out["ci95"] = ci
    return out


def slices(tasks: Sequence, fresh: Sequence[bool | None] | None = None) -> dict[str, dict[str, list[int]]]:
    """{group: {slice: task indices}}: overall, by_kind, by_language and (when known) fresh."""
    groups: dict[str, dict[str, list[int]]] = {"overall": {"overall": list(range(len(tasks)))}}
    for group, key in (("by_kind", "kind"), ("by_language", "language")):
        members: dict[str, list[int]] = {}
        for i, task in enumerate(tasks):
            members.setdefault(getattr(task, key), []).append(i)
        groups[group] = dict(sorted(members.items()))
    if fresh is not None and any(f is not None for f in fresh):
        groups["fresh"] = {"fresh": [i for i, f in enumerate(fresh) if f]}
    return groups


def aggregate(
    tasks: Sequence, rows: Sequence[Mapping[str, Any]], seed: int = 0, fresh: Sequence | None = None
) -> dict[str, Any]:
    """The §4 infilling block of one system: overall, by_kind, by_language[, fresh] with intervals."""
    block: dict[str, Any] = {}
    for group, members in slices(tasks, fresh).items():
        scored = {name: metrics_of(rows, idx, seed) for name, idx in members.items() if idx}
        if group in ("overall", "fresh"):
            if name_block := scored.get(group):
                block[group] = name_block
        else:
            block[group] = scored
    return block


def paired_difference(
    tasks: Sequence,
    a: Sequence[Mapping[str, Any]],
    b: Sequence[Mapping[str, Any]],
    seed: int = 0,
    fresh: Sequence | None = None,
) -> dict[str, Any]:
    """mean(a) − mean(b) per metric with a paired 95% interval, overall and on the fresh slice."""
    out: dict[str, Any] = {}
    groups = slices(tasks, fresh)
    for group in ("overall", "fresh"):
        idx = groups.get(group, {}).get(group) or []
        if not idx:
            continue
        diff: dict[str, Any] = {"tasks": len(idx)}
        present = [m for m in OPTIONAL_METRICS if any(m in a[i] for i in idx)]
        for name in (*FILL_METRICS, *present):
            pairs = [
                (a[i][name], b[i][name])
                for i in idx
                if a[i].get(name) is not None and b[i].get(name) is not None
            ]
            if pairs:
                xa, xb = [float(p[0]) for p in pairs], [float(p[1]) for p in pairs]
                diff[name] = {"value": _mean(xa) - _mean(xb), "ci95": intervals.paired_ci(xa, xb, seed)}
        for name, num, den in LIKELIHOOD_METRICS:
            if all(num in a[i] and num in b[i] and den in a[i] and den in b[i] for i in idx):
                na, nb, d = ([r[i][k] for i in idx] for r, k in ((a, num), (b, num), (a, den)))
                value = (math.fsum(na) - math.fsum(nb)) / math.fsum(d)
                diff[name] = {"value": value, "ci95": intervals.paired_ratio_ci(na, nb, d, seed)}
        out[group] = diff
    return out
