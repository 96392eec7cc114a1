"""Execution tasks: task bodies found and cut (seeded), outputs made comparable, runs classified and scored.

The sandbox itself (what a hostile body cannot do) is tests/test_sandbox.py; these tests run no subprocess
except where marked slow."""

from __future__ import annotations

import json

import pytest

from flyte_llama_common.schemas import Task
from training.evaluation import exec_runner, execution, sandbox

EXAMPLE = '''"""An example."""
from flytekit import task, workflow


@task
def square(x: int) -> int:
    """Square it."""
    y = x * x
    return y


@task
def greet(name: str) -> str:
    return f"hello {name}"


@task
def unused(x: int) -> int:
    return x + 1


@task
def one_liner(x: int) -> int: return x


@workflow
def wf(x: int = 7) -> int:
    return square(x=x)


@workflow
def hello(name: str = "flyte") -> str:
    return greet(name=name)


@workflow
def needs(x: int) -> int:
    return unused(x=x)
'''
LINES = EXAMPLE.split("\n")
NETWORK = """import socket
from flytekit import task, workflow


@task
def fetch() -> str:
    socket.create_connection(("1.1.1.1", 53), timeout=2)
    return "x"


@workflow
def wf() -> str:
    return fetch()
"""


def row(text: str) -> int:
    return next(i for i, line in enumerate(LINES) if line.strip().startswith(text))


def test_task_bodies_keep_signature_and_docstring_in_the_prefix():
    found = dict(execution.task_functions(EXAMPLE))
    assert found == {
        "square": (row("y = x * x"), row("return y")),
        "greet": (row('return f"hello'),) * 2,
        "unused": (row("return x + 1"),) * 2,
    }  # one_liner: its body shares the `def` line, so no hole of whole lines exists
    assert execution.is_example(EXAMPLE)
    assert not execution.is_example("from flytekit import task\n\n@task\ndef f() -> int:\n    return 1\n")
    assert not execution.is_example("def broken(:\n")


def test_missing_modules_are_found_without_importing():
    text = "import os\nimport surely_not_a_module_xyz.sub\nfrom flytekit import task\nfrom . import sibling\n"
    assert execution.missing_modules(text) == ["surely_not_a_module_xyz"]


def test_a_sibling_module_of_the_project_comes_along_in_the_box():
    talk = "scipy-2023/workflows/example_01.py"
    text = "from workflows.example_00_intro import helper\nimport surely_not_xyz\nimport os\n"
    contents = {
        ("talks", talk): text,
        ("talks", "scipy-2023/workflows/example_00_intro.py"): "def helper(): ...\n",
        ("talks", "scipy-2023/workflows/__init__.py"): "",
        ("talks", "scipy-2023/other/thing.py"): "x = 1\n",  # not imported: stays out
        ("talks", "kubecon/workflows/example_00_intro.py"): "wrong = 1\n",  # another project's
        ("snacks", "scipy-2023/workflows/example_00_intro.py"): "wrong = 2\n",  # another repo's
    }
    box = execution.box_for("talks", talk, text, contents)
    assert box.module == talk and box.sys_path == ("scipy-2023",)
    assert sorted(box.files) == sorted(
        [talk, "scipy-2023/workflows/example_00_intro.py", "scipy-2023/workflows/__init__.py"]
    )
    assert box.missing == ("surely_not_xyz",)


def test_blob_sha_is_gits():
    # `printf 'hello\n' | git hash-object --stdin`
    assert execution.blob_sha("hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, 3),
        (0.1 + 0.2, 0.3),
        ((1, "a"), [1, "a"]),
        ({"b": 1, "a": {2, 1}}, {"a": [1, 2], "b": 1}),
        (b"xy", {"bytes_sha256": "769a4e6d0003189c7e96c5d9b7e810a0d11c3a12832527ec94b0f86d277f51ca"}),
        (float("nan"), "nan"),
    ],
)
def test_canonical_outputs(value, expected):
    assert exec_runner.canonical(value) == expected


def test_canonical_refuses_what_has_no_comparable_form():
    with pytest.raises(TypeError, match="no comparable form"):
        exec_runner.canonical(object())


def test_canonical_frames_and_dataclasses():
    import dataclasses

    import pandas as pd

    @dataclasses.dataclass
    class P:
        a: int
        b: list

    assert exec_runner.canonical(P(1, [2.0])) == {"dataclass": P.__qualname__, "fields": {"a": 1, "b": [2.0]}}
    frame = pd.DataFrame({"x": [1, 2], "y": ["a", "b"]})
    assert exec_runner.canonical(frame) == {"frame": ["x", "y"], "rows": [[1, "a"], [2, "b"]]}


def result(status="ok", report=None, wall=1.0, stderr=""):
    return sandbox.RunResult(status=status, returncode=0, wall_s=wall, report=report, stderr_tail=stderr)


@pytest.mark.parametrize(
    ("run", "reason"),
    [
        (result("timeout"), "too_slow"),
        (result("no_result"), "fails_locally"),
        (result(report={"status": "import_error", "missing_module": "sklearn"}), "missing_dependency"),
        (result(report={"status": "ok", "workflows": {"a": {"outputs": 1}}}), None),
        (result(report={"status": "ok", "workflows": {"a": {"skipped": "needs_inputs"}}}), "needs_inputs"),
        (
            result(report={"status": "ok", "workflows": {"a": {"error": "sandbox: socket.connect is not"}}}),
            "needs_network",
        ),
        (
            result(
                report={"status": "ok", "workflows": {"a": {"error": "sandbox: subprocess.Popen is not"}}}
            ),
            "needs_subprocess",
        ),
        (
            result(report={"status": "load_error", "error": "Flyte cluster is currently unavailable"}),
            "needs_cluster",
        ),
        (
            result(report={"status": "ok", "workflows": {"a": {"error": "ValueError: Fail!"}}}),
            "fails_locally",
        ),
        (
            result(report={"status": "ok", "workflows": {"a": {"unrepresentable": "x"}}}),
            "unrepresentable_output",
        ),
    ],
)
def test_reference_runs_are_classified(run, reason):
    assert execution.outcome(run)[0] == reason


def task_for(rows: tuple[int, int], outputs: dict) -> Task:
    starts = [0] + [i + 1 for i, c in enumerate(EXAMPLE) if c == "\n"]
    lo, hi = starts[rows[0]], starts[rows[1] + 1]
    return Task(
        "exec-0000", "r", "a.py", "python", execution.KIND, EXAMPLE[:lo], EXAMPLE[hi:], EXAMPLE[lo:hi],
        (rows[0] + 1, rows[1] + 1), (lo, hi), (0, len(EXAMPLE)), reference_outputs=json.dumps(outputs),
    )  # fmt: skip


def test_pass_needs_every_reference_workflow_to_match():
    task = task_for((row("y = x * x"), row("return y")), {"wf": 49, "hello": "hello flyte"})
    ok = {"status": "ok", "workflows": {"wf": {"outputs": 49}, "hello": {"outputs": "hello flyte"}}}
    assert execution.passes(task, result(report=ok)) == (True, "pass")
    wrong = {"status": "ok", "workflows": {"wf": {"outputs": 48}, "hello": {"outputs": "hello flyte"}}}
    assert execution.passes(task, result(report=wrong)) == (False, "wrong_output")
    failed = {"status": "ok", "workflows": {"wf": {"error": "boom"}, "hello": {"outputs": "hello flyte"}}}
    assert execution.passes(task, result(report=failed)) == (False, "error")
    assert execution.passes(task, result("timeout")) == (False, "timeout")
    assert execution.passes(task, result(report={"status": "load_error"})) == (False, "load_error")


def test_trivial_bodies_take_the_body_indentation():
    task = task_for((row("y = x * x"), row("return y")), {})
    assert execution.trivial_body(task, "pass") == "    pass\n"


def test_cut_tasks_is_seeded_stable_and_sets_aside_unexercised_bodies(monkeypatch):
    other = EXAMPLE.replace("def square", "def cube").replace("square(x=x)", "cube(x=x)")
    records = [
        {"repo": "r", "path": "a.py", "language": "python", "content": EXAMPLE},
        {"repo": "r", "path": "b.py", "language": "python", "content": other},
    ]
    verdicts = [execution.Verdict("r", p, None, outputs={"wf": 49}) for p in ("a.py", "b.py")]

    def fake_probe(tasks, contents, fills, settings, desc, cache=False):
        assert all(f.split() == ["raise", "NotImplementedError", "return", "None"] for f in fills)
        return [{"pass_at_1": t.function == "unused", "exec_status": "x", "exec_s": 0.0} for t in tasks]

    monkeypatch.setattr(execution, "run_fills", fake_probe)

    def make(task_id, record, rows):
        starts = [0] + [i + 1 for i, c in enumerate(record["content"]) if c == "\n"]
        lo, hi = starts[rows[0]], starts[rows[1] + 1]
        c = record["content"]
        return Task(task_id, record["repo"], record["path"], "python", execution.KIND, c[:lo], c[hi:],
                    c[lo:hi], (rows[0] + 1, rows[1] + 1), (lo, hi), (0, len(c)))  # fmt: skip

    settings = execution.ExecSettings(workers=1)
    first = execution.cut_tasks(records, verdicts, make, 6, 3, settings)
    again = execution.cut_tasks(records, verdicts, make, 6, 3, settings)
    other_seed = execution.cut_tasks(records, verdicts, make, 6, 4, settings)
    assert first == again
    assert [t.function for t in first] != [t.function for t in other_seed]
    assert len(first) == 6 and {t.path for t in first} == {"a.py", "b.py"}
    not_exercised = [t for t in first if t.excluded == execution.NOT_EXERCISED]
    assert {t.function for t in not_exercised} == {"unused"} and len(not_exercised) == 2
    assert first[-2:] == not_exercised  # scored first, set-aside last
    assert all(json.loads(t.reference_outputs) == {"wf": 49} for t in first)
    summary = execution.summary(records, verdicts, first)
    assert summary["tasks_scored"] == 4 and summary["tasks_not_exercised"] == 2


@pytest.mark.slow
def test_survey_keeps_a_running_example_and_says_why_others_are_out(tmp_path, monkeypatch):
    records = [
        {"repo": "r", "path": "ok.py", "language": "python", "content": EXAMPLE},
        {"repo": "r", "path": "dep.py", "language": "python", "content": "import surely_not_xyz\n" + EXAMPLE},
        {"repo": "r", "path": "inputs.py", "language": "python",
         "content": EXAMPLE.replace("x: int = 7", "x: int").replace('name: str = "flyte"', "name: str")},
        {"repo": "r", "path": "net.py", "language": "python", "content": NETWORK},
        {"repo": "r", "path": "notes.md", "language": "markdown", "content": "# not code\n"},
    ]  # fmt: skip
    settings = execution.ExecSettings(workers=2, cache_dir=str(tmp_path / "cache"))
    verdicts = {v.path: v for v in execution.survey(records, settings)}
    assert verdicts["ok.py"].reason is None
    assert verdicts["ok.py"].outputs == {"wf": 49, "hello": "hello flyte"}  # `needs` has no default input
    assert verdicts["dep.py"].reason == "missing_dependency" and "surely_not_xyz" in verdicts["dep.py"].detail
    assert verdicts["inputs.py"].reason == "needs_inputs"
    assert verdicts["net.py"].reason == "needs_network"
    assert "notes.md" not in verdicts
    # A file where one workflow fails and another runs keeps the one that runs (its tasks are probed).
    # Cached by blob sha: both runs of the three files that ran, so a second survey runs nothing.
    cached = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(cached) == 2 * 3
    assert sum(n.startswith(execution.blob_sha(EXAMPLE)) for n in cached) == 2

    def no_runs(*args, **kwargs):
        raise AssertionError("a cached survey must not start a sandbox")

    monkeypatch.setattr(sandbox, "run_files", no_runs)
    again = execution.survey(records, settings)
    assert [(v.path, v.reason, v.outputs) for v in again] == [
        (v.path, v.reason, v.outputs) for v in verdicts.values()
    ]
