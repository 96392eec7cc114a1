"""API-usage tasks: sites found in a flytekit file, and API validity checked against installed flytekit."""

from __future__ import annotations

import pytest

from flyte_llama_common.schemas import Task
from training.evaluation import api_usage, suite

WF = """from flytekit import Resources, task, workflow
import flytekit as fk


@task(requests=Resources(cpu="1", mem="1Gi"), retries=2)
def double(x: int) -> int:
    limits = Resources(cpu="2")
    return x * 2


@workflow
def wf(x: int = 3) -> int:
    fk.current_context()
    return double(x=x)
"""
LINES = WF.split("\n")


def row_of(text: str) -> int:
    return next(i for i, line in enumerate(LINES) if line.strip().startswith(text))


def fill(row: int, line: str) -> str:
    return "\n".join([*LINES[:row], line, *LINES[row + 1 :]])


def test_sites_by_family():
    sites = api_usage.api_sites(WF)
    assert sites["api_import"] == [(0, 0), (1, 1)]
    assert sites["api_decorator"] == [(row_of("@task"),) * 2, (row_of("@workflow"),) * 2]
    # `double(x=x)` calls a task of this file, not a flytekit name: not an API site.
    assert sites["api_call"] == [(row_of("limits ="),) * 2, (row_of("fk.current_context"),) * 2]
    assert api_usage.api_sites("def broken(:\n") == {f: [] for f in api_usage.FAMILIES}


@pytest.mark.parametrize(
    ("row_text", "line", "valid"),
    [
        ("from flytekit", "from flytekit import Resources, task, workflow", True),
        ("from flytekit", "from flytekit import Resources, taskk, workflow", False),  # no such name
        ("import flytekit", "import flytekit as fk", True),
        ("@task", '@task(requests=Resources(cpu="1", mem="1Gi"), retries=2)', True),
        ("@task", '@task(requests=Resources(cpuu="1"))', False),  # Resources has no `cpuu`
        ("@task", '@task(requests=Resources("1", "1Gi", "0", "1", "extra"))', False),  # too many arguments
        ("limits =", '    limits = Resources(cpu="2", mem="4Gi")', True),
        ("limits =", "    limits = fk.NoSuchThing()", False),
        ("limits =", "    pass", False),  # references no flytekit name: not an API answer
        ("limits =", "", False),
    ],
)
def test_line_validity(row_text, line, valid):
    row = row_of(row_text)
    assert api_usage.line_validity(fill(row, line), row) is valid


def test_reference_must_be_valid_here_to_count():
    text = "from flytekitplugins.surely_not_installed import Thing\n\n\nThing()\n"
    assert api_usage.line_validity(text, 0) is False
    lo = 0
    hi = text.index("\n") + 1
    t = Task(
        "t", "r", "a.py", "python", "api_import", "", text[hi:], text[:hi], (1, 1), (lo, hi), (0, len(text))
    )
    contents = {("r", "a.py"): text}
    assert suite.reference_api_valid([t], contents) == [False]
    rows = [{"prediction": text[:hi]}]
    suite.add_api_validity([t], rows, contents, [False])
    assert rows[0]["api_valid"] is None  # not counted: the checker cannot tell here


def test_the_reference_itself_scores_valid_on_every_counted_site():
    contents = {("r", "wf.py"): WF}
    starts = [0] + [i + 1 for i, c in enumerate(WF) if c == "\n"]
    tasks = []
    for family, rows in api_usage.api_sites(WF).items():
        for r, _ in rows:
            span = (starts[r], starts[r + 1])
            mid = WF[span[0] : span[1]]
            tasks.append(
                Task(
                    f"{family}-{r}",
                    "r",
                    "wf.py",
                    "python",
                    family,
                    WF[: span[0]],
                    WF[span[1] :],
                    mid,
                    (r + 1, r + 1),
                    span,
                    (0, len(WF)),
                )
            )
    counted = suite.reference_api_valid(tasks, contents)
    assert all(counted)
    rows = [{"prediction": t.middle} for t in tasks]
    suite.add_api_validity(tasks, rows, contents, counted)
    assert [r["api_valid"] for r in rows] == [True] * len(tasks)
