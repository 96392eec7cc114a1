"""Evaluation throughput: sliding-window perplexity tokens/s and greedy infill generation tokens/s.

    python bench/bench_eval_cpu.py                          # the tiny recipe's model on CPU
    python bench/bench_eval_cpu.py --shapes codellama-7b --device cuda --dtype bfloat16 --context 4096

Throughput does not depend on weights or text, so the model is randomly initialised with the chosen shapes
and the documents are seeded random token ids of realistic lengths (the Flyte test split's files are a few
hundred to a few thousand tokens). The scoring and generation code is exactly what
`python -m training evaluate` runs (training.evaluate.score_documents, training.infill.generate_ids).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from transformers import LlamaConfig, LlamaForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.evaluate import score_documents
from training.infill import generate_ids

SHAPES = {
    # The tiny recipe's model (training/recipes/tiny.yaml).
    "tiny": dict(
        vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4
    ),
    # Code Llama 7B.
    "codellama-7b": dict(
        vocab_size=32016,
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
    ),
}


def build_model(shapes: str, context: int, device: str, dtype: torch.dtype) -> LlamaForCausalLM:
    s = SHAPES[shapes]
    config = LlamaConfig(**s, num_key_value_heads=s["num_attention_heads"], max_position_embeddings=context)
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with torch.device(device):  # initialise where it runs: a 7B init on CPU alone takes minutes
        default = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            model = LlamaForCausalLM(config)
        finally:
            torch.set_default_dtype(default)
    return model.eval()


def random_docs(vocab: int, num_docs: int, mean_tokens: int, seed: int = 0) -> list[list[int]]:
    """Seeded documents with log-normal lengths around `mean_tokens` (source files are skewed)."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(np.log(mean_tokens), 0.8, num_docs).astype(int), 8, 8 * mean_tokens)
    return [[1, *rng.integers(3, vocab, n).tolist(), 2] for n in lengths]


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", choices=sorted(SHAPES), default="tiny")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--context", type=int, default=256)
    p.add_argument("--strides", type=int, nargs="+", help="default: context and context // 2")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    p.add_argument("--docs", type=int, default=48)
    p.add_argument("--mean-tokens", type=int, default=400)
    p.add_argument("--gen-tasks", type=int, default=8)
    p.add_argument("--gen-prompt-tokens", type=int, default=200)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    torch.set_num_threads(torch.get_num_threads())
    model = build_model(args.shapes, args.context, args.device, dtype)
    params = sum(p.numel() for p in model.parameters())
    docs = random_docs(model.config.vocab_size, args.docs, args.mean_tokens)
    score_documents(model, docs[:2], args.context, args.context, 1, desc="warm-up")

    rows = []
    for stride in args.strides or [args.context, args.context // 2]:
        for batch_size in args.batch_sizes:
            sync(args.device)
            start = time.perf_counter()
            _, counts = score_documents(
                model, docs, args.context, stride, batch_size, desc=f"s{stride} b{batch_size}"
            )
            sync(args.device)
            seconds = time.perf_counter() - start
            rows.append(
                {"stride": stride, "batch_size": batch_size, "tokens": sum(counts), "seconds": seconds}
            )

    rng = np.random.default_rng(1)
    prompts = [
        rng.integers(3, model.config.vocab_size, args.gen_prompt_tokens).tolist()
        for _ in range(args.gen_tasks)
    ]
    gen = []
    for batch_size in args.batch_sizes:
        sync(args.device)
        start = time.perf_counter()
        # No stop id can occur (-1), so every task generates exactly max_new_tokens.
        out = generate_ids(
            model, prompts, [-1], 0, args.max_new_tokens, batch_size, desc=f"gen b{batch_size}"
        )
        sync(args.device)
        gen.append(
            {"batch_size": batch_size, "tokens": sum(map(len, out)), "seconds": time.perf_counter() - start}
        )

    device_name = (
        torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU x{torch.get_num_threads()}"
    )
    table = Table(
        title=f"evaluation: {args.shapes} ({params / 1e6:.2f}M params), {args.dtype}, {device_name}"
    )
    for col in ("what", "context", "stride", "batch", "tokens", "seconds", "tokens/s"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            "perplexity",
            str(args.context),
            str(r["stride"]),
            str(r["batch_size"]),
            f"{r['tokens']:,}",
            f"{r['seconds']:.2f}",
            f"{r['tokens'] / r['seconds']:,.0f}",
        )
    for g in gen:
        table.add_row(
            "greedy infill",
            f"{args.gen_prompt_tokens}+{args.max_new_tokens}",
            "-",
            str(g["batch_size"]),
            f"{g['tokens']:,}",
            f"{g['seconds']:.2f}",
            f"{g['tokens'] / g['seconds']:,.1f}",
        )
    Console().print(table)
    result = {
        "shapes": args.shapes,
        "params": params,
        "device": device_name,
        "dtype": args.dtype,
        "context": args.context,
        "perplexity": rows,
        "generation": gen,
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
