"""What the model card shows of the evaluation: every system on the same tasks with 95% intervals, the paired
comparisons in plain words, the decontamination counts and the fresh slice (all from eval_results.json)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

COLUMNS = (
    ("exact_match", "exact match"),
    ("exact_match_strict", "exact match (strict)"),
    ("edit_similarity", "edit similarity"),
    ("valid_fill", "valid fill"),
    ("nats_per_char_psm", "nats/char PSM ↓"),
)
API_COLUMNS = (
    ("exact_match", "exact match"),
    ("edit_similarity", "edit similarity"),
    ("api_valid", "API valid"),
)
VERDICT_METRICS = (("exact_match", "exact match"), ("edit_similarity", "edit similarity"))
LABELS = {
    "base": "base model",
    "adapter": "**this adapter**",
    "previous_line": "baseline: repeat the previous line",
    "file_copy": "baseline: copy from the same file",
    "ngram": "baseline: 4-gram model of the train split",
    "byte_unigram": "baseline: byte frequencies of the train split",
    "byte_ngram": "baseline: byte n-gram of the train split (Witten-Bell)",
    "pass_body": "baseline: the body is `pass`",
    "reference": "the original body (harness check)",
}
EXEC_COLUMNS = (
    ("pass_at_1", "pass@1"),
    ("edit_similarity", "edit similarity"),
    ("valid_fill", "valid fill"),
)


def _value(record: Mapping[str, Any] | None, metric: str) -> str:
    if not record or record.get(metric) is None:
        return "–"
    ci = (record.get("ci95") or {}).get(metric)
    return f"{record[metric]:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{record[metric]:.3f}"


def system_rows(
    infilling: Mapping[str, Any], slice_name: str, columns: tuple = COLUMNS
) -> list[dict[str, Any]]:
    """One row per system (base, adapter, baselines) on `slice_name` ("overall" or "fresh")."""
    systems = {m: infilling[m] for m in ("base", "adapter") if m in infilling}
    systems |= dict(infilling.get("baselines") or {})
    rows = []
    for name, block in systems.items():
        record = block.get(slice_name)
        if record:
            rows.append(
                {
                    "name": LABELS.get(name, name),
                    "tasks": record["tasks"],
                    "cells": [_value(record, m) for m, _ in columns],
                }
            )
    return rows


def verdict(diff: Mapping[str, Any] | None) -> str:
    """'better', 'worse' or 'no detectable difference', from a paired 95% interval."""
    ci = (diff or {}).get("ci95")
    if not ci:
        return "not measured"
    if ci[0] > 0:
        return "better"
    if ci[1] < 0:
        return "worse"
    return "no detectable difference"


def comparison_sentences(infilling: Mapping[str, Any], metrics: tuple = VERDICT_METRICS) -> list[str]:
    """Plain-words comparisons of the adapter (or the base, when no adapter was scored) with each other
    system."""
    subject = "adapter" if "adapter" in infilling else "base"
    out = []
    for key, diff in (infilling.get("differences") or {}).items():
        first, _, other = key.partition(" - ")
        if first != subject:
            continue
        overall = diff.get("overall") or {}
        parts = []
        for metric, label in metrics:
            entry = overall.get(metric)
            if entry:
                ci = entry["ci95"]
                parts.append(
                    f"{label} {verdict(entry)} ({entry['value']:+.3f}, 95% CI [{ci[0]:+.3f}, {ci[1]:+.3f}])"
                )
        if parts:
            who = "The adapter" if subject == "adapter" else "The base model"
            out.append(
                f"{who} vs {LABELS.get(other, other)}: " + "; ".join(parts) + f" on {overall['tasks']} tasks."
            )
    return out


def infilling_view(infilling: Mapping[str, Any] | None, settings: Mapping[str, Any]) -> dict[str, Any] | None:
    """Everything the card's infilling section renders (None when no infilling was scored)."""
    if not infilling or not (infilling.get("base") or infilling.get("adapter")):
        return None
    fresh = infilling.get("fresh")
    return {
        "columns": [label for _, label in COLUMNS],
        "overall": system_rows(infilling, "overall"),
        "fresh_rows": system_rows(infilling, "fresh") if fresh else [],
        "fresh": fresh,
        "sentences": comparison_sentences(infilling),
        "decontamination": infilling.get("decontamination"),
        "bootstrap": settings.get("bootstrap"),
    }


def api_view(api: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The card's API-usage section: all systems overall, and the adapter (or base) per API family."""
    if not api or not (api.get("base") or api.get("adapter")):
        return None
    subject = "adapter" if "adapter" in api else "base"
    families = []
    for family, record in sorted((api[subject].get("by_kind") or {}).items()):
        base = ((api.get("base") or {}).get("by_kind") or {}).get(family)
        families.append(
            {
                "name": family.removeprefix("api_"),
                "tasks": record["tasks"],
                "cells": [_value(record, m) for m, _ in API_COLUMNS]
                + ([_value(base, m) for m, _ in API_COLUMNS] if subject == "adapter" else []),
            }
        )
    return {
        "columns": [label for _, label in API_COLUMNS],
        "overall": system_rows(api, "overall", API_COLUMNS),
        "families": families,
        "with_base": subject == "adapter",
        "sentences": comparison_sentences(api),
        "counted": api.get("api_valid_counted"),
        "excluded": (api.get("api_valid_excluded") or {}).get("reference_not_valid_here", 0),
        "summary": api.get("summary") or {},
    }


# The four ways to complete, cheapest first: a recommendation picks a costlier one only on evidence.
FOUR_WAYS = ("base", "base+retrieval", "adapter", "adapter+retrieval")
RETRIEVAL_LABELS = {
    "base": "base model",
    "base+retrieval": "base model + retrieval",
    "adapter": "**this adapter**",
    "adapter+retrieval": "**this adapter** + retrieval",
}
PLAIN = {
    "base": "the base model alone",
    "base+retrieval": "the base model with retrieved context (`complete --context K --index DIR`)",
    "adapter": "this adapter without retrieval",
    "adapter+retrieval": "this adapter with retrieved context (`complete --context K --index DIR`)",
}


def _beats(differences: Mapping[str, Any], a: str, b: str, metric: str) -> bool:
    """Whether the paired 95% interval says `a` scores higher than `b` on `metric` (either key order)."""
    for key, sign in ((f"{a} - {b}", 1), (f"{b} - {a}", -1)):
        entry = ((differences.get(key) or {}).get("overall") or {}).get(metric)
        if entry:
            lo, hi = entry["ci95"]
            return lo > 0 if sign == 1 else hi < 0
    return False


def recommendation(systems: list[str], differences: Mapping[str, Any], tasks: int) -> str:
    """Which combination to use, in plain words, from the paired intervals on exact match: the cheapest
    system no other one beats, and what it beats."""
    metric = "exact_match"
    unbeaten = [s for s in systems if not any(_beats(differences, o, s, metric) for o in systems if o != s)]
    choice = unbeaten[0] if unbeaten else systems[0]
    beaten = [RETRIEVAL_LABELS[o].replace("*", "") for o in systems if _beats(differences, choice, o, metric)]
    if not beaten:
        return (
            f"Use {PLAIN[choice]}: on these {tasks} held-out tasks no combination is detectably better on "
            "exact match (every paired 95% interval includes zero), so the simplest one is enough."
        )
    return (
        f"Use {PLAIN[choice]}: on these {tasks} held-out tasks its exact match is higher than that of "
        + ", ".join(beaten)
        + " (paired 95% intervals above zero), and no other combination is detectably better."
    )


def retrieval_view(block: Mapping[str, Any] | None, columns: tuple = COLUMNS[:4]) -> dict[str, Any] | None:
    """The card's four-way table (base, base + retrieval, adapter, adapter + retrieval) on the same tasks,
    the leak count, and the plain-words recommendation; None when retrieval was not scored."""
    retrieval = (block or {}).get("retrieval")
    if not retrieval:
        return None
    records = {m: block[m] for m in ("base", "adapter") if m in block}
    records |= {f"{m}+retrieval": retrieval[m] for m in ("base", "adapter") if m in retrieval}
    systems = [s for s in FOUR_WAYS if s in records]
    differences = dict(block.get("differences") or {}) | dict(retrieval.get("differences") or {})
    rows = [
        {
            "name": RETRIEVAL_LABELS[s],
            "tasks": records[s]["overall"]["tasks"],
            "cells": [_value(records[s]["overall"], m) for m, _ in columns],
        }
        for s in systems
    ]
    leaks = retrieval.get("leaks") or {}
    return {
        "columns": [label for _, label in columns],
        "rows": rows,
        "recommendation": recommendation(systems, differences, rows[0]["tasks"]),
        "leaks": leaks.get("count", 0),
        "leak_checked": leaks.get("checked", 0),
        "context": retrieval.get("context") or {},
    }


def exec_view(execution: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The card's execution section: every system's pass@1 with intervals, the outcomes, the exclusions."""
    if not execution or not (execution.get("base") or execution.get("adapter")):
        return None
    survey = execution.get("summary") or {}
    return {
        "columns": [label for _, label in EXEC_COLUMNS],
        "overall": system_rows(execution, "overall", EXEC_COLUMNS),
        "sentences": comparison_sentences(execution, (("pass_at_1", "pass@1"),)),
        "survey": survey,
        "outcomes": {LABELS.get(k, k): v for k, v in (execution.get("outcomes") or {}).items()},
        "timing": execution.get("timing") or {},
    }


def bpb_view(section: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Held-out bits per byte of every system (models and the byte-count floors) with intervals, and the
    paired differences in plain words; None when the results have no such section."""
    if not section or not section.get("systems"):
        return None
    rows = []
    for name, groups in section["systems"].items():
        rec = groups["overall"]
        ci = rec.get("ci95")
        cell = f"{rec['bits_per_byte']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
        rows.append({"name": LABELS.get(name, name), "documents": rec["documents"], "cell": cell})
    sentences = []
    for key, diff in (section.get("differences") or {}).items():
        a, b = key.split(" - ")
        ci = diff.get("ci95")
        word = "fewer" if ci and ci[1] < 0 else "more" if ci and ci[0] > 0 else None
        amount = f"{abs(diff['bits_per_byte']):.3f} bits/byte"
        span = f" (95% interval [{ci[0]:+.3f}, {ci[1]:+.3f}])" if ci else ""
        what = f"{amount} {word}" if word else f"no clear difference ({diff['bits_per_byte']:+.3f})"
        sentences.append(f"{LABELS.get(a, a)} vs {LABELS.get(b, b)}: {what}{span}")
    return {"rows": rows, "sentences": sentences}
