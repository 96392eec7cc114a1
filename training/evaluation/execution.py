"""Execution tasks: does a model's body for one Flyte `@task` make the example's workflows return what the
original file returns?

1. **Survey** (`survey`): every held-out Python file that defines a `@task` and a `@workflow` is a candidate.
   It is run in the sandbox (training/evaluation/sandbox.py) as `pyflyte run FILE WF` would run it locally,
   every workflow whose inputs all have defaults, twice. A candidate is excluded, with its reason, when it
   imports a module this environment lacks (`missing_dependency`), tries the network (`needs_network`) or
   a subprocess (`needs_subprocess`: shell and container tasks) or a Flyte cluster (`needs_cluster`: remote
   entities, SQL tasks, secrets), fails otherwise
   (`fails_locally`), takes longer than the budget (`too_slow`), has no workflow that runs without inputs
   (`needs_inputs`), returns something that has no comparable form (`unrepresentable_output`), or returns
   different outputs on the two runs (`non_deterministic`).
2. **Tasks** (`cut_tasks`): in each kept file, the hole is the whole body of one `@task` function (the
   signature and docstring stay in the prefix). Seeded, one task per file per round. A task whose body,
   replaced by `raise NotImplementedError`, still gives the reference outputs is `not_exercised` (the
   workflows never call it) and is not scored; the decontamination verdicts apply as elsewhere.
   A file that imports a sibling module of its project (`from workflows.example_00_intro import ...`) runs
   with that module's package from the same split beside it (`box_for`).
3. **Pass** (`run_fills`): the file with the fill in the hole, run the same way, finishes and returns
   outputs equal to the reference's for every workflow that ran. Reference and probe runs are cached by the
   file's git blob sha (and the runner's and the libraries' versions), so a rerun costs only the fills.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from flyte_llama_common.schemas import Task
from training.evaluation import metrics, sandbox
from training.evaluation.exec_files import (  # noqa: F401  (re-exported: the execution tasks' file layer)
    LIBRARIES,
    Box,
    ExecSettings,
    blob_sha,
    box_for,
    cache_root,
    environment_key,
    imported_modules,
    is_example,
    missing_modules,
    run_file,
    task_functions,
)

KIND = "task_body"
EXCLUSIONS = (
    "missing_dependency",
    "needs_network",
    "needs_subprocess",
    "needs_cluster",
    "fails_locally",
    "too_slow",
    "needs_inputs",
    "unrepresentable_output",
    "non_deterministic",
    "no_task_bodies",
)
NOT_EXERCISED = "not_exercised"


@dataclass(frozen=True)
class Verdict:
    """The survey's word on one candidate file: `reason` None = kept, with the reference `outputs`."""

    repo: str
    path: str
    reason: str | None
    detail: str = ""
    outputs: dict[str, Any] | None = None
    wall_s: float = 0.0


FAILURE_SIGNS = (
    ("needs_network", ("sandbox: socket.", "NoCredentialsError", "Connection aborted", "Received: http")),
    ("needs_subprocess", ("sandbox: subprocess", "sandbox: os.", "DockerException")),
    ("needs_cluster", ("cluster is currently unavailable", "Cannot run a SQL Task", "secret_requests")),
)


def failure_reason(error: str) -> str:
    return next((r for r, signs in FAILURE_SIGNS if any(s in error for s in signs)), "fails_locally")


def outcome(result: sandbox.RunResult) -> tuple[str | None, str, dict[str, Any] | None]:
    """(exclusion reason or None, detail, {workflow: outputs}) of a reference run."""
    if result.status == "timeout":
        return "too_slow", f"no result within {result.wall_s:.0f} s", None
    report = result.report or {}
    if result.status != "ok":
        return "fails_locally", f"{result.status}: {result.stderr_tail[-300:]}", None
    if report.get("status") == "import_error":
        return "missing_dependency", str(report.get("missing_module")), None
    runs = report.get("workflows") or {}
    outputs = {n: r["outputs"] for n, r in runs.items() if "outputs" in r}
    if outputs:
        return None, ", ".join(sorted(outputs)), outputs
    errors = [r.get("error") or "" for r in runs.values() if "error" in r]
    error = report.get("error") or next((e for e in errors if e), "")
    if error:
        return failure_reason(error), error[:300], None
    if any("unrepresentable" in r for r in runs.values()):
        return (
            "unrepresentable_output",
            next(r["unrepresentable"] for r in runs.values() if "unrepresentable" in r)[:300],
            None,
        )
    if runs:
        return "needs_inputs", ", ".join(sorted(runs)), None
    return "fails_locally", "the file defines no workflow that flytekit can find", None


def _map(fn: Callable, items: Sequence, workers: int, desc: str) -> list:
    """`fn` over `items` in threads (each waits on its own sandbox process), results in input order."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(tqdm(pool.map(fn, items), total=len(items), desc=desc, unit="run", leave=False))


def survey(records: Sequence[Mapping[str, Any]], settings: ExecSettings) -> list[Verdict]:
    """A verdict for every candidate file of `records` (the held-out split), in record order."""
    candidates = [
        r
        for r in records
        if r["language"] == "python" and r["path"].endswith(".py") and is_example(r["content"])
    ]
    contents = {(r["repo"], r["path"]): r["content"] for r in records}
    boxes = [box_for(r["repo"], r["path"], r["content"], contents) for r in candidates]
    static: dict[int, Verdict] = {}
    to_run = []
    for i, r in enumerate(candidates):
        if boxes[i].missing:
            static[i] = Verdict(r["repo"], r["path"], "missing_dependency", ", ".join(boxes[i].missing))
        elif not task_functions(r["content"]):
            static[i] = Verdict(r["repo"], r["path"], "no_task_bodies", "")
        else:
            to_run.append(i)
    # Two independent runs of each file: the second checks that the outputs are deterministic.
    jobs = [(i, run) for i in to_run for run in (1, 2)]
    results = _map(
        lambda job: run_file(boxes[job[0]], settings, cache=True, run=job[1]),
        jobs,
        settings.workers,
        "exec survey",
    )
    by_file: dict[int, list[sandbox.RunResult]] = {}
    for (i, _), result in zip(jobs, results, strict=True):
        by_file.setdefault(i, []).append(result)
    verdicts = []
    for i, r in enumerate(candidates):
        if i in static:
            verdicts.append(static[i])
            continue
        first, second = by_file[i]
        reason, detail, outputs = outcome(first)
        if reason is None and first.wall_s > settings.reference_budget_s:
            reason, detail = "too_slow", f"{first.wall_s:.1f} s > {settings.reference_budget_s:.0f} s"
        if reason is None and outcome(second)[2] != outputs:
            reason, detail = "non_deterministic", "a second run returned other outputs"
        verdicts.append(
            Verdict(r["repo"], r["path"], reason, detail, outputs if reason is None else None, first.wall_s)
        )
    return verdicts


def indent_of(middle: str) -> str:
    first = next((line for line in middle.split("\n") if line.strip()), "")
    return first[: len(first) - len(first.lstrip())]


def trivial_body(task: Task, *statements: str) -> str:
    """`statements` as the whole body, at the body's indentation (the `pass` baseline, the probe)."""
    return "".join(f"{indent_of(task.middle)}{s}\n" for s in statements)


# The probe's body raises before anything else; the unreachable `return` is there because flytekit refuses
# to load a task with an output and no return statement (the probe must fail in the body, not at load).
PROBE = ("raise NotImplementedError", "return None")


def passes(task: Task, result: sandbox.RunResult) -> tuple[bool, str]:
    """(pass, why not) of a run of the filled file against the task's reference outputs."""
    reference = json.loads(task.reference_outputs or "{}")
    if result.status != "ok":
        return False, result.status
    report = result.report or {}
    if report.get("status") != "ok":
        return False, str(report.get("status"))
    runs = report.get("workflows") or {}
    for name, expected in reference.items():
        got = runs.get(name) or {}
        if "outputs" not in got:
            return False, "error"
        if got["outputs"] != expected:
            return False, "wrong_output"
    return True, "pass"


def run_fills(
    tasks: Sequence[Task],
    contents: Mapping[tuple[str, str], str],
    fills: Sequence[str],
    settings: ExecSettings,
    desc: str,
    *,
    cache: bool = False,
) -> list[dict[str, Any]]:
    """{"pass_at_1", "exec_status", "exec_s"} of each task with its fill in the hole, in task order."""

    def one(pair: tuple[Task, str]) -> dict[str, Any]:
        task, fill = pair
        text = metrics.fill_file(contents[(task.repo, task.path)], task.span, task.middle, fill)
        result = run_file(box_for(task.repo, task.path, text, contents), settings, cache=cache)
        ok, why = passes(task, result)
        return {"pass_at_1": ok, "exec_status": why, "exec_s": result.wall_s}

    return _map(one, list(zip(tasks, fills, strict=True)), settings.workers, desc)


def cut_tasks(
    records: Sequence[Mapping[str, Any]],
    verdicts: Sequence[Verdict],
    make_task: Callable[[str, Mapping[str, Any], tuple[int, int]], Task],
    num_tasks: int,
    seed: int,
    settings: ExecSettings,
    verdict: Callable[[Task, str], str] | None = None,
) -> list[Task]:
    """Up to `num_tasks` scored tasks from the kept files (seeded, one per file per round), then the ones cut
    but not scored (contaminated or not exercised), each with its reason. `make_task(task_id, record, rows)`
    builds the prompt (training/infill.py's make_task with the evaluation's token budgets)."""
    by_key = {(r["repo"], r["path"]): r for r in records}
    files = [(v, by_key[(v.repo, v.path)]) for v in verdicts if v.reason is None]
    pools = [[(name, rows) for name, rows in task_functions(r["content"])] for _, r in files]
    rng = np.random.default_rng(seed)
    picked: list[Task] = []
    while len(picked) < num_tasks and any(pools):
        for j in rng.permutation(len(files)):
            if not pools[j] or len(picked) >= num_tasks:
                continue
            name, rows = pools[j].pop(int(rng.integers(len(pools[j]))))
            v, record = files[j]
            task = make_task(f"exec-{len(picked):04d}", record, rows)
            reason = verdict(task, record["content"]) if verdict is not None else "unchecked"
            picked.append(
                replace(
                    task,
                    function=name,
                    reference_outputs=json.dumps(v.outputs, sort_keys=True),
                    contamination=reason,
                )
            )
    contents = {(r["repo"], r["path"]): r["content"] for r in records}  # siblings too (box_for)
    probes = run_fills(
        picked,
        contents,
        [trivial_body(t, *PROBE) for t in picked],
        settings,
        "exec probe",
        cache=True,
    )
    checked = [
        replace(t, excluded=NOT_EXERCISED) if p["pass_at_1"] else t
        for t, p in zip(picked, probes, strict=True)
    ]
    scored = [t for t in checked if is_scored(t)]
    return scored + [t for t in checked if not is_scored(t)]


def is_scored(task: Task) -> bool:
    return task.excluded is None and task.contamination in ("clean", "unchecked")


def summary(records: Sequence[Mapping[str, Any]], verdicts: Sequence[Verdict], tasks: Sequence[Task]) -> dict:
    """The exclusion table: candidate files by reason, and the tasks cut, scored and set aside."""
    reasons = {r: sum(v.reason == r for v in verdicts) for r in EXCLUSIONS}
    return {
        "python_files": sum(r["language"] == "python" for r in records),
        "candidate_files": len(verdicts),
        "kept_files": sum(v.reason is None for v in verdicts),
        "excluded_files": {r: n for r, n in reasons.items() if n},
        "excluded_examples": {
            r: sorted(f"{v.repo}/{v.path}" for v in verdicts if v.reason == r)[:5]
            for r in reasons
            if reasons[r]
        },
        "tasks_cut": len(tasks),
        "tasks_scored": sum(is_scored(t) for t in tasks),
        "tasks_not_exercised": sum(t.excluded == NOT_EXERCISED for t in tasks),
        "tasks_contaminated": sum(t.contamination not in ("clean", "unchecked") for t in tasks),
    }
