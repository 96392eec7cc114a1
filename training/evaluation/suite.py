"""What `evaluate` adds around the models: the decontamination index, task verdicts, authored dates and the
fresh slice, the trivial baselines, and the paired comparisons. Each piece is a function of plain data so
`training/evaluate.py` stays a sequence of calls (and each piece has its own tests).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from training.evaluation import api_usage, baselines, decontam, freshness, intervals, metrics, scoring

REFERENCE_SPLITS = ("train", "validation")
BASELINE_LANGUAGES = ("python", "go")
NARROW_ENOUGH = 0.05  # a fresh slice whose exact-match interval is wider than ±5 points is "too small"
MIN_FOR_NARROW = 385  # tasks a ±5-point 95% interval needs at worst: (1.96 / 0.05)² × 0.25


def reference_texts(splits: Mapping[str, Any]) -> dict[str, list[Mapping[str, Any]]]:
    """{split: rows with content and language} of the splits tasks must not occur in (those present), from
    the DatasetDict evaluation already loaded."""
    return {
        split: splits[split].select_columns(["content", "language"]).to_list()
        for split in REFERENCE_SPLITS
        if split in splits
    }


def verdict_fn(index: decontam.LineIndex, k: int, min_chars: int):
    """The `extract_tasks(verdict=...)` callback of this index."""

    def check(task, content: str) -> str:
        return decontam.verdict(index, content, task.span, task.middle, k, min_chars)

    return check


def decontamination_summary(
    tasks: Sequence, index: decontam.LineIndex, test_texts: Sequence[str], k: int, min_chars: int
) -> dict[str, Any]:
    """Counts of kept and dropped tasks (by reason) and the test lines found verbatim in train."""
    reasons = Counter(t.contamination for t in tasks)
    return {
        "checked": len(tasks),
        "kept": reasons.get(decontam.CLEAN, 0),
        "dropped": {r: reasons.get(r, 0) for r in decontam.REASONS},
        "context_lines": k,
        "min_middle_chars": min_chars,
        "against": list(REFERENCE_SPLITS),
        "test_line_overlap": decontam.line_overlap(index, test_texts),
    }


def manifest_commits(dataset: str, revision: str | None) -> dict[str, str]:
    """{repo name: pinned commit} from the dataset's manifest.json (a local folder or a Hub dataset)."""
    path = Path(dataset).expanduser() / "manifest.json"
    if not path.is_file():
        from huggingface_hub import hf_hub_download

        path = Path(hf_hub_download(dataset, "manifest.json", repo_type="dataset", revision=revision))
    manifest = json.loads(path.read_text(encoding="utf-8"))
    return {s["name"]: s["commit_sha"] for s in manifest.get("sources") or []}


def with_freshness(
    tasks: Sequence, dataset: str, revision: str | None, git_dirs: str, cutoff: str
) -> tuple[list, dict[str, Any]]:
    """Tasks with authored dates and the fresh flag from `git blame`, and a summary of the slice."""
    commits = manifest_commits(dataset, revision)
    undated: list[str] = []
    dates = freshness.authored_ranges(tasks, commits, Path(git_dirs).expanduser(), undated)
    dated = []
    for t in tasks:
        d = dates.get(t.task_id)
        first, last = d if d else (None, None)
        dated.append(
            replace(t, authored_first=first, authored_last=last, fresh=freshness.is_fresh(d, cutoff))
        )
    summary = fresh_summary(dated, cutoff)
    summary["undated_files"] = len(undated)
    summary["undated_example"] = undated[0][:300] if undated else None
    return dated, summary


def fresh_summary(tasks: Sequence, cutoff: str) -> dict[str, Any]:
    """The fresh slice of tasks that carry their flags (cut here, or published with them)."""
    clean = [t for t in tasks if t.contamination in (decontam.CLEAN, "unchecked")]
    return {
        "cutoff": cutoff,
        "cutoff_source": freshness.CUTOFF_SOURCE,
        "tasks": sum(bool(t.fresh) for t in clean),
        "dated": sum(t.fresh is not None for t in clean),
        "of": len(clean),
        "repos_without_history": sorted({t.repo for t in clean if t.fresh is None}),
    }


def fresh_note(summary: Mapping[str, Any], block: Mapping[str, Any] | None) -> str | None:
    """Plain words when the fresh slice is too small to say anything at ±5 points: fewer tasks than a
    worst-case (p = 0.5) binomial interval needs (385), or a bootstrap interval wider than that. A slice
    where every system scores 0 has a zero-width bootstrap interval, hence the count rule too."""
    fresh = (block or {}).get("fresh")
    ci = ((fresh or {}).get("ci95") or {}).get("exact_match")
    width = intervals.half_width(ci)
    count = summary.get("tasks", 0)
    if fresh is None or width is None or width > NARROW_ENOUGH or count < MIN_FOR_NARROW:
        return (
            f"the fresh slice has {count} tasks: too few for an interval narrower than ±5 points "
            f"(that needs about {MIN_FOR_NARROW}); its numbers are reported but support no claim"
        )
    return None


def train_ngram(train_rows: Sequence[Mapping[str, Any]] | None, max_tokens: int):
    """(the n-gram baseline over the train split's Python and Go, what it was trained on) or (None, {})."""
    if not train_rows:
        return None, {}
    texts = [r["content"] for r in train_rows if r["language"] in BASELINE_LANGUAGES]
    ngram = baselines.NgramModel.train(texts, max_tokens=max_tokens)
    return ngram, {"ngram_order": baselines.ORDER, "ngram_train_tokens": ngram.tokens}


def baseline_rows(
    tasks: Sequence, contents: Mapping[tuple[str, str], str], ngram, parses
) -> dict[str, list[dict[str, Any]]]:
    """{baseline: per-task score rows} (ngram only when a model is given)."""
    out = {}
    for name, predictions in baselines.predictions(tasks, ngram).items():
        out[name] = [
            scoring.score_row(t, contents[(t.repo, t.path)], p, parses)
            for t, p in zip(tasks, predictions, strict=True)
        ]
    return out


def reference_api_valid(tasks: Sequence, contents: Mapping[tuple[str, str], str]) -> list[bool]:
    """Whether each API task's own reference line is API-valid here (the tasks its metric counts)."""
    return [
        api_usage.api_valid(contents[(t.repo, t.path)], t.span, t.middle, t.middle, t.lines[0] - 1)
        for t in tasks
    ]


def add_api_validity(
    tasks: Sequence,
    rows: list[dict[str, Any]],
    contents: Mapping[tuple[str, str], str],
    counted: Sequence[bool],
) -> None:
    """Attach `api_valid` (None where the reference itself is not valid here) to each row, in place."""
    for t, row, ok in zip(tasks, rows, counted, strict=True):
        fill = metrics.effective_fill(row["prediction"], t.kind)
        content = contents[(t.repo, t.path)]
        row["api_valid"] = (
            api_usage.api_valid(content, t.span, t.middle, fill, t.lines[0] - 1) if ok else None
        )


def comparisons(
    tasks: Sequence,
    systems: Mapping[str, Sequence[Mapping[str, Any]]],
    seed: int,
    fresh: Sequence | None,
) -> dict[str, Any]:
    """Paired differences: adapter − base, and each model − each baseline ("A - B" keys)."""
    models = [m for m in ("adapter", "base") if m in systems]
    others = [s for s in systems if s not in ("adapter", "base")]
    pairs = [("adapter", "base")] if len(models) == 2 else []
    pairs += [(m, b) for m in models for b in others]
    return {
        f"{a} - {b}": scoring.paired_difference(tasks, systems[a], systems[b], seed, fresh) for a, b in pairs
    }
