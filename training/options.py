"""The command-line options of `python -m training`: parsers only, so `--help` answers at once.

Nothing here imports torch, transformers, TRL or datasets; the commands' modules (prepare, train, evaluate,
complete) import them when they run. Each parser function adds its options to a given parser (the
subcommand's) or builds a stand-alone one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

INFILL_MODES = ("psm", "spm")
INFILL_MODE_HELP = "infilling prompt: prefix-suffix-middle (default) or Code Llama's suffix-first SPM"
FILL_TOKEN = "<FILL_ME>"
EVALUATE_HELP = "perplexity + infilling, base vs adapter, into eval_results.json"
COMPLETE_HELP = "greedy completion, or an infill when a suffix is given"


def positive_int(text: str) -> int:
    """argparse type: a whole number > 0 (`--max-new-tokens 0` is an error, not an empty run)."""
    return _int_at_least(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    """argparse type: a whole number >= 0."""
    return _int_at_least(text, 0, "an integer >= 0")


def _int_at_least(text: str, low: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < low:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def add_set_option(parser: argparse.ArgumentParser, help: str) -> None:
    """`--set KEY=VALUE ...`, repeatable, every value kept (the same option on every command)."""
    parser.add_argument("--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE", help=help)


def add_recipe_args(parser) -> None:
    """The options every recipe-driven `python -m training` command shares.

    Besides `--set KEY=VALUE`, any recipe field can be given TRL-style as `--KEY VALUE` (`--learning_rate
    1e-4`, a bare `--packing` for true), as TrlParser reads them: `python -m training` turns those into
    overrides applied after the `--set` ones, through the same validation (`_field_flags` marks the
    commands that take them).
    """
    parser.add_argument(
        "--recipe",
        "--config",
        dest="recipe",
        default="tiny",
        help="recipe name (training/recipes/) or a .yaml path; --config FILE is the same (TRL's name)",
    )
    parser.add_argument(
        "--dataset", help="dataset folder or Hub id: an alias of --dataset_name (the recipe field)"
    )
    parser.add_argument("--dataset-revision", help="Hub dataset revision (tag or commit)")
    add_set_option(
        parser,
        "override recipe fields, e.g. --set max_steps=10 fim_rate=0.5 (repeatable: all are applied); "
        "--KEY VALUE (TRL style, e.g. --learning_rate 1e-4) overrides a field too, applied after --set",
    )
    parser.set_defaults(_field_flags=True, field_flags=[])


def prepare_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of `python -m training prepare`."""
    add_recipe_args(parser)
    parser.add_argument("--split", default=None, help="corpus split (default: the recipe's train split)")
    parser.add_argument(
        "--dump", nargs=2, metavar=("N", "FILE"), help="write N prepared examples (all modes) as JSON lines"
    )
    return parser


def train_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of `python -m training train`."""
    add_recipe_args(parser)
    parser.add_argument(
        "--output-dir", "--output_dir", default=None, help="RUN folder (default: runs/<recipe>)"
    )
    parser.add_argument("--resume", action="store_true", help="continue from the latest RUN/checkpoints/*")
    return parser


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


PLAN_HELP = "what a recipe will do on a dataset: tokens, packed rows, steps, warmup, evals, memory"


def plan_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of `python -m training plan` (no model is loaded)."""
    add_recipe_args(parser)
    parser.add_argument(
        "--world-size", "--world_size", type=positive_int, default=1, help="processes (GPUs) to plan for"
    )
    parser.add_argument(
        "--tokenizer", help="tokenizer folder to count tokens with (default: the recipe's, when local)"
    )
    parser.add_argument(
        "--chars-per-token",
        type=positive_float,
        default=None,
        help="without a tokenizer, estimate tokens from characters at this ratio (default 3.0)",
    )
    return parser


def complete_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The options of `python -m training complete` (added to `parser` when one is given)."""
    p = parser or argparse.ArgumentParser(prog="python -m training complete", description=COMPLETE_HELP)
    p.add_argument("--base", help="base model: Hub id or folder (default: the adapter's recorded base)")
    p.add_argument("--base-revision", help="pinned revision of the base model on the Hub")
    p.add_argument("--adapter", help="adapter to apply on the base: a RUN/adapter folder or Hub id ORG/NAME")
    p.add_argument("--adapter-revision", help="with a Hub id as --adapter: its tag or commit (default: main)")
    text = p.add_mutually_exclusive_group(required=True)
    text.add_argument("--prefix", help="code before the cursor")
    text.add_argument("--prefix-file", type=Path, help="file holding the code before the cursor")
    text.add_argument("--prompt", help=f"code with one {FILL_TOKEN} marking the hole (or none: completion)")
    suffix = p.add_mutually_exclusive_group()
    suffix.add_argument("--suffix", help="code after the cursor: the model infills between the two")
    suffix.add_argument("--suffix-file", type=Path, help="file holding the code after the cursor")
    p.add_argument("--mode", choices=INFILL_MODES, default="psm", help=INFILL_MODE_HELP)
    p.add_argument(
        "--max-new-tokens",
        type=positive_int,
        default=128,
        help="at most this many new tokens (capped at what the model's context leaves after the prompt)",
    )
    p.add_argument("--dtype", help="bfloat16 | float16 | float32 (default: bfloat16 on GPU, else float32)")
    p.add_argument(
        "--context",
        type=non_negative_int,
        default=0,
        metavar="K",
        help="put the K best BM25 chunks of --index before the prefix, as evaluate --retrieval does (0: off)",
    )
    p.add_argument("--index", type=Path, help="retrieval index folder (evaluate --retrieval builds one)")
    p.add_argument(
        "--context-tokens", type=positive_int, default=512, help="token budget of the retrieved context"
    )
    p.add_argument("--language", default="python", help="language of the code, for the context's comments")
    return p
