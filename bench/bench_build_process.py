"""Cold corpus build as a user runs it, against a raw git read of the same commits, both whole processes.

    python bench/bench_build_process.py --mirrors /work/mirrors [--config FILE] [--repeat 3]

raw    one shell: per repo `git ls-tree -r <pin> | (blob ids) | git cat-file --batch > /dev/null`
build  `python -m dataset_builder build --mirrors DIR --out TMP --cache-dir <fresh> --no-progress`
       (interpreter start-up, imports, reading, filters, redaction, dedup, parse checks, the `datasets`
       builder and the Parquet/card/manifest export: everything a cold run costs)
Rounds alternate raw and build; the best of `--repeat` is reported for each, with their ratio (target
<= 6x). Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
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


def _timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mirrors", type=Path, required=True)
    ap.add_argument("--config", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    script = raw_script(args.mirrors, args.config)
    raws, builds = [], []
    for i in range(args.repeat):
        raws.append(_timed(["bash", "-c", script]))
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "dataset_builder", "build", "--mirrors", str(args.mirrors)]
            cmd += ["--out", f"{tmp}/out", "--cache-dir", f"{tmp}/cache", "--no-progress"]
            cmd += ["--config", str(args.config)] if args.config else []
            builds.append(_timed(cmd))
            shutil.rmtree(tmp, ignore_errors=True)
        ratio = builds[-1] / raws[-1]
        print(f"round {i + 1}: raw {raws[-1]:.2f}s | cold build {builds[-1]:.2f}s ({ratio:.1f}x)")
    raw, build = min(raws), min(builds)
    print(
        f"cold build (whole process) {build:.2f}s vs raw read (whole process) {raw:.2f}s = {build / raw:.1f}x"
    )


if __name__ == "__main__":
    main()
