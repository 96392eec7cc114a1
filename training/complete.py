"""`python -m training complete`: a completion, or an infill when a suffix is given — the local Hub widget.

    python -m training complete --base codellama/CodeLlama-7b-hf --adapter RUN/adapter \\
        --prefix $'@task\\ndef '
    python -m training complete --adapter RUN/adapter --prefix-file head.py --suffix-file tail.py
    python -m training complete --adapter RUN/adapter --prompt $'def add(a, b):\\n    <FILL_ME>\\n'
    python -m training complete --adapter ORG/flyte-llama-7b-lora --prefix-file f.py

`--adapter` is a RUN/adapter (or staged) folder or a Hub id (training/adapter_source.py). In bash, `$'...'`
turns `\\n` into a newline; inside plain single quotes it stays a backslash and an `n`.

A prompt holding `<FILL_ME>` (what the model card shows users) is split there into prefix and suffix.
Generation is greedy, so the same model and prompt always print the same text.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from training.evaluate import load_models, resolve_adapter_arg
from training.fim import fim_tokens, infill_prompt_ids
from training.infill import decode_middle, generate_ids
from training.options import FILL_TOKEN, complete_parser


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
    prefix = args.prefix if args.prefix is not None else _read_text(args.prefix_file, "--prefix-file")
    if args.suffix_file is not None:
        return prefix, _read_text(args.suffix_file, "--suffix-file")
    return prefix, args.suffix


def _read_text(path: Path, flag: str) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"{flag} {path}: no such file; pass a text file with the code")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{flag} {path} is not UTF-8 text: pass a source file saved as UTF-8") from exc


def context_length(model) -> int | None:
    """The positions the model was built for (`max_position_embeddings`), or None when it names none."""
    config = getattr(model, "config", None)
    value = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    return value if isinstance(value, int) and value > 0 else None


def cap_new_tokens(model, prompt_tokens: int, requested: int) -> int:
    """`requested`, or what the context leaves after the prompt when that is less (said on stderr).

    Clamping, not refusing, is what a user asking for "a lot" expects; a prompt that leaves no room for a
    single token is an error, since nothing could be generated."""
    if requested < 1:
        raise ValueError(f"max_new_tokens={requested}: must be at least 1")
    limit = context_length(model)
    if limit is None:
        return requested
    room = limit - prompt_tokens
    if room < 1:
        raise ValueError(
            f"the prompt is {prompt_tokens} tokens and fills the model's {limit}-token context: "
            "shorten the prefix/suffix"
        )
    if requested > room:
        print(
            f"note: --max-new-tokens {requested} capped at {room}: the prompt takes {prompt_tokens} of the "
            f"model's {limit} positions",
            file=sys.stderr,
        )
        return room
    return requested


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
    max_new_tokens = cap_new_tokens(model, len(prompt), max_new_tokens)
    (new,) = generate_ids(model, [prompt], stops, pad_id, max_new_tokens)
    # The continuation follows text already there, so no SentencePiece leading space may be stripped.
    return decode_middle(tokenizer, new)


def with_retrieved_context(
    tokenizer, prefix: str, suffix: str | None, index: Path, k: int, budget: int, language: str
) -> str:
    """`prefix` with the `k` best chunks of the retrieval index before it, in at most `budget` tokens: the
    construction `evaluate --retrieval` measured (training/evaluation/crossfile.py)."""
    from training.evaluation.crossfile import build_context
    from training.evaluation.retrieval import Retriever, query_text

    hits = Retriever.load(index).top_k(query_text(prefix, suffix), k)
    return build_context(tokenizer, [c for c, _ in hits], language, budget).text + prefix


def run(args: argparse.Namespace) -> int:
    """Hook for training/__main__.py's COMMANDS registry."""
    complete_args(args)
    return 0


def complete_main(argv: Sequence[str] | None = None) -> str:
    """`python -m training complete` as a function: parses `argv`, prints and returns the generated text."""
    return complete_args(complete_parser().parse_args(argv))


def complete_args(args: argparse.Namespace) -> str:
    """Load the model(s), generate, print the text."""
    prefix, suffix = resolve_text(args)
    k = getattr(args, "context", 0)
    if k and getattr(args, "index", None) is None:
        raise ValueError("--context K needs --index DIR: a retrieval index (evaluate --retrieval builds one)")
    # A folder or a Hub id (training/adapter_source.py); resolved before the base model is loaded.
    adapter, _ = resolve_adapter_arg(args.adapter, getattr(args, "adapter_revision", None))
    dtype = args.dtype or ("bfloat16" if torch.cuda.is_available() else "float32")
    model, tokenizer, _, _ = load_models(args.base, args.base_revision, adapter, dtype)
    if k:
        prefix = with_retrieved_context(
            tokenizer, prefix, suffix, args.index, k, args.context_tokens, args.language
        )
    text = complete(model, tokenizer, prefix, suffix, args.max_new_tokens, args.mode)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return text
