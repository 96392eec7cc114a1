"""Benchmark of the execution harness: one sandboxed run of a Flyte example against its natural limit.

The limit is what no harness can beat: a bare interpreter that imports flytekit and runs the same file's
workflow (`python -c ...` with the same environment, in a plain network namespace; no mount or PID namespace,
no limits, no audit hook, no box to write and delete). The ratio is the sandbox's overhead.
With --test-split, also times the survey of a real test split (every candidate file run twice) and prints
the exclusion table.

    python bench/bench_execution.py [--repeat 5] [--test-split DIR/data/test-00000-of-00001.parquet]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.evaluation import execution, sandbox

EXAMPLE = """from flytekit import task, workflow


@task
def square(x: int) -> int:
    return x * x


@workflow
def wf(x: int = 7) -> int:
    return square(x=x)
"""


def bare_run(folder: Path) -> float:
    (folder / "example.py").write_text(EXAMPLE)
    # os._exit after the answer, as the runner does: interpreter teardown is not part of the work.
    code = "import os, sys; sys.path.insert(0, '.'); import example; print(example.wf(), flush=True)"
    code += "; os._exit(0)"
    start = time.perf_counter()
    env = sandbox.clean_env(folder)  # same variables as a boxed run (HOME, TMPDIR, thread counts)
    (folder / "tmp").mkdir(exist_ok=True)
    # In a bare network namespace too, where the OS allows: flytekit's start-up network probes fail at once
    # there, as in the box, instead of waiting on a resolver (that would flatter the sandbox).
    prefix = ["unshare", *sandbox.ISOLATION_LEVELS[1][1]] if sandbox.isolation()[0] != "none" else []
    subprocess.run(
        [*prefix, sys.executable, "-c", code], cwd=folder, env=env, check=True, capture_output=True
    )
    return time.perf_counter() - start


def boxed_run() -> float:
    start = time.perf_counter()
    result = sandbox.run_files({"example.py": EXAMPLE}, {"module": "example.py"})
    assert result.status == "ok" and result.report["workflows"]["wf"]["outputs"] == 49, result
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--test-split", type=Path, help="a test split's parquet shard: time its survey")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bare_run(Path(tmp))  # warm the page cache for both
        bare = statistics.median(bare_run(Path(tmp)) for _ in range(args.repeat))
    boxed = statistics.median(boxed_run() for _ in range(args.repeat))
    level = sandbox.isolation()[0]
    print(f"isolation: {level}")
    print(f"bare interpreter + flytekit + workflow: {bare:.2f} s (median of {args.repeat})")
    print(f"sandboxed run (namespaces, rlimits, audit hook): {boxed:.2f} s -> {boxed / bare:.2f}x the limit")
    if args.test_split:
        import pyarrow.parquet as pq

        records = pq.read_table(args.test_split, columns=["repo", "path", "language", "content"]).to_pylist()
        with tempfile.TemporaryDirectory() as cache:
            settings = execution.ExecSettings(
                cache_dir=cache, **({"workers": args.workers} if args.workers else {})
            )
            start = time.perf_counter()
            verdicts = execution.survey(records, settings)
            cold = time.perf_counter() - start
            start = time.perf_counter()
            execution.survey(records, settings)
            warm = time.perf_counter() - start
        summary = execution.summary(records, verdicts, [])
        ran = 2 * sum(v.reason not in ("missing_dependency", "no_task_bodies") for v in verdicts)
        print(f"survey: {summary['candidate_files']} candidates, {ran} runs on {settings.workers} workers: "
              f"{cold:.1f} s cold ({cold / max(ran, 1):.2f} s per run), {warm:.2f} s cached")  # fmt: skip
        print(
            json.dumps(
                {k: summary[k] for k in ("python_files", "candidate_files", "kept_files", "excluded_files")}
            )
        )


if __name__ == "__main__":
    main()
