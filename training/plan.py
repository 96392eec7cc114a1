"""`python -m training plan`: what a recipe will do on a dataset and a world size, without loading a model.

Documents and tokens of the train split, packed rows (the same chunking, FIM and packing code as `train`:
training/prepare.py then TRL's `pack_dataset`), and the schedule training/schedule.py derives from them:
optimizer steps, tokens per step, warmup, evaluations, checkpoints, plus an estimate of GPU memory.

Tokens are counted with a real tokenizer where one is at hand offline: the tiny recipe's (trained on the split
as `train` trains it), a local base folder's, or `--tokenizer PATH`. A Hub base (Code Llama) has none offline:
tokens are then estimated from characters at `--chars-per-token` (default prepare.CHARS_PER_TOKEN), and the
table says so.

Memory (per GPU, bytes): weights (params × 2 in bf16, × 4 in float32; a 4-bit base keeps its linear
layers at 4.127 bits, NF4 with double quantisation, and embeddings/norms at 2 bytes) + LoRA parameters × 16
(fp32 weight, gradient and two AdamW moments; × 10 with an 8-bit optimizer) + activations: with activation
checkpointing, every layer's input (b·s·h × 2) plus one layer recomputed, 34·b·s·h (Korthikanti et al.
2022, without the attention-score term that sdpa/flash attention do not store); without it, 34·b·s·h per
layer; + logits b·s·V × 10 (bf16 logits, their fp32 copy for the loss and its gradient).
b = per_device_train_batch_size, s = max_length, h = hidden size, V = vocabulary. CUDA context, allocator
slack and fragmentation are not in it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training import schedule
from training.config import TrainConfig, is_tiny

# Shapes of the Hub bases the recipes name, so memory can be estimated offline (config.json of each).
KNOWN_SHAPES = {
    "codellama/CodeLlama-7b-hf": {
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "intermediate_size": 11008,
        "vocab_size": 32016,
        "tie_word_embeddings": False,
    },
}
NF4_BYTES = 4.127 / 8  # NF4 with double quantisation (QLoRA paper: 4.127 bits per parameter)


@dataclass(frozen=True)
class Plan:
    recipe: str
    documents: int
    tokens: int
    sequences: int  # chunks (each ≤ max_length tokens) before packing
    tokens_counted: str  # "tokenizer ..." or "estimated at X chars/token"
    schedule: schedule.Schedule
    memory_gb: dict[str, float] | None  # None: the base's shape is not known offline


def model_shape(config: TrainConfig) -> dict[str, Any] | None:
    """The base's shape: the tiny fields, a local folder's config.json, or KNOWN_SHAPES (None: unknown)."""
    if is_tiny(config.model_name_or_path):
        return {
            "hidden_size": config.tiny_hidden_size,
            "num_hidden_layers": config.tiny_num_layers,
            "num_attention_heads": config.tiny_num_heads,
            "num_key_value_heads": config.tiny_num_heads,
            "intermediate_size": config.tiny_intermediate_size,
            "vocab_size": config.tiny_vocab_size,
            "tie_word_embeddings": False,
        }
    local = Path(config.model_name_or_path) / "config.json"
    if local.is_file():
        return json.loads(local.read_text())
    return KNOWN_SHAPES.get(config.model_name_or_path)


def memory_estimate(config: TrainConfig, shape: dict[str, Any]) -> dict[str, float]:
    """GB per GPU by part (the module docstring states the formula)."""
    h, layers, vocab = shape["hidden_size"], shape["num_hidden_layers"], shape["vocab_size"]
    inter = shape["intermediate_size"]
    kv = h * shape.get("num_key_value_heads", shape["num_attention_heads"]) // shape["num_attention_heads"]
    dims = {  # (in, out) of each linear layer of a Llama block
        "q_proj": (h, h), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (h, h),
        "gate_proj": (h, inter), "up_proj": (h, inter), "down_proj": (inter, h),
    }  # fmt: skip
    linear = layers * sum(i * o for i, o in dims.values())
    other = vocab * h * (1 if shape.get("tie_word_embeddings") else 2) + (2 * layers + 1) * h
    width = 4 if config.dtype == "float32" else 2
    weights = (linear * NF4_BYTES + other * 2) if config.load_in_4bit else (linear + other) * width
    lora = layers * sum(
        config.lora_r * (i + o) for name, (i, o) in dims.items() if name in config.lora_target_modules
    )
    state_bytes = 10 if "8bit" in str(getattr(config.optim, "value", config.optim)) else 16
    b, s = config.per_device_train_batch_size, config.max_length
    per_layer = 34 * b * s * h * width / 2  # Korthikanti et al.'s 34·sbh bytes are for 16-bit activations
    if config.activation_checkpointing:
        activations = layers * b * s * h * width + per_layer
    else:
        activations = layers * per_layer
    logits = b * s * vocab * 10
    parts = {
        "weights": weights,
        "LoRA + optimizer": lora * state_bytes,
        "activations": activations,
        "logits": logits,
    }
    gb = {k: v / 1e9 for k, v in parts.items()}
    return {**gb, "total": sum(gb.values()), "lora_params_M": lora / 1e6}


def sequence_lengths(config: TrainConfig, split, tokenizer=None, chars_per_token: float | None = None):
    """(token lengths of the training sequences, how they were counted). With a tokenizer: exactly what
    `train` prepares (prepare_split: chunking, FIM, EOS). Without: the same character chunks, each
    estimated at `chars_per_token` plus its special tokens."""
    from training.data import chunk_spans
    from training.prepare import CHARS_PER_TOKEN, FIM_OVERHEAD, Preparer, prepare_split

    if tokenizer is not None:
        preparer = Preparer(tokenizer, config.max_length, config.effective_fim_rate, config.spm_rate)
        ds, _ = prepare_split(split, preparer, config.seed, "plan: tokenize", config.max_train_docs)
        return [len(x) for x in ds["input_ids"]], f"tokenizer ({len(tokenizer)} tokens)"
    ratio = chars_per_token or CHARS_PER_TOKEN
    max_chars = int((config.max_length - FIM_OVERHEAD) * CHARS_PER_TOKEN)
    # BOS + EOS for a CLM sequence; BOS <PRE> <SUF> <MID> <EOT> EOS for a FIM one, weighted by the FIM rate.
    specials = round(2 + 4 * config.effective_fim_rate)
    limit = config.max_train_docs or len(split)
    lengths = []
    for row in split.select(range(min(limit, len(split)))):
        text = row["content"]
        for start, end in chunk_spans(text, row["language"], max_chars):
            lengths.append(min(config.max_length, math.ceil((end - start) / ratio) + specials))
    return lengths, f"estimated at {ratio:g} chars/token (no tokenizer offline)"


def packed_rows(lengths: list[int], config: TrainConfig) -> int:
    """Training rows after SFTTrainer's packing (TRL's own pack_dataset, on sequences of these lengths)."""
    if not config.packing:
        return len(lengths)
    import numpy as np
    import pyarrow as pa
    from datasets import Dataset
    from trl.data_utils import pack_dataset

    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int32)
    ids = pa.ListArray.from_arrays(pa.array(offsets), pa.array(np.zeros(offsets[-1], dtype=np.int32)))
    packed = pack_dataset(Dataset(pa.table({"input_ids": ids})), config.max_length, config.packing_strategy)
    return len(packed)


def make_plan(
    config: TrainConfig, split, world_size: int, tokenizer=None, chars_per_token: float | None = None
) -> Plan:
    """The plan for `config` on a train split (documents with `content` and `language`)."""
    lengths, counted = sequence_lengths(config, split, tokenizer, chars_per_token)
    sched = schedule.derive(config, packed_rows(lengths, config), world_size)
    shape = model_shape(config)
    documents = min(config.max_train_docs or len(split), len(split))
    memory = memory_estimate(config, shape) if shape else None
    return Plan(config.recipe_name, documents, sum(lengths), len(lengths), counted, sched, memory)


def problems(plan: Plan) -> list[str]:
    """Why this schedule would not really train: too few steps, or a run that ends inside its warmup."""
    out, s = [], plan.schedule
    if s.total_steps < 100:
        out.append(f"{s.total_steps} optimizer steps (< 100)")
    if s.warmup_steps >= s.total_steps:
        out.append(f"warmup ({s.warmup_steps} steps) never finishes in {s.total_steps} steps")
    return out


def print_plan(plan: Plan, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    s = plan.schedule
    table = Table(title=f"plan: {plan.recipe} on {s.world_size} process(es)")
    table.add_column("what")
    table.add_column("value", justify="right")
    rows = [
        ("documents (train)", f"{plan.documents:,}"),
        ("tokens", f"{plan.tokens:,} ({plan.tokens_counted})"),
        ("sequences → packed rows", f"{plan.sequences:,} → {s.packed_rows:,}"),
        ("rows per step (per device × accumulation × world)", f"{s.rows_per_step:,}"),
        ("gradient accumulation", str(s.gradient_accumulation_steps)),
        ("tokens per step (at most)", f"{s.tokens_per_step:,}"),
        ("optimizer steps (per epoch)", f"{s.total_steps:,} ({s.steps_per_epoch:,})"),
        ("warmup steps", f"{s.warmup_steps:,}"),
        ("evaluations (every N steps)", f"{s.evaluations} ({s.eval_steps or '-'}) + 1 final"),
        ("checkpoints (every N steps)", f"{s.checkpoints} ({s.save_steps or '-'})"),
    ]
    if plan.memory_gb:
        m = plan.memory_gb
        parts = ", ".join(f"{k} {v:.3g}" for k, v in m.items() if k not in ("total", "lora_params_M"))
        rows.append(("est. GPU memory per device (GB)", f"{m['total']:.3g} ({parts})"))
        rows.append(("LoRA parameters", f"{m['lora_params_M']:.3g} M"))
    else:
        rows.append(("est. GPU memory per device", "unknown (the base's config.json is not at hand)"))
    for what, value in rows:
        table.add_row(what, value)
    (console or Console()).print(table)
    for problem in problems(plan):
        (console or Console()).print(f"[yellow]warning:[/yellow] {problem}")


def train_plan(config: TrainConfig, world_size: int | None = None) -> Plan:
    """The plan `job.py` and the workflow print before training: the train split counted with the base's
    tokenizer when it is a local folder, else estimated from characters (the tiny base is not built yet).
    The world size is torch elastic's WORLD_SIZE (1 outside it)."""
    import os

    from training.data import load_corpus

    split = config.dataset_train_split
    corpus = load_corpus(config.dataset_name, config.dataset_revision, (split,))
    tokenizer = None
    if (Path(config.model_name_or_path) / "tokenizer_config.json").is_file():
        from training.modeling import load_tokenizer

        tokenizer = load_tokenizer(config.model_name_or_path)
    size = world_size or int(os.environ.get("WORLD_SIZE", "1"))
    return make_plan(config, corpus[split], size, tokenizer)


def run(args) -> int:
    from training.config import recipe_from_args
    from training.data import load_corpus

    config, _ = recipe_from_args(args, data_only=True)  # counts only: no GPU needed
    split = config.dataset_train_split
    corpus = load_corpus(config.dataset_name, config.dataset_revision, (split,))
    tokenizer = None
    if args.tokenizer:
        from training.modeling import load_tokenizer

        tokenizer = load_tokenizer(args.tokenizer)
    elif config.is_tiny or (Path(config.model_name_or_path) / "tokenizer_config.json").is_file():
        from training.prepare import tokenizer_for

        tokenizer = tokenizer_for(config, corpus[split])  # the tiny one is trained here as `train` does
    plan = make_plan(config, corpus[split], args.world_size, tokenizer, args.chars_per_token)
    print_plan(plan)
    return 0
