"""`python -m training complete`: a completion, or an infill when a suffix is given — the local Hub widget.

    python -m training complete --base codellama/CodeLlama-7b-hf --adapter RUN/adapter --prefix "@task\\ndef "
    python -m training complete --adapter RUN/adapter --prefix-file head.py --suffix-file tail.py
    python -m training complete --adapter RUN/adapter --prompt 'def add(a, b):\\n    <FILL_ME>\\n'

A prompt holding `<FILL_ME>` (what the model card shows users) is split there into prefix and suffix.
Generation is greedy, so the same model and prompt always print the same text.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from training.evaluate import load_models
from training.fim import INFILL_MODE_HELP, INFILL_MODES, fim_tokens, infill_prompt_ids
from training.infill import decode_middle, generate_ids

FILL_TOKEN = "<FILL_ME>"


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The options of `python -m training complete` (added to `parser` when one is given)."""
    p = parser or argparse.ArgumentParser(prog="python -m training complete", description=__doc__)
    p.add_argument("--base", help="base model: Hub id or folder (default: the adapter's recorded base)")
    p.add_argument("--base-revision", help="pinned revision of the base model on the Hub")
    p.add_argument("--adapter", help="RUN/adapter folder (or a staged Hub folder) to apply on the base")
    text = p.add_mutually_exclusive_group(required=True)
    text.add_argument("--prefix", help="code before the cursor")
    text.add_argument("--prefix-file", type=Path, help="file holding the code before the cursor")
    text.add_argument("--prompt", help=f"code with one {FILL_TOKEN} marking the hole (or none: completion)")
    suffix = p.add_mutually_exclusive_group()
    suffix.add_argument("--suffix", help="code after the cursor: the model infills between the two")
    suffix.add_argument("--suffix-file", type=Path, help="file holding the code after the cursor")
    p.add_argument("--mode", choices=INFILL_MODES, default="psm", help=INFILL_MODE_HELP)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--dtype", help="bfloat16 | float16 | float32 (default: bfloat16 on GPU, else float32)")
    return p


def split_prompt(prompt: str) -> tuple[str, str | None]:
    """(prefix, suffix) of a prompt with one <FILL_ME>; (prompt, None) when it has none."""
    parts = prompt.split(FILL_TOKEN)
    if len(parts) > 2:
        raise ValueError(f"the prompt holds {len(parts) - 1} {FILL_TOKEN} markers; use one (or none)")
    return (parts[0], parts[1]) if len(parts) == 2 else (prompt, None)


def resolve_text(args: argparse.Namespace) -> tuple[str, str | None]:
    """(prefix, suffix or None) from --prompt, --prefix[-file] and --suffix[-file]."""
    if args.prompt is not None:
        if args.suffix is not None or args.suffix_file is not None:
            raise ValueError(
                f"--prompt carries its own suffix after {FILL_TOKEN}: drop --suffix/--suffix-file"
            )
        return split_prompt(args.prompt)
    prefix = args.prefix if args.prefix is not None else args.prefix_file.read_text(encoding="utf-8")
    if args.suffix_file is not None:
        return prefix, args.suffix_file.read_text(encoding="utf-8")
    return prefix, args.suffix


def complete(
    model, tokenizer, prefix: str, suffix: str | None = None, max_new_tokens: int = 128, mode: str = "psm"
) -> str:
    """Greedy completion of `prefix` (until EOS), or the infill between `prefix` and `suffix` (until <EOT>)
    with `mode`'s prompt (PSM or SPM)."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if suffix is None:
        prompt = [tokenizer.bos_token_id, *tokenizer.encode(prefix, add_special_tokens=False)]
        stops = [tokenizer.eos_token_id]
    else:
        prompt = infill_prompt_ids(tokenizer, prefix, suffix, mode)
        fim = fim_tokens(tokenizer)
        stops = [fim.eot_id, fim.eos_id]
    (new,) = generate_ids(model, [prompt], stops, pad_id, max_new_tokens)
    # The continuation follows text already there, so no SentencePiece leading space may be stripped.
    return decode_middle(tokenizer, new)


def add_args(parser: argparse.ArgumentParser) -> None:
    """Hook for training/__main__.py's COMMANDS registry."""
    build_parser(parser)


def run(args: argparse.Namespace) -> int:
    """Hook for training/__main__.py's COMMANDS registry."""
    complete_args(args)
    return 0


def complete_main(argv: Sequence[str] | None = None) -> str:
    """`python -m training complete` as a function: parses `argv`, prints and returns the generated text."""
    return complete_args(build_parser().parse_args(argv))


def complete_args(args: argparse.Namespace) -> str:
    """Load the model(s), generate, print the text."""
    prefix, suffix = resolve_text(args)
    if args.adapter is not None and not (Path(args.adapter) / "adapter_config.json").is_file():
        raise FileNotFoundError(
            f"{args.adapter}/adapter_config.json not found: --adapter must be a RUN/adapter folder"
        )
    dtype = args.dtype or ("bfloat16" if torch.cuda.is_available() else "float32")
    model, tokenizer, _, _ = load_models(args.base, args.base_revision, args.adapter, dtype)
    text = complete(model, tokenizer, prefix, suffix, args.max_new_tokens, args.mode)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return text
