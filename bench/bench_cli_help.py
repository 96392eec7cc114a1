"""How long each command takes to print `--help`, timed as whole processes (start-up and imports included).

    python bench/bench_cli_help.py [--repeat 5]

The natural limit is the interpreter itself: `python -c pass` in the same environment. Prints the best of
`--repeat` runs per command and its ratio to that limit; the target is <= 1.0 s per command.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = [
    ["-c", "pass"],
    ["-m", "training", "--help"],
    ["-m", "training", "train", "--help"],
    ["-m", "training", "evaluate", "--help"],
    ["-m", "dataset_builder", "--help"],
    ["-m", "dataset_builder", "build", "--help"],
    ["push.py", "--help"],
    ["job.py", "--help"],
    ["-m", "model_card.stage", "--help"],
    ["-m", "training.mini_experiment", "--help"],
]


def best_of(argv: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    floor = best_of(COMMANDS[0], args.repeat)
    print(f"{'command':<44} {'best s':>7} {'x python -c pass':>17}")
    for argv in COMMANDS:
        t = best_of(argv, args.repeat)
        mark = "" if t <= 1.0 else "  > 1.0 s target"
        print(f"{'python ' + ' '.join(argv):<44} {t:7.3f} {t / floor:17.1f}{mark}")


if __name__ == "__main__":
    main()
