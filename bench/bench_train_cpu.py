"""Tiny-recipe training throughput on CPU (tokens/s), through the real `python -m training train` path.

    python bench/bench_train_cpu.py [--dataset /tmp/corpus-real] [--steps 30]

Without the real corpus it trains on a synthetic dataset folder. Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.__main__ import main as training_main
from training.data import write_corpus_folder


def synthetic_corpus(folder: Path) -> Path:
    def row(i: int) -> dict:
        body = "".join(f"def f{i}_{j}(x):\n    return x * {j} + {i}\n\n\n" for j in range(i % 9 + 1))
        return {"content": body, "language": "python", "repo": "synthetic", "path": f"f{i}.py"}

    return write_corpus_folder(folder, {"train": [row(i) for i in range(2000)], "validation": [row(-1)]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="/tmp/corpus-real")
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dataset = args.dataset if Path(args.dataset).exists() else str(synthetic_corpus(Path(tmp) / "corpus"))
        run = Path(tmp) / "run"
        overrides = [f"max_steps={args.steps}", "eval_strategy=no", "save_strategy=no"]
        overrides.append("dataset_test_split=null")
        training_main(
            ["train", "--recipe", "tiny", "--dataset", dataset, "--output-dir", str(run), "--set", *overrides]
        )
        summary = json.loads((run / "adapter" / "training_log.json").read_text())["summary"]
    tokens, seconds = summary["train_tokens"], summary["train_runtime_s"]
    print(f"tiny recipe on {dataset}: {summary['global_step']} steps, {tokens:,} tokens in {seconds:.1f} s")
    print(f"CPU training throughput: {tokens / seconds:,.0f} tokens/s ({summary['hardware']})")


if __name__ == "__main__":
    main()
