"""The infilling benchmark's task: one definition for the code that cuts and scores tasks (training) and
the code that publishes them as the dataset's `infilling` config (dataset_builder).

The Parquet column order is the published one (`TASK_COLUMNS`); `Task`'s fields are the same names (in the
order of the tasks JSONL files), so `task_arrow_schema()` and `Task.from_row` can never disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

# (column, kind) in published order; "str" → string, "pair" → list<int64> of two numbers.
TASK_COLUMNS: tuple[tuple[str, str], ...] = (
    ("task_id", "str"),
    ("repo", "str"),
    ("path", "str"),
    ("language", "str"),
    ("kind", "str"),
    ("prefix", "str"),
    ("middle", "str"),
    ("suffix", "str"),
    ("lines", "pair"),  # 1-based first and last line of the middle
    ("span", "pair"),  # the middle's character range in the file
    ("window", "pair"),  # the character range prefix + middle + suffix cover after trimming
    # Evaluation verdicts (training/evaluation): "clean" or why the task occurs in train/validation; the
    # first and last author date of the middle's lines (git blame) and whether all are after the cutoff.
    ("contamination", "str"),
    ("authored_first", "optstr"),
    ("authored_last", "optstr"),
    ("fresh", "optbool"),
    # Execution tasks only (training/evaluation/execution.py), null elsewhere: the `@task` function whose body
    # is the hole, the canonical outputs of the original file's workflows (JSON), and why a cut task is not
    # scored (e.g. "not_exercised": the workflows give the same outputs when the body only raises).
    ("function", "optstr"),
    ("reference_outputs", "optstr"),
    ("excluded", "optstr"),
)
# Columns a tasks file written before the verdicts existed may lack, with the value they then take.
OPTIONAL_DEFAULTS: dict[str, Any] = {
    "contamination": "unchecked",
    "authored_first": None,
    "authored_last": None,
    "fresh": None,
    "function": None,
    "reference_outputs": None,
    "excluded": None,
}
TASK_NAMES = tuple(name for name, _ in TASK_COLUMNS)


@dataclass(frozen=True)
class Task:
    """One hole. `lines` are the middle's 1-based first/last line; `span` its character range in the
    original file; `window` the character range prefix + middle + suffix cover after trimming."""

    task_id: str
    repo: str
    path: str
    language: str
    kind: str
    prefix: str
    suffix: str  # before `middle`, as the tasks files have always been written (JSONL key order)
    middle: str
    lines: tuple[int, int]
    span: tuple[int, int]
    window: tuple[int, int]
    contamination: str = "unchecked"
    authored_first: str | None = None
    authored_last: str | None = None
    fresh: bool | None = None
    function: str | None = None
    reference_outputs: str | None = None
    excluded: str | None = None

    def to_row(self) -> dict[str, Any]:
        """The task as a JSON/Parquet row, columns in published order."""
        return {name: list(v) if isinstance(v := getattr(self, name), tuple) else v for name in TASK_NAMES}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Task:
        """A task from a row that has every column (extra keys are ignored)."""
        kinds = dict(TASK_COLUMNS)
        values = {n: row.get(n, OPTIONAL_DEFAULTS.get(n)) for n in TASK_NAMES}
        return cls(**{n: tuple(int(x) for x in v) if kinds[n] == "pair" else v for n, v in values.items()})


def task_arrow_schema():
    """The Parquet schema of the `infilling` config (pyarrow is imported only when asked)."""
    import pyarrow as pa

    types = {"str": pa.string(), "pair": pa.list_(pa.int64()), "optstr": pa.string(), "optbool": pa.bool_()}
    return pa.schema([(name, types[kind]) for name, kind in TASK_COLUMNS])


class InfillingConfigError(ValueError):
    """The tasks cannot be added to this folder; the message says why and what to do."""


def read_task_rows(path: str | Path) -> list[dict[str, Any]]:
    """The rows of an infilling_tasks.jsonl file, checked for the columns of TASK_COLUMNS."""
    rows = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise InfillingConfigError(f"{path}:{n}: not JSON ({err})") from None
        missing = [c for c in TASK_NAMES if c not in row and c not in OPTIONAL_DEFAULTS]
        if missing:
            raise InfillingConfigError(f"{path}:{n}: task lacks {missing}; is this an infilling_tasks.jsonl?")
        rows.append({c: row.get(c, OPTIONAL_DEFAULTS.get(c)) for c in TASK_NAMES})
    if not rows:
        raise InfillingConfigError(f"{path} has no tasks")
    return rows


def tasks_file_beside(eval_results_path: str | Path, results: dict[str, Any]) -> Path | None:
    """The tasks file eval_results.json names (None: no infilling ran). It must be a file in the results'
    own folder: an absolute name, a `..`, or a link leading out would publish some other file as the
    benchmark, so each is refused with the reason."""
    infilling = results.get("infilling")
    if infilling is None:
        return None
    name = infilling.get("tasks_file") if isinstance(infilling, dict) else None
    if not name:
        return None
    folder = Path(eval_results_path).parent
    where = f"{eval_results_path}: infilling.tasks_file"
    fix = "it must name a file beside eval_results.json, e.g. infilling_tasks.jsonl"
    if not isinstance(name, str) or "\0" in name:
        raise InfillingConfigError(f"{where} is not a file name: {fix}")
    if Path(name).is_absolute() or name.startswith("~") or ".." in Path(name).parts:
        raise InfillingConfigError(f"{where} is {name!r}, outside the results' folder: {fix}")
    path = folder / name
    if not path.resolve().is_relative_to(folder.resolve()):
        raise InfillingConfigError(f"{where}: {path} is a link leading out of {folder}: {fix}")
    if not path.is_file():
        raise InfillingConfigError(f"{where} names {name} but {path} is not a file: {fix}")
    return path


# Import-time guard: a field added to one and not the other fails at once, not in a published shard.
assert sorted(f.name for f in fields(Task)) == sorted(TASK_NAMES), "Task fields and TASK_COLUMNS disagree"
