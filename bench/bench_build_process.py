"""Cold corpus build as a user runs it, against a raw git read of the same commits, both whole processes.

    python bench/bench_build_process.py --mirrors /work/mirrors [--config FILE] [--repeat 3]
        [--baseline-tree DIR]

raw    one shell: per repo `git ls-tree -r <pin> | (blob ids) | git cat-file --batch > /dev/null`
build  `python -m dataset_builder build --mirrors DIR --out TMP --cache-dir <fresh> --no-progress`
       (interpreter start-up, imports, reading, filters, redaction, dedup, parse checks, the `datasets`
       builder and the Parquet/card/manifest export: everything a cold run costs)
Rounds alternate raw and build; the best of `--repeat` is reported for each, with their ratio (target
<= 6x), and the CPU seconds (user + sys, the process and its children) of the best build: on a shared
machine wall time follows the load, CPU time much less.

Same bytes out: every build's folder (shards, README.md, manifest.json) is hashed, and the run fails when
two builds differ. `--baseline-tree DIR` (a checkout of another version, e.g. `git worktree add DIR REV`
or `git archive REV | tar -x -C DIR`) also builds with that code in every round, after this tree's build,
and fails unless its folder is byte-identical too: that is how a speed-up shows it changed no output.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dataset_builder.config import load_config  # noqa: E402  (light: no datasets import)


def _git_dir(mirrors: Path, name: str) -> Path:
    for candidate in (mirrors / name, mirrors / f"{name}.git"):
        if candidate.exists():
            return candidate
    raise SystemExit(f"no mirror of {name} under {mirrors}")


def raw_script(mirrors: Path, config: Path | None) -> str:
    lines = []
    for spec in load_config(config).repos:
        d = shlex.quote(str(_git_dir(mirrors, spec.name)))
        lines.append(
            f"git --git-dir={d} ls-tree -r --full-tree {spec.commit} | awk '$2 == \"blob\" {{print $3}}' "
            f"| git --git-dir={d} cat-file --batch > /dev/null"
        )
    return "set -e -o pipefail\n" + "\n".join(lines)


def _timed(cmd: list[str], cwd: Path = ROOT) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and everything it started)."""
    before = os.times()
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu


def folder_digest(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file of a built folder."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _build(tree: Path, mirrors: Path, config: Path | None, tmp: str) -> tuple[float, float, dict[str, str]]:
    """One cold build with the code of `tree` (python -m dataset_builder run from there)."""
    cmd = [sys.executable, "-m", "dataset_builder", "build", "--mirrors", str(mirrors)]
    cmd += ["--out", f"{tmp}/out", "--cache-dir", f"{tmp}/cache", "--no-progress"]
    cmd += ["--config", str(config.resolve())] if config else []
    wall, cpu = _timed(cmd, cwd=tree)
    return wall, cpu, folder_digest(Path(tmp) / "out")


def _differences(a: dict[str, str], b: dict[str, str]) -> list[str]:
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mirrors", type=Path, required=True)
    ap.add_argument("--config", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--baseline-tree", type=Path, help="another checkout to build in every round too")
    args = ap.parse_args()
    script = raw_script(args.mirrors, args.config)
    raws: list[float] = []
    builds: list[tuple[float, float]] = []
    baselines: list[tuple[float, float]] = []
    digests: list[dict[str, str]] = []
    for i in range(args.repeat):
        raws.append(_timed(["bash", "-c", script])[0])
        with tempfile.TemporaryDirectory() as tmp:
            wall, cpu, digest = _build(ROOT, args.mirrors, args.config, tmp)
            builds.append((wall, cpu))
            digests.append(digest)
        line = f"round {i + 1}: raw {raws[-1]:.2f}s | cold build {wall:.2f}s "
        line += f"({wall / raws[-1]:.1f}x, cpu {cpu:.1f}s)"
        if args.baseline_tree:
            with tempfile.TemporaryDirectory() as tmp:
                b_wall, b_cpu, b_digest = _build(args.baseline_tree, args.mirrors, args.config, tmp)
            baselines.append((b_wall, b_cpu))
            digests.append(b_digest)
            line += f" | baseline {b_wall:.2f}s ({b_wall / raws[-1]:.1f}x, cpu {b_cpu:.1f}s)"
        print(line, flush=True)
    raw, (build, cpu) = min(raws), min(builds)
    print(
        f"cold build (whole process) {build:.2f}s vs raw read (whole process) {raw:.2f}s = {build / raw:.1f}x"
        f" (cpu {cpu:.1f}s)"
    )
    if baselines:
        b_wall, b_cpu = min(baselines)
        print(f"baseline {args.baseline_tree}: {b_wall:.2f}s = {b_wall / raw:.1f}x (cpu {b_cpu:.1f}s)")
    different = sorted({k for d in digests[1:] for k in _differences(digests[0], d)})
    shards = {k: v[:16] for k, v in digests[0].items() if k.startswith("data/")}
    if different == ["README.md"] and args.baseline_tree:
        # The card is rendered by model_card, which the baseline tree may have in another version.
        print("note: README.md differs between the trees (model_card renders it); data and manifest agree")
    elif different:
        raise SystemExit(f"builds differ in {different}: the output is not the same bytes")
    same = [k for k in digests[0] if k not in different]
    print(f"same bytes: {len(digests)} builds wrote identical {same}; shard sha256 {shards}")


if __name__ == "__main__":
    main()
