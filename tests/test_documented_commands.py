"""The command lines the docs tell users to type are ones the tools accept (issue 17, items 2 and 13).

Every `pyflyte` line in a fenced code block of README.md and docs/*.md, and in workflows.py's docstring, goes
through flytekit's own click parser (`pyflyte run` loads workflows.py and builds an option per workflow
input, as it does for a user) without running anything: no cluster, no execution, no network. The README's
`python -m training complete` line is expanded by bash, as a user's shell would, and parsed by the
training CLI."""

from __future__ import annotations

import ast
import re
import shlex
import subprocess
import warnings
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

pytest.importorskip("flytekit")  # the optional `flyte` extra
# flytekit declares each boolean input twice (`--no_x` and `--no-x`) and click warns about it on every parse.
pytestmark = pytest.mark.filterwarnings("ignore:The parameter --.* is used more than once:UserWarning")


def fenced_lines(text: str) -> list[str]:
    """Shell lines inside ``` blocks, with `\\` continuations joined."""
    lines, inside, pending = [], False, ""
    for raw in text.splitlines():
        if raw.lstrip().startswith("```"):
            inside, pending = not inside, ""
            continue
        if not inside:
            continue
        line = pending + raw.strip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        lines.append(line)
    return lines


def documented(program: str) -> list[tuple[str, str]]:
    """(where, line) for each line starting with `program` in the docs and workflows.py's docstring."""
    found = [(p.name, line) for p in DOCS for line in fenced_lines(p.read_text()) if line.startswith(program)]
    doc = ast.get_docstring(ast.parse((ROOT / "workflows.py").read_text())) or ""
    found += [("workflows.py", line.strip()) for line in doc.splitlines() if line.strip().startswith(program)]
    return found


PYFLYTE = documented("pyflyte ")


def parse_pyflyte(argv: list[str]) -> click.Context:
    """Resolve `pyflyte ARGV` down to its leaf command and parse the options, as click does before a run."""
    from flytekit.clis.sdk_in_container.pyflyte import main

    def unparsed(ctx: click.Context) -> list[str]:
        with warnings.catch_warnings():  # click 8.2 deprecates protected_args (9.0 keeps all in args)
            warnings.simplefilter("ignore", DeprecationWarning)
            return [*getattr(ctx, "protected_args", []), *ctx.args]

    ctx = main.make_context("pyflyte", list(argv))
    command, args = main, unparsed(ctx)
    while isinstance(command, click.Group):
        name, command, rest = command.resolve_command(ctx, args)
        ctx = command.make_context(name, rest, parent=ctx)
        args = unparsed(ctx)
    return ctx


def test_the_docs_document_the_workflow_runs():
    runs = [line for _, line in PYFLYTE if line.startswith("pyflyte run")]
    assert any("--remote" in line and "--no-embedded" in line for line in runs), runs
    assert len(runs) >= 5  # README, docs/FLYTE.md and the workflows.py docstring


@pytest.mark.parametrize(("where", "line"), PYFLYTE, ids=[f"{w}: {line}" for w, line in PYFLYTE])
def test_every_documented_pyflyte_line_parses(where, line, monkeypatch):
    monkeypatch.chdir(ROOT)  # the docs run pyflyte from the repository root
    argv = shlex.split(line, comments=True)[1:]
    try:
        ctx = parse_pyflyte(argv)
    except click.UsageError as err:
        pytest.fail(f"{where}: `{line}` is rejected by pyflyte: {err.format_message()}")
    if ctx.info_name == "flyte_llama":  # the workflow's own inputs reached it
        assert "embedded" in ctx.params and "publish" in ctx.params


def test_the_parser_rejects_a_boolean_given_a_value(monkeypatch):
    """The form the docs used to show: proof that the check above would catch it."""
    monkeypatch.chdir(ROOT)
    with pytest.raises(click.UsageError, match="unexpected extra argument"):
        parse_pyflyte(["run", "workflows.py", "flyte_llama", "--embedded", "false"])
    ctx = parse_pyflyte(["run", "workflows.py", "flyte_llama", "--no-embedded"])
    value = ctx.params["embedded"]  # a Flyte literal (or a bool, as flytekit versions differ)
    assert getattr(getattr(getattr(value, "scalar", None), "primitive", None), "boolean", value) is False


def test_the_readme_complete_example_passes_real_newlines():
    from training.__main__ import build_parser
    from training.complete import split_prompt

    (line,) = [line for _, line in documented("python -m training complete") if "<FILL_ME>" in line]
    # Expanded by bash, as a user's shell does: print each argument NUL-separated instead of running it.
    words = line.removeprefix("python -m training complete")
    out = subprocess.run(
        ["bash", "-c", f"printf '%s\\0' {words}"], capture_output=True, text=True, check=True
    ).stdout
    args = build_parser().parse_args(["complete", *out.split("\0")[:-1]])
    assert "\\n" not in args.prompt and args.prompt.count("\n") >= 2, repr(args.prompt)
    prefix, suffix = split_prompt(args.prompt)
    assert re.fullmatch(r"def my_task\(x: int\) -> int:\n {4}\"\"\"", prefix) and suffix == '"""\n'
