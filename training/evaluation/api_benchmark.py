"""The API-usage benchmark (training/evaluation/api_usage.py) run by `evaluate`: cut the tasks, score base and
adapter and the trivial baselines on them, with the same metrics, intervals and paired differences as the
infilling benchmark plus `api_valid`, reported per API family (`by_kind`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from training import infill
from training.evaluation import api_usage, decontam, suite

TASKS_FILE = "api_usage_tasks.jsonl"


def cut_tasks(records: Sequence[Mapping[str, Any]], tokenizer, config, verdict: Callable | None) -> list:
    """The API-usage tasks of the split (clean ones first, then the dropped), or [] when it has no sites."""
    try:
        return infill.extract_tasks(
            records,
            tokenizer,
            num_tasks=config.api_tasks,
            seed=config.infill_seed,
            prefix_tokens=config.prefix_tokens,
            suffix_tokens=config.suffix_tokens,
            verdict=verdict,
            holes_of=api_usage.api_holes,
            kinds=api_usage.FAMILIES,
            languages=("python",),
        )
    except ValueError:
        return []


def score(
    passes: Callable[[], list],
    model,
    tokenizer,
    tasks: Sequence,
    contents: Mapping[tuple[str, str], str],
    config,
    ngram,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the results' `api_usage` block, per-task outputs) for `tasks` (every one of them scored)."""
    counted = suite.reference_api_valid(tasks, contents)
    fresh = [t.fresh for t in tasks] if any(t.fresh is not None for t in tasks) else None
    systems: dict[str, list[dict[str, Any]]] = {}
    block: dict[str, Any] = {"tasks_file": TASKS_FILE}
    outputs: list[dict[str, Any]] = []
    for name, ctx in passes():
        with ctx:
            predictions = infill.generate_middles(
                model,
                tokenizer,
                tasks,
                config.max_new_tokens,
                config.batch_size,
                f"api {name}",
                config.infill_mode,
            )
        rows = infill.score_tasks(tasks, predictions, contents)
        suite.add_api_validity(tasks, rows, contents, counted)
        systems[name] = rows
        block[name] = infill.aggregate(tasks, rows, config.bootstrap_seed, fresh)
        outputs += [{"model": name, "benchmark": "api_usage", **row} for row in rows]
    if config.baselines:
        rows_by = suite.baseline_rows(tasks, contents, ngram, infill.filled_file_parses_fn())
        for rows in rows_by.values():
            suite.add_api_validity(tasks, rows, contents, counted)
        block["baselines"] = {
            n: infill.aggregate(tasks, r, config.bootstrap_seed, fresh) for n, r in rows_by.items()
        }
        systems.update(rows_by)
    block["differences"] = suite.comparisons(tasks, systems, config.bootstrap_seed, fresh)
    block["api_valid_counted"] = sum(counted)
    block["api_valid_excluded"] = {"reference_not_valid_here": len(tasks) - sum(counted)}
    return block, outputs


def summary(all_tasks: Sequence) -> dict[str, Any]:
    """Counts of the cut tasks by family and contamination verdict."""
    return {
        "cut": len(all_tasks),
        "by_family": dict(
            sorted(Counter(t.kind for t in all_tasks if t.contamination in ("clean", "unchecked")).items())
        ),
        "dropped": {r: sum(t.contamination == r for t in all_tasks) for r in decontam.REASONS},
    }
