"""The execution benchmark (training/evaluation/execution.py) run by `evaluate`: survey the held-out examples,
cut `@task`-body tasks, and score base, adapter and two fixed systems on whether the filled file's workflows
return the original outputs (pass@1, greedy), with the infilling metrics, intervals and paired differences.

The fixed systems bracket the scale: `pass_body` (the body is `pass`) is the floor a model must beat (it
passes tasks that return nothing and whose effects the outputs do not show; one that passes with a body
that only raises is set aside as not exercised); `reference` (the original body, run through the same
fill-and-run path) must pass every task, or the harness is broken.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flyte_llama_common.schemas import Task
from training import infill
from training.evaluation import execution, suite

TASKS_FILE = "execution_tasks.jsonl"
FIXED_SYSTEMS = ("pass_body", "reference")


def settings_of(config) -> execution.ExecSettings:
    """The harness settings of an EvalConfig."""
    return execution.ExecSettings(
        reference_budget_s=float(config.exec_reference_budget),
        timeout_s=float(config.exec_timeout),
        memory_mb=config.exec_memory_mb,
        **({"workers": config.exec_workers} if config.exec_workers else {}),
    )


def cut_tasks(
    records: Sequence[Mapping[str, Any]], tokenizer, config, verdict: Callable | None
) -> tuple[list[Task], dict[str, Any]]:
    """(the execution tasks, scored ones first; the survey's exclusion table)."""
    settings = settings_of(config)
    started = time.monotonic()
    verdicts = execution.survey(records, settings)

    def make(task_id: str, record: Mapping[str, Any], rows: tuple[int, int]) -> Task:
        return infill.make_task(
            task_id, record, execution.KIND, rows, tokenizer, config.prefix_tokens, config.suffix_tokens
        )

    tasks = execution.cut_tasks(
        records, verdicts, make, config.exec_tasks, config.infill_seed, settings, verdict
    )
    summary = execution.summary(records, verdicts, tasks)
    summary["survey_s"] = round(time.monotonic() - started, 1)
    return tasks, summary


def _with_runs(rows: list[dict[str, Any]], runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    for row, run in zip(rows, runs, strict=True):
        row.update(run)
    return rows


def score(
    passes: Callable[[], list],
    model,
    tokenizer,
    tasks: Sequence[Task],
    contents: Mapping[tuple[str, str], str],
    config,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the results' `execution` block, per-task outputs) for the scored `tasks`."""
    settings = settings_of(config)
    fresh = [t.fresh for t in tasks] if any(t.fresh is not None for t in tasks) else None
    systems: dict[str, list[dict[str, Any]]] = {}
    outputs: list[dict[str, Any]] = []
    started = time.monotonic()
    for name, ctx in passes():
        with ctx:
            fills = infill.generate_middles(
                model,
                tokenizer,
                tasks,
                config.exec_max_new_tokens,
                config.batch_size,
                f"exec {name}",
                config.infill_mode,
            )
        rows = infill.score_tasks(tasks, fills, contents)
        systems[name] = _with_runs(rows, execution.run_fills(tasks, contents, fills, settings, f"run {name}"))
    fixed = {
        "pass_body": [execution.trivial_body(t, "pass") for t in tasks],
        "reference": [t.middle for t in tasks],
    }
    for name, fills in fixed.items():
        rows = infill.score_tasks(tasks, fills, contents)
        runs = execution.run_fills(tasks, contents, fills, settings, f"run {name}", cache=True)
        systems[name] = _with_runs(rows, runs)
    block: dict[str, Any] = {"tasks_file": TASKS_FILE}
    for name, rows in systems.items():
        target = block.setdefault("baselines", {}) if name in FIXED_SYSTEMS else block
        target[name] = infill.aggregate(tasks, rows, config.bootstrap_seed, fresh)
        outputs += [{"model": name, "benchmark": "execution", **row} for row in rows]
    block["differences"] = suite.comparisons(tasks, systems, config.bootstrap_seed, fresh)
    block["outcomes"] = {
        n: dict(sorted(Counter(r["exec_status"] for r in rows).items())) for n, rows in systems.items()
    }
    runs = [r["exec_s"] for rows in systems.values() for r in rows]
    block["timing"] = {
        "runs": len(runs),
        "mean_run_s": round(sum(runs) / len(runs), 3) if runs else None,
        "scoring_s": round(time.monotonic() - started, 1),
        "workers": settings.workers,
    }
    return block, outputs


def score_retrieval(
    passes: Callable[[], list],
    model,
    tokenizer,
    tasks: Sequence[Task],
    contents: Mapping[tuple[str, str], str],
    config,
    retriever,
    plain: Mapping[str, Sequence[Mapping[str, Any]]],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The `execution.retrieval` block: base and adapter with retrieved train chunks in the prompt, each fill
    run like the plain systems' (training/evaluation/retrieval_benchmark.py builds the prompts)."""
    from training.evaluation import retrieval_benchmark

    settings = settings_of(config)
    fresh = [t.fresh for t in tasks] if any(t.fresh is not None for t in tasks) else None

    def add_runs(rows: list[dict[str, Any]], fills: list[str], name: str) -> None:
        _with_runs(rows, execution.run_fills(tasks, contents, fills, settings, f"run {name}"))

    return retrieval_benchmark.score(
        passes, model, tokenizer, tasks, contents, config, retriever, plain, fresh,
        benchmark="execution", max_new_tokens=config.exec_max_new_tokens, add_scores=add_runs,
    )  # fmt: skip
