"""4k or 16k context for the 7B recipes: what each costs and what each buys, from the corpus itself.

    python bench/context_choice.py --dataset /tmp/corpus-real [--recipe codellama-7b-lora] [--mfu 0.4]

No GPU and no model: the same arithmetic as bench/gpu_train_throughput.py (training FLOPs = 6 · params per
token for full training, 4 · params for LoRA, whose frozen weights need no weight gradients; plus causal
attention, 6 · layers · hidden · n per token of an n-token sequence, forward and backward) applied to the
sequences `python -m training plan` would prepare at each context, and the plan's memory estimate. Packing
is padding-free and document-isolated, so a token attends only within its own sequence: a longer context
costs attention only where documents are longer than the shorter one. Both contexts keep the recipe's tokens
per optimizer step (rows per step shrink as rows grow), so the schedule is the same.

What a context buys is measured on the same split: the share of characters in documents that fit one
context, the only ones FIM is applied to (Code Llama's rule, training/prepare.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PEAK_FLOPS = 989e12  # H100 SXM dense bf16, as bench/gpu_train_throughput.py


def context_row(recipe: str, overrides: dict, split, shape: dict, max_length: int, mfu: float) -> dict:
    from fim_coverage import coverage  # this folder is on sys.path when the script runs

    from training.config import load_recipe
    from training.plan import memory_estimate, sequence_lengths

    config = load_recipe(recipe, overrides)
    per_device = max(1, config.per_device_train_batch_size * config.max_length // max_length)
    sized = {"max_length": max_length, "per_device_train_batch_size": per_device}
    cfg = load_recipe(recipe, {**overrides, **sized})
    lengths, _ = sequence_lengths(cfg, split)
    h, layers = shape["hidden_size"], shape["num_hidden_layers"]
    memory = memory_estimate(cfg, shape)
    params = 6.74e9  # Code Llama 7B
    tokens = sum(lengths)
    dense = 4 * params * tokens  # LoRA: activation gradients only through the frozen weights
    attention = sum(6 * layers * h * n * n / 2 for n in lengths)  # causal: half the n² pairs
    reach = coverage(split["content"], split["language"], max_length)  # bench/fim_coverage.py's count
    flops = dense + attention
    return {
        "max_length": max_length,
        "sequences": len(lengths),
        "tokens": tokens,
        "attention_share": attention / flops,
        "flops_per_epoch": flops,
        "gpu_hours_per_epoch": flops / (PEAK_FLOPS * mfu) / 3600,
        "rows_per_device": per_device,
        "memory_gb": memory["total"],
        "fim_reachable_chars": 1 - reach["long_characters_share"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="corpus folder (python -m dataset_builder build)")
    parser.add_argument("--recipe", default="codellama-7b-lora")
    parser.add_argument("--contexts", type=int, nargs="+", default=[4096, 16384])
    parser.add_argument("--mfu", type=float, default=0.4, help="assumed model FLOP utilisation for hours")
    args = parser.parse_args(argv)

    from training.config import load_recipe
    from training.data import load_corpus
    from training.plan import KNOWN_SHAPES

    # counts only: the device settings do not change the arithmetic (dtype, which does, stays bf16)
    overrides = {"dataset_name": args.dataset, "use_cpu": True, "bf16": False}
    config = load_recipe(args.recipe, overrides)
    split = load_corpus(args.dataset, None, ("train",))["train"]
    shape = KNOWN_SHAPES[config.model_name_or_path]
    rows = [context_row(args.recipe, overrides, split, shape, n, args.mfu) for n in args.contexts]
    base = rows[0]
    print(f"{args.recipe} on {len(split):,} train files, {config.global_batch_tokens:,} tokens per step")
    print(
        "context  sequences  tokens(est)  attn share  FLOPs/epoch  x first  H100-h/epoch@MFU  rows/dev"
        "  mem GB  FIM-reachable chars"
    )
    for r in rows:
        print(
            f"{r['max_length']:>7,}  {r['sequences']:>9,}  {r['tokens']:>11,}  {r['attention_share']:>10.1%}"
            f"  {r['flops_per_epoch']:>11.3e}  {r['flops_per_epoch'] / base['flops_per_epoch']:>7.3f}"
            f"  {r['gpu_hours_per_epoch']:>16.2f}  {r['rows_per_device']:>8}  {r['memory_gb']:>6.1f}"
            f"  {r['fim_reachable_chars']:>19.1%}"
        )


if __name__ == "__main__":
    main()
