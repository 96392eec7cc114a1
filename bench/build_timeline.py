"""Where a cold `python -m dataset_builder build` spends its time, and the floor that leaves on this machine.

    python bench/build_timeline.py --mirrors /work/mirrors [--config FILE] [--repeat 3]

Each round runs the CLI command as a user does (fresh cache and output, whole process) with light
wrappers on the functions that start and end each phase, installed when their module is first imported,
so every import happens when it would without them. Wrapped calls in the pool workers (one per repo, one
per parse slice) log their own CPU and that of the git processes they ran. The best round is printed:

- the phases in order, each with its wall span and the CPU the parent and the workers spent in it;
- the CPU of the whole process tree (the OS's figure for the child and everything it waited for);
- the floor of this design: the chain start-up → read → dedup → parse → Arrow → export can overlap only
  inside a phase, so the phases that run on the parent alone (start-up, the Arrow pass, the export, exit)
  are serial, and the rest cannot go faster than its CPU ÷ cores. The measured wall over that floor is the
  overlap still lost; the floor over the raw read (bench_build_process.py) is what the work itself costs.
"""

from __future__ import annotations

import argparse
import functools
import importlib.abc
import importlib.machinery
import json
import os
import runpy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOG_ENV = "FLYTE_LLAMA_TIMELINE_LOG"

# module → functions whose calls are logged. A name missing here means the pipeline changed: update it.
TARGETS = {
    "dataset_builder.build": ["build_corpus"],
    "dataset_builder.sources": ["resolve_sources"],
    "dataset_builder.hf_builder": ["make_builder", "build_dataset"],
    "dataset_builder.pipeline": [
        "_process_uncached",
        "process_repos",
        "commit_times",
        "parse_check",
        "_parse_all",
    ],
    "dataset_builder.dedup": ["deduplicate"],
    "dataset_builder.export": ["export_dataset"],
}
SERIAL = {"start-up", "Arrow pass", "export", "summary, exit"}  # phases with no worker running by design


def _process_start() -> float:
    """time.time() at which this process started (from /proc), so start-up counts too."""
    with open("/proc/self/stat") as f:
        start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return time.time() - (uptime - start_ticks / os.sysconf("SC_CLK_TCK"))


def _logged(fn, log_path: str, t0: float):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start, before = time.time(), os.times()
        try:
            return fn(*args, **kwargs)
        finally:
            after = os.times()
            line = {
                "fn": fn.__name__, "pid": os.getpid(), "start": start - t0, "end": time.time() - t0,
                # CPU of this process since it started, and of the processes it waited for (git), at both ends
                "cpu0": before.user + before.system, "cpu1": after.user + after.system,
                "kids0": before.children_user + before.children_system,
                "kids1": after.children_user + after.children_system,
                "repo": getattr(args[0], "name", None) if fn.__name__ == "_process_uncached" else None,
            }  # fmt: skip
            with open(log_path, "a") as f:  # one short line per call: O_APPEND keeps the workers' apart
                f.write(json.dumps(line) + "\n")

    return wrapper


class _PatchAfterImport(importlib.abc.MetaPathFinder):
    """Finds TARGETS' modules as usual, then wraps their functions right after the module ran."""

    def __init__(self, log_path: str, t0: float) -> None:
        self.log_path, self.t0 = log_path, t0

    def find_spec(self, name, path, target=None):
        if name not in TARGETS:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            for attr in TARGETS[name]:
                if not hasattr(module, attr):
                    raise SystemExit(f"build_timeline: {name}.{attr} is gone; update TARGETS")
                setattr(module, attr, _logged(getattr(module, attr), self.log_path, self.t0))

        spec.loader.exec_module = exec_module
        return spec


def child(build_args: list[str]) -> None:
    """Run the CLI in this process with the wrappers in place (the --child side)."""
    t0 = _process_start()
    sys.meta_path.insert(0, _PatchAfterImport(os.environ[LOG_ENV], t0))
    sys.argv = ["dataset_builder", *build_args]
    sys.path.insert(0, str(ROOT))
    runpy.run_module("dataset_builder", run_name="__main__", alter_sys=True)


def _parent(calls: list[dict]) -> int:
    """The pid of the build's own process: the one that called build_corpus."""
    return next(c["pid"] for c in calls if c["fn"] == "build_corpus")


def _cost(call: dict) -> float:
    """CPU-s of one call and of the git processes it ran."""
    return call["cpu1"] - call["cpu0"] + call["kids1"] - call["kids0"]


def phases(calls: list[dict], wall: float) -> list[tuple[str, float, float, float]]:
    """(name, start, end, parent CPU-s) of each phase of one build, from its logged calls. The parent is
    the process that called build_corpus; its phases are the gaps between the calls that mark them."""
    parent = _parent(calls)
    once = {c["fn"]: c for c in calls if c["pid"] == parent}
    bounds = [  # (phase that ends here, time, parent CPU so far)
        ("start-up", once["build_corpus"]["start"], once["build_corpus"]["cpu0"]),
        ("resolve pins", once["resolve_sources"]["end"], once["resolve_sources"]["cpu1"]),
        ("read, filter, redact", once["process_repos"]["end"], once["process_repos"]["cpu1"]),
        ("commit dates", once["deduplicate"]["start"], once["deduplicate"]["cpu0"]),
        ("dedup", once["deduplicate"]["end"], once["deduplicate"]["cpu1"]),
        ("parse check", once["parse_check"]["end"], once["parse_check"]["cpu1"]),
        ("Arrow pass", once["export_dataset"]["start"], once["export_dataset"]["cpu0"]),
        ("export", once["export_dataset"]["end"], once["export_dataset"]["cpu1"]),
    ]
    out, t, cpu = [], 0.0, 0.0
    for name, end, cpu_end in bounds:
        out.append((name, t, end, cpu_end - cpu))
        t, cpu = end, cpu_end
    out.append(("summary, exit", t, wall, float("nan")))  # the parent's CPU after its last call is not logged
    return out


def report(calls: list[dict], wall: float, cpu: float, cores: int) -> str:
    """The phase table, the process tree's CPU and idle time, and this design's floor."""
    parent = _parent(calls)
    workers = [c for c in calls if c["pid"] != parent]
    rows, serial_wall = [], 0.0
    for name, start, end, own in phases(calls, wall):
        busy = sum(_cost(c) for c in workers if start <= (c["start"] + c["end"]) / 2 < end)
        rows.append(f"{name:<22}{start:7.2f}{end:7.2f}{end - start:7.2f}{own:8.2f}{busy:9.2f}")
        serial_wall += end - start if name in SERIAL else 0.0
    worker_cpu = sum(_cost(c) for c in workers)
    # A lower bound: the serial phases keep at most one core busy, all the rest overlaps perfectly.
    floor = serial_wall + (cpu - serial_wall) / cores
    repos = sorted((c for c in workers if c["fn"] == "_process_uncached"), key=lambda c: -_cost(c))
    spans = [c["end"] - c["start"] for c in workers if c["fn"] == "_parse_all"]
    head = f"{'phase':<22}{'start':>7}{'end':>7}{'wall':>7}{'parent':>8}{'workers':>9}   (s; CPU-s)"
    return "\n".join([
        head, *rows,
        f"process tree: wall {wall:.2f}s, CPU {cpu:.2f}s ({worker_cpu:.2f} in pool workers and their git); "
        f"idle {cores * wall - cpu:.2f} of {cores * wall:.2f} core-s",
        "costliest repos (CPU-s, with git): " + ", ".join(f"{c['repo']} {_cost(c):.2f}" for c in repos[:3]),
        f"parse slices: {len(spans)}, {min(spans, default=0):.2f}-{max(spans, default=0):.2f}s each",
        f"floor of this design on {cores} cores: serial phases {serial_wall:.2f}s + (CPU {cpu:.2f} - "
        f"{serial_wall:.2f}) / {cores} = {floor:.2f}s; measured {wall:.2f}s = {wall / floor:.2f}x that floor",
    ])  # fmt: skip


def run_once(mirrors: Path, config: Path | None) -> tuple[list[dict], float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp, "calls.jsonl")
        # `--flag=value`: a path that starts with "-" stays a value, never becomes an option
        cmd = [sys.executable, __file__, "--child", "build", f"--mirrors={mirrors}", f"--out={tmp}/out",
               f"--cache-dir={tmp}/cache", "--no-progress"]  # fmt: skip
        cmd += [f"--config={config.resolve()}"] if config else []
        before, start = os.times(), time.perf_counter()
        env = {**os.environ, LOG_ENV: str(log)}
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
        if proc.returncode:
            raise SystemExit(f"the build failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        wall, after = time.perf_counter() - start, os.times()
        cpu = after.children_user + after.children_system - before.children_user - before.children_system
        calls = [json.loads(line) for line in log.read_text().splitlines()]
    return calls, wall, cpu


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return child(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mirrors", type=Path, required=True, help="folder of bare mirrors, one per repo")
    ap.add_argument("--config", type=Path, help="corpus recipe (default: dataset_builder/corpus.yaml)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds; the fastest is reported")
    args = ap.parse_args()
    runs = [run_once(args.mirrors, args.config) for _ in range(args.repeat)]
    for i, (_, wall, cpu) in enumerate(runs):
        print(f"round {i + 1}: wall {wall:.2f}s, cpu {cpu:.2f}s", flush=True)
    calls, wall, cpu = min(runs, key=lambda r: r[1])
    print(report(calls, wall, cpu, os.cpu_count() or 1))
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
