"""The infilling benchmark's task: one definition for the code that cuts and scores tasks (training) and
the code that publishes them as the dataset's `infilling` config (dataset_builder).

The Parquet column order is the published one (`TASK_COLUMNS`); `Task`'s fields are the same names (in the
order of the tasks JSONL files), so `task_arrow_schema()` and `Task.from_row` can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
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
)
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

    def to_row(self) -> dict[str, Any]:
        """The task as a JSON/Parquet row, columns in published order."""
        return {name: list(v) if isinstance(v := getattr(self, name), tuple) else v for name in TASK_NAMES}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Task:
        """A task from a row that has every column (extra keys are ignored)."""
        kinds = dict(TASK_COLUMNS)
        return cls(**{n: tuple(int(x) for x in row[n]) if kinds[n] == "pair" else row[n] for n in TASK_NAMES})


def task_arrow_schema():
    """The Parquet schema of the `infilling` config (pyarrow is imported only when asked)."""
    import pyarrow as pa

    types = {"str": pa.string(), "pair": pa.list_(pa.int64())}
    return pa.schema([(name, types[kind]) for name, kind in TASK_COLUMNS])


# Import-time guard: a field added to one and not the other fails at once, not in a published shard.
assert sorted(f.name for f in fields(Task)) == sorted(TASK_NAMES), "Task fields and TASK_COLUMNS disagree"
