"""The likelihood floors (`byte_ngram.py`) applied to what `evaluate` scores: held-out bits per byte of the
test documents, and the nats per character of each infilling middle, both with 95% intervals and paired
differences against the models on the same documents and tasks (docs/EVALUATION.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from training.evaluation import intervals
from training.evaluation.byte_ngram import ByteNgram, pick_order

NAMES = ("byte_unigram", "byte_ngram")
LN2 = math.log(2)


def fit(reference: Mapping[str, Sequence[Mapping[str, Any]]], max_bytes: int) -> tuple[Any, dict[str, Any]]:
    """(the byte n-gram of the train split with its order picked on validation, what it was fit on), or
    (None, {}) without a train split. Every language is counted: the test documents are all languages."""
    train = [r["content"] for r in reference.get("train") or []]
    if not train:
        return None, {}
    model = ByteNgram.train(train, order=8, max_bytes=max_bytes)
    validation = [r["content"] for r in reference.get("validation") or []]
    order, scores = pick_order(model, validation) if validation else (model.order, {})
    info = {
        "byte_ngram_order": order,
        "byte_ngram_train_bytes": model.train_bytes,
        "byte_ngram_validation_bits_per_byte": {str(k): round(v, 4) for k, v in scores.items()},
        "byte_ngram_order_picked_on": "validation" if validation else "none (no validation split)",
    }
    return (model, order), info


def _per_system(fitted: Any, texts: Sequence[str], score_from: Sequence[int] | None = None) -> dict:
    model, order = fitted
    nats = model.nats_by_order(texts, score_from)
    return {"byte_unigram": nats[0].tolist(), "byte_ngram": nats[order - 1].tolist()}


def middle_rows(fitted: Any, tasks: Sequence) -> dict[str, list[dict[str, Any]]]:
    """{baseline: per-task rows carrying nll_psm/nll_spm (the same nats: a left-to-right count sees only the
    prefix) and chars}, the keys `scoring.metrics_of` reads for nats per char."""
    texts = [t.prefix + t.middle for t in tasks]
    starts = [len(t.prefix.encode("utf-8")) for t in tasks]
    out = {}
    for name, nats in _per_system(fitted, texts, starts).items():
        out[name] = [
            {"task_id": t.task_id, "nll_psm": n, "nll_spm": n, "chars": len(t.middle)}
            for t, n in zip(tasks, nats, strict=True)
        ]
    return out


def _block(nats: Sequence[float], sizes: Sequence[int], indices: list[int], seed: int) -> dict[str, Any]:
    a = [nats[i] / LN2 for i in indices]
    b = [sizes[i] for i in indices]
    return {
        "bits_per_byte": math.fsum(a) / max(math.fsum(b), 1),
        "documents": len(indices),
        "ci95": intervals.ratio_ci(a, b, seed),
    }


def bits_per_byte_section(
    model_nats: Mapping[str, Sequence[float]],
    fitted: Any,
    records: Sequence[Mapping[str, Any]],
    seed: int,
) -> dict[str, Any]:
    """§4 `held_out_bits_per_byte`: every system's bits per byte (overall and by repo, documents resampled
    for the interval), the baselines', and paired differences (model − base, model − each baseline)."""
    texts = [r["content"] for r in records]
    sizes = [len(t.encode("utf-8")) for t in texts]
    systems = dict(model_nats)
    if fitted is not None:
        systems.update(_per_system(fitted, texts))
    groups: dict[str, list[int]] = {"overall": list(range(len(records)))}
    for i, r in enumerate(records):
        groups.setdefault(f"repo:{r['repo']}", []).append(i)
    out: dict[str, Any] = {
        "systems": {
            name: {group: _block(nats, sizes, idx, seed) for group, idx in groups.items()}
            for name, nats in systems.items()
        }
    }
    models = [m for m in ("adapter", "base") if m in model_nats]
    pairs = [("adapter", "base")] if len(models) == 2 else []
    pairs += [(m, b) for m in models for b in systems if b not in ("adapter", "base")]
    diffs = {}
    for a, b in pairs:
        na = [x / LN2 for x in systems[a]]
        nb = [x / LN2 for x in systems[b]]
        value = (math.fsum(na) - math.fsum(nb)) / max(sum(sizes), 1)
        diffs[f"{a} - {b}"] = {
            "bits_per_byte": value,
            "ci95": intervals.paired_ratio_ci(na, nb, sizes, seed),
        }
    out["differences"] = diffs
    return out
