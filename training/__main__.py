"""`python -m training <command>`: prepare, train, plan (and the evaluation commands registered in COMMANDS).

`train`, `prepare` and `plan` read a recipe (`--recipe NAME` or `--config FILE.yaml`) and take its fields as
`--set KEY=VALUE` (repeatable) or TRL-style `--KEY VALUE`, e.g.
`python -m training train --config recipe.yaml --learning_rate 1e-4 --output_dir RUN`.

Adding a command: write its options as `<name>_parser(parser)` in training/options.py (no heavy imports
there, so `--help` answers at once) and `run(args) -> int` in its module, and add one line to COMMANDS.
Bad input ends with exit status 2 and one line `error: ...`; set FLYTE_LLAMA_TRACEBACK=1 to see the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from typing import NoReturn

from training import eval_config, options
from training.config_loader import field_flags

# name → (module whose run(args) -> int does the work, imported only then; its options; help).
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], object], str]] = {
    "prepare": (
        "training.prepare",
        options.prepare_parser,
        "tokenize + chunk + FIM a corpus split; --dump N FILE.jsonl",
    ),
    "train": (
        "training.train",
        options.train_parser,
        "LoRA fine-tuning with SFTTrainer into --output-dir RUN",
    ),
    "plan": ("training.plan", options.plan_parser, options.PLAN_HELP),
    "evaluate": ("training.evaluate", eval_config.evaluate_parser, options.EVALUATE_HELP),
    "complete": ("training.complete", options.complete_parser, options.COMPLETE_HELP),
}


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a bad option is one line `error: ...` (no usage block), like every other error here."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="python -m training",
        description=__doc__.splitlines()[0],
        epilog="Errors are one line; FLYTE_LLAMA_TRACEBACK=1 shows the full traceback.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, add_options, help_) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_, description=help_)
        add_options(cmd)
        cmd.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra and getattr(args, "_field_flags", False):
            # TRL-style `--learning_rate 1e-4`: a recipe field, checked with the recipe (unknown → error).
            try:
                args.field_flags = field_flags(extra)
            except ValueError as exc:
                parser.error(str(exc))
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # a bad option (status 2, already printed) or --help (0)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return importlib.import_module(args._module).run(args)
    except (ValueError, OSError, RuntimeError) as exc:
        # Our errors say what to do; show that, not a traceback (unless asked for, to debug).
        if os.environ.get("FLYTE_LLAMA_TRACEBACK"):
            raise
        # One line, whatever the message: a library's multi-line text is joined.
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        print(f"error: {' '.join(lines) or type(exc).__name__}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
