"""GPU training throughput: the codellama-7b-lora settings vs a naive setup, on the corpus' length mix.

    python bench/bench_prepare.py --lengths-out bench/doc_token_lengths.json      # on CPU, from the corpus
    python bench/gpu_train_throughput.py --lengths bench/doc_token_lengths.json   # on one H100, < 5 min

No downloads: a randomly initialised Llama with Code Llama 7B's shapes (hidden 4096, 32 layers, 32 heads,
intermediate 11008, vocab 32016) — throughput and memory do not depend on the weights. Both setups train
LoRA r=16/alpha=32 on q,k,v,o,gate,up,down in bf16 with activation checkpointing:
  recipe: documents chunked to the recipe's max_length (CONTEXT, read from the recipe: 16,384),
          best-fit-decreasing packed into CONTEXT-token rows, padding-free (one flat batch with position_ids
          restarting per document, as TRL's bfd packing feeds the model);
  naive:  one document per row, padded to CONTEXT (the earlier attempt's setup).
Prints real (non-padding) tokens/s, MFU and the ratio. MFU = 6 · params · tokens/s ÷ 989 TFLOP/s (H100 SXM
dense bf16 peak); LoRA skips weight gradients, so a "LoRA-adjusted" MFU with 4 · params (forward +
activation-gradient backward) is printed too. Attention FLOPs are not counted.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

PEAK_FLOPS = 989e12
RECIPE = Path(__file__).resolve().parents[1] / "training" / "recipes" / "codellama-7b-lora.yaml"


def _recipe_context() -> int:
    """The recipe's max_length (the setting measured); pyyaml comes with transformers on the GPU machine."""
    import yaml

    return int(yaml.safe_load(RECIPE.read_text())["max_length"])


CONTEXT = _recipe_context()
CHUNK_BUDGET = CONTEXT - 16  # as training/prepare.py leaves room for the FIM tokens


def use_context(tokens: int) -> None:
    """Measure at another context than the recipe's (`--context`, e.g. a CPU smoke run): the functions below
    read CONTEXT and CHUNK_BUDGET, set here once before any of them runs."""
    global CONTEXT, CHUNK_BUDGET
    CONTEXT, CHUNK_BUDGET = tokens, tokens - 16


def doc_lengths(path: str, n_tokens: int, seed: int) -> list[int]:
    """Sample documents from the corpus distribution (chunked to the context) until n_tokens are drawn."""
    rng = np.random.default_rng(seed)
    pool = json.loads(Path(path).read_text())
    out = []
    while sum(out) < n_tokens:
        length = int(pool[rng.integers(len(pool))]) + 2  # BOS + EOS
        while length > CHUNK_BUDGET:
            out.append(CHUNK_BUDGET)
            length -= CHUNK_BUDGET
        out.append(max(length, 2))
    return out


def chunk_lengths(pool: list[int]) -> list[int]:
    """Every document of the corpus (+ BOS/EOS) cut into chunks of at most CHUNK_BUDGET tokens."""
    out = []
    for n in pool:
        length = int(n) + 2
        out += [CHUNK_BUDGET] * ((length - 1) // CHUNK_BUDGET) + [(length - 1) % CHUNK_BUDGET + 1]
    return out


def length_mix(path: str) -> dict[str, float]:
    """What the whole corpus' length mix implies, with no model: the share of each CONTEXT-token row that is
    real tokens when every chunk gets its own padded row (naive) vs best-fit-decreasing packing (recipe).
    Their quotient bounds the recipe/naive throughput ratio when compute scales with row count (padded
    positions cost as much as real ones); attention's quadratic term moves the measured ratio off it."""
    pool = json.loads(Path(path).read_text())
    chunks = chunk_lengths(pool)
    rows = bfd_rows(chunks)
    naive_fill = sum(chunks) / (len(chunks) * CONTEXT)
    packed_fill = sum(chunks) / (len(rows) * CONTEXT)
    return {
        "documents": len(pool),
        "mean_tokens": float(np.mean(pool)),
        "median_tokens": float(np.median(pool)),
        "p90_tokens": float(np.percentile(pool, 90)),
        "over_context": float(np.mean(np.asarray(pool) + 2 > CHUNK_BUDGET)),
        "chunks": len(chunks),
        "naive_rows": len(chunks),
        "packed_rows": len(rows),
        "naive_fill": naive_fill,
        "packed_fill": packed_fill,
        "row_ratio": packed_fill / naive_fill,
    }


def print_length_mix(path: str) -> None:
    m = length_mix(path)
    print(
        f"length mix: {m['documents']:,} documents, mean {m['mean_tokens']:.0f} / median "
        f"{m['median_tokens']:.0f} / p90 {m['p90_tokens']:.0f} tokens, {m['over_context']:.1%} over one "
        f"{CHUNK_BUDGET}-token chunk → {m['chunks']:,} chunks"
    )
    print(
        f"real tokens per {CONTEXT}-token row: naive {m['naive_fill']:.1%} ({m['naive_rows']:,} rows), "
        f"bfd packed {m['packed_fill']:.1%} ({m['packed_rows']:,} rows): {m['row_ratio']:.2f}x fewer rows"
    )


def bfd_rows(lengths: list[int]) -> list[list[int]]:
    """Best-fit decreasing bin packing into CONTEXT-token rows (what TRL's `bfd` strategy does)."""
    rows: list[list[int]] = []
    space: list[int] = []
    for length in sorted(lengths, reverse=True):
        best = min((i for i, s in enumerate(space) if s >= length), key=lambda i: space[i], default=None)
        if best is None:
            rows.append([length])
            space.append(CONTEXT - length)
        else:
            rows[best].append(length)
            space[best] -= length
    return rows


# Code Llama 7B's shapes; `tiny` only proves the script runs end to end on a CPU (`--device cpu`).
SHAPES = {
    "codellama-7b": dict(
        vocab_size=32016,
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
    ),
    "tiny": dict(
        vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4
    ),
}


def build_model(attn: str, shapes: str = "codellama-7b", device: str = "cuda"):
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    shape = SHAPES[shapes]
    config = LlamaConfig(
        num_key_value_heads=shape["num_attention_heads"],
        max_position_embeddings=16384,
        rope_theta=1_000_000.0,
        attn_implementation=attn,
        **shape,
    )
    torch.set_default_dtype(torch.bfloat16)
    with torch.device(device):
        model = LlamaForCausalLM(config)
    torch.set_default_dtype(torch.float32)
    params = sum(p.numel() for p in model.parameters())
    model.config.use_cache = False
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    model = get_peft_model(
        model, LoraConfig(r=16, lora_alpha=32, target_modules=targets, task_type="CAUSAL_LM")
    )
    return model, params


def packed_batch(rows: list[list[int]], vocab: int, device: str = "cuda"):
    """Padding-free: all documents of the rows in one flat sequence, position_ids restarting per document."""
    lengths = [n for row in rows for n in row]
    total = sum(lengths)
    ids = torch.randint(3, vocab, (1, total), device=device)
    pos = torch.cat([torch.arange(n, device=device) for n in lengths]).unsqueeze(0)
    return {"input_ids": ids, "position_ids": pos, "labels": ids.clone()}, total


def padded_batch(docs: list[int], vocab: int, device: str = "cuda"):
    ids = torch.randint(3, vocab, (len(docs), CONTEXT), device=device)
    mask = torch.zeros_like(ids)
    for i, n in enumerate(docs):
        mask[i, :n] = 1
    labels = ids.masked_fill(mask == 0, -100)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}, sum(docs)


def measure(model, batches, warmup: int) -> float:
    """Real tokens/s over `batches` after `warmup` untimed steps (forward + backward + AdamW step)."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    tokens, start = 0, None
    for step, (batch, n) in enumerate(batches):
        if step == warmup:
            _sync()
            start, tokens = time.perf_counter(), 0
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += n
    _sync()
    return tokens / (time.perf_counter() - start)


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", required=True, help="JSON list of document token lengths")
    parser.add_argument(
        "--context", type=int, default=CONTEXT, help=f"row length (default: the recipe's, {CONTEXT})"
    )
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rows-per-step", type=int, default=1, help="per-device batch (recipe: 1)")
    parser.add_argument("--shapes", choices=sorted(SHAPES), default="codellama-7b")
    parser.add_argument(
        "--device", default="cuda", help="cuda (the benchmark) or cpu (a smoke run, --shapes tiny)"
    )
    parser.add_argument(
        "--length-mix-only",
        action="store_true",
        help="print what the length mix implies (row fill naive vs packed) and stop: no model, any machine",
    )
    args = parser.parse_args(argv)
    use_context(args.context)
    print_length_mix(args.lengths)
    if args.length_mix_only:
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            "needs a CUDA GPU (this prepared benchmark is meant for one H100); --device cpu --shapes tiny"
        )
    import importlib.util

    attn = "flash_attention_2" if importlib.util.find_spec("flash_attn") and args.device == "cuda" else "sdpa"
    model, params = build_model(attn, args.shapes, args.device)
    vocab = SHAPES[args.shapes]["vocab_size"] - 16  # random ids below the special tokens
    device = args.device
    n_steps, k = args.steps + args.warmup, args.rows_per_step
    rows = bfd_rows(doc_lengths(args.lengths, n_steps * k * CONTEXT, seed=0))
    packed = [packed_batch(rows[i * k : (i + 1) * k], vocab, device) for i in range(n_steps)]
    docs = doc_lengths(args.lengths, n_steps * k * CONTEXT, seed=1)[: n_steps * k]
    naive = [padded_batch(docs[i * k : (i + 1) * k], vocab, device) for i in range(n_steps)]
    fill = sum(sum(r) for r in rows[: n_steps * k]) / (n_steps * k * CONTEXT)
    name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    print(f"{name}, {params / 1e9:.2f} B params, attention {attn}, rows/step {k}")
    print(f"packed row fill {fill:.1%}; naive mean document {np.mean(docs):.0f} tokens of {CONTEXT}")
    results = {}
    setups = (("recipe (bfd packed, padding-free)", packed), (f"naive (padded to {CONTEXT})", naive))
    for name, batches in setups:
        tps = measure(model, batches, args.warmup)
        results[name] = tps
        mfu, lora_mfu = 6 * params * tps / PEAK_FLOPS, 4 * params * tps / PEAK_FLOPS
        print(f"{name:36s} {tps:10,.0f} tokens/s  MFU {mfu:6.1%}  LoRA-adjusted MFU {lora_mfu:6.1%}")
    recipe, naive_tps = results.values()
    peak_gib = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
    print(f"ratio recipe / naive: {recipe / naive_tps:.2f}x; peak memory {peak_gib:.1f} GiB")


if __name__ == "__main__":
    main()
