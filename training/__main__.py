"""`python -m training <command>`: prepare, train (and the evaluation commands registered in COMMANDS).

Adding a command: write `add_<name>_args(parser)` and `run_<name>(args)` in its module and add one line to
COMMANDS below. Every command takes --recipe and --set KEY=VALUE overrides (see training/config.py).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# name → (module, help). The module provides add_args(parser) and run(args) -> int.
COMMANDS: dict[str, tuple[str, str]] = {
    "prepare": ("training.prepare", "tokenize + chunk + FIM a corpus split; --dump N FILE.jsonl"),
    "train": ("training.train", "LoRA fine-tuning with SFTTrainer into --output-dir RUN"),
    "evaluate": ("training.evaluate", "perplexity + infilling, base vs adapter, into eval_results.json"),
    "complete": ("training.complete", "greedy completion, or an infill when a suffix is given"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_, description=help_)
        importlib.import_module(module).add_args(cmd)
        cmd.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return importlib.import_module(args._module).run(args)
    except (ValueError, OSError, RuntimeError) as exc:
        # Our errors say what to do; show that, not a traceback (unless asked for, to debug).
        if os.environ.get("FLYTE_LLAMA_TRACEBACK"):
            raise
        print(f"error: {exc}\n(set FLYTE_LLAMA_TRACEBACK=1 for the full traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
