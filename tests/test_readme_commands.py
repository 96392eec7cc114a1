"""Every README shell command that can run offline is run (issue 17, item 13); the rest are skipped by name.

The commands are the lines of the README's ```bash / ```console blocks (`\\` continuations joined). Each is
either RUN: executed by bash as a user's shell would (so `$'...'` quoting is the shell's), in a temp folder
that holds what the README's paths name, failing on a nonzero exit; or listed in SKIP with the reason it
cannot run here. A README command that is neither fails the coverage test, so a new command gets classified.
`pyflyte` lines are parsed (not run) by tests/test_documented_commands.py.

The mapping from the README's world to this test's, all in the temp folder (the working directory):

    hub/flyte-llama-corpus   the bundled samples (`python -m samples.make_repos`) built with
                             dataset_builder/samples.yaml and `hub_repo_id=my-org/flyte-llama-corpus`
    runs/7b                  `python -m training train --recipe tiny` on that corpus (a tiny Llama base
                             built from config, nothing downloaded), in place of the 7B run
    my-org                   kept: ids are only written into cards, and pushes run as --dry-run
    python                   this interpreter, with the checkout on PYTHONPATH; push.py is the checkout's
    EXTRA                    flags appended to keep a command offline and short (below, each with its reason)
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

NETWORK, GPU = "needs the network", "needs a GPU"
# README command prefix → why it is not run here.
SKIP = {
    "make demo": "writes hub/ and runs/demo/ into the checkout; the same job is `python job.py --embedded`, "
    "run by tests/test_job.py",
    "make test": "runs this whole suite (this test included)",
    "make test-fast": "runs this suite without the slow tests (this test included)",
    "pip install": f"installs packages: {NETWORK} (PyPI)",
    "huggingface-cli login": f"{NETWORK}: logs in to the Hub",
    "python job.py --org": f"{NETWORK} and {GPU}: clones the nine repos from GitHub, trains the 7B recipe",
    "python -m dataset_builder build --out": f"{NETWORK}: clones the nine pinned repos from GitHub",
    "python -m dataset_builder build --mirrors": "needs git mirrors of the nine real repos at the pinned "
    "commits (the samples stand in for them above, with their own config)",
    "python -m dataset_builder pin --write": f"{NETWORK}: asks GitHub for the branch heads",
    "python -m training prepare --recipe codellama-7b-lora": f"{NETWORK}: Code Llama's tokenizer",
    "python -m training train": f"{GPU} and the Hub: the 7B recipe (runs/7b is the tiny recipe's run)",
    "accelerate launch": f"{GPU}s: multi-GPU training of the 7B recipe",
    "python -m training evaluate --base codellama/": f"{NETWORK}: Code Llama and the corpus from the Hub",
    "pyflyte run": "parsed by tests/test_documented_commands.py; the local run is tests/test_workflows.py",
    "vllm serve": f"{GPU}, vLLM and the merged model on the Hub",
}
# README command prefix → flags appended when it runs here, and why.
EXTRA = {
    # The full benchmark takes minutes on 2 cores; a few tasks and documents exercise the same code.
    "python -m training evaluate": ["--set", "infill_tasks=8", "api_tasks=8", "max_docs=10"],
    # A push without --dry-run would publish; the dry run does every check offline.
    "python push.py model": ["--dry-run"],
}


def shell_commands(text: str) -> list[str]:
    """Command lines of the ```bash / ```console blocks, continuations joined, `$ ` prompts dropped."""
    commands, block, pending = [], None, ""
    for raw in text.splitlines():
        fence = re.match(r"\s*```(\w*)", raw)
        if fence:
            block, pending = (fence.group(1) if block is None else None), ""
            continue
        if block not in ("bash", "console") or not raw.strip():
            continue
        line = pending + raw.strip().removeprefix("$ ")
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        if not line.startswith("#"):
            commands.append(line)
    return commands


COMMANDS = shell_commands(README.read_text(encoding="utf-8"))


def skip_reason(command: str) -> str | None:
    return next((why for prefix, why in SKIP.items() if command.startswith(prefix)), None)


def runnable() -> list[str]:
    return [c for c in COMMANDS if skip_reason(c) is None]


def test_every_readme_command_is_run_or_skipped_with_a_reason():
    assert len(COMMANDS) > 15, "the README's command blocks were not found"
    unused = [p for p in SKIP if not any(c.startswith(p) for c in COMMANDS)]
    assert not unused, f"SKIP entries that match no README command any more: {unused}"
    run = runnable()
    # What runs here: the CLI of each stage that needs no GPU and no network.
    assert any(c.startswith("python -m training complete") and "$'" in c for c in run)
    for prefix in ("python -m training evaluate", "python -m model_card.stage", "python push.py model"):
        assert any(c.startswith(prefix) for c in run), prefix
    assert all(c.split()[0] == "python" for c in run), run  # the mapping below covers these only


def _complete_prompt_is_a_real_newline() -> None:
    line = next(c for c in COMMANDS if c.startswith("python -m training complete"))
    prompt = subprocess.run(
        ["bash", "-c", f"printf %s {line.split('--prompt ', 1)[1]}"], capture_output=True, text=True
    ).stdout
    assert "\n" in prompt and "\\n" not in prompt, prompt


def test_complete_example_passes_real_newlines():
    _complete_prompt_is_a_real_newline()


def _as_run_here(command: str) -> str:
    """The README command as this test runs it (the mapping of the module docstring)."""
    command = re.split(r"\s{2,}#", command, maxsplit=1)[0]  # the README's trailing comments, before EXTRA
    words = command.split(" ", 1)
    rest = words[1].replace("push.py ", f"{shlex.quote(str(ROOT / 'push.py'))} ", 1)
    extra = next((flags for prefix, flags in EXTRA.items() if command.startswith(prefix)), [])
    extra = [f for f in extra if f not in command.split()]
    return " ".join([shlex.quote(sys.executable), rest, *map(shlex.quote, extra)])


def _run(cmd: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The temp folder the README's paths resolve in: the samples corpus and a tiny run (see above)."""
    cwd = tmp_path_factory.mktemp("readme")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    py = shlex.quote(sys.executable)
    config = shlex.quote(str(ROOT / "dataset_builder" / "samples.yaml"))
    for cmd in (
        f"{py} -m samples.make_repos mirrors",
        f"{py} -m dataset_builder build --config {config} --mirrors mirrors --out hub/flyte-llama-corpus "
        "--set hub_repo_id=my-org/flyte-llama-corpus --no-progress",
        f"{py} -m training train --recipe tiny --dataset hub/flyte-llama-corpus --output-dir runs/7b",
    ):
        done = _run(cmd, cwd, env)
        assert done.returncode == 0, f"setup `{cmd}` failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return cwd, env


@pytest.mark.slow
def test_readme_commands_run_offline(world):
    cwd, env = world
    for command in runnable():  # in README order: evaluate writes what add-infilling and stage read
        done = _run(_as_run_here(command), cwd, env)
        assert done.returncode == 0, (
            f"README command exited {done.returncode}: {command}\n"
            f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    merged = cwd / "hub" / "flyte-llama-7b-lora-merged"
    assert (merged / "model.safetensors").is_file() and (merged / "config.json").is_file()
