"""Full-parameter pretraining of a small Llama on code with no Flyte in it: the mini experiment's Code Llama.

Every machine with this project has the standard library's sources and those of its dependencies (numpy,
torch, transformers, ...), so an offline, CPU-only stand-in for Code Llama can be built from them
(`training.pretrain_corpus`, which keeps every Flyte package and every file that mentions Flyte out): a Code
Llama–style BPE (with the FIM tokens, `training.tiny`) is trained on a deterministic, byte-budgeted subset of
those `.py` files, then a small Llama is trained from scratch
on the same text with the same FIM objective the fine-tuning uses (`training.prepare.Preparer`), so the base
can already infill, as Code Llama can. Documents are packed into rows but attend only to themselves (position
ids restart per document, which transformers turns into a block-diagonal causal mask), as fine-tuning's
padding-free packing does. The run stops on `max_steps` / `max_tokens`, never on the clock, so the same recipe
and seed give the same weights. The result is a folder that `AutoModelForCausalLM` / `AutoTokenizer` load,
plus `pretrain_log.json` (files used, tokens seen, loss curve), written via a temp folder + rename.

    python -m training.pretrain --recipe mini-pretrain --out runs/mini/base [--set max_steps=1400]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from training import pretrain_corpus
from training.config_loader import parse_overrides, recipe_mapping, rule_problems, type_problems
from training.options import add_set_option
from training.packing import Packed, pack_sequences
from training.tiny_args import TINY_POSITIVE, TinyModelArguments, tiny_problems

# Not "general Python code": tests, GUIs, demos, vendored packages and generated tables (codecs, pydoc
# topics) would teach the model data files rather than code.
DEFAULT_EXCLUDE = [
    "test", "tests", "idlelib", "turtledemo", "site-packages", "lib2to3", "ensurepip", "encodings",
    "pydoc_data", "__pycache__", "tkinter", "config-*",
]  # fmt: skip


@dataclass
class PretrainConfig(TinyModelArguments):
    """One pretraining recipe (`training/recipes/mini-pretrain.yaml`); every field is checked on load.

    The tokenizer and model shape are the `tiny_*` fields (TinyModelArguments), the same names the `tiny`
    fine-tuning recipe uses, built by the same `training.tiny.build_tiny`.
    """

    recipe_name: str = field(default="custom", metadata={"help": "Recipe name, recorded in the log."})
    # --- corpus ---------------------------------------------------------------------------------------------
    stdlib_bytes: int = field(default=1_500_000, metadata={"help": "Byte budget of stdlib .py files."})
    packages: list[str] = field(
        default_factory=list,
        metadata={"help": "Installed non-Flyte packages whose .py sources are pretraining text too."},
    )
    package_bytes: int = field(default=0, metadata={"help": "Byte budget shared by `packages` (0 = none)."})
    max_file_bytes: int = field(default=100_000, metadata={"help": "Skip larger files (mostly data)."})
    exclude: list[str] = field(
        default_factory=lambda: list(DEFAULT_EXCLUDE),
        metadata={"help": "fnmatch patterns of folders to skip."},
    )
    heldout_files: int = field(
        default=8, metadata={"help": "Files kept out of training for a held-out loss."}
    )
    max_length: int = field(default=512, metadata={"help": "Context: block length and max positions."})
    # --- objective: Code Llama's FIM mix --------------------------------------------------------------------
    fim_rate: float = 0.9
    spm_rate: float = 0.5
    # --- optimisation ---------------------------------------------------------------------------------------
    batch_size: int = 8
    max_steps: int = field(default=200, metadata={"help": "Optimizer steps: the run's length."})
    max_tokens: int | None = field(
        default=None,
        metadata={"help": "Stop after this many row tokens (batch_size × max_length per step), if fewer "
                  "than max_steps give; null = max_steps alone."},
    )  # fmt: skip
    learning_rate: float = 2e-3
    min_lr_ratio: float = field(default=0.1, metadata={"help": "Cosine decays to learning_rate × this."})
    warmup_steps: int = 20
    weight_decay: float = 0.1
    max_grad_norm: float = 1.0
    logging_steps: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        problems = type_problems(self, {f.name for f in dataclasses.fields(self)})
        if not problems:
            problems = rule_problems(self, PRETRAIN_RULES) + tiny_problems(self)
            refused = pretrain_corpus.flyte_packages(self.packages)
            if refused:
                problems.append(f"packages {refused}: Flyte's code cannot be the proxy's pretraining text")
            if self.max_length < 64:
                problems.append(f"max_length={self.max_length}: must be at least 64 tokens")
        if problems:  # one line, as the fine-tuning recipes' errors
            raise ValueError(
                f"invalid pretraining recipe {self.recipe_name!r}: "
                + "; ".join(problems)
                + " (fix the recipe or --set)"
            )


# fmt: off
PRETRAIN_RULES = {
    **{name: "positive" for name in (
        *TINY_POSITIVE, "stdlib_bytes", "max_file_bytes", "batch_size", "max_steps", "logging_steps",
        "learning_rate", "max_tokens",
    )},
    **{name: "non_negative" for name in (
        "warmup_steps", "heldout_files", "weight_decay", "max_grad_norm", "seed", "package_bytes",
    )},
    **{name: "fraction" for name in ("fim_rate", "spm_rate", "min_lr_ratio")},
}
# fmt: on


def load_pretrain_config(recipe: str, overrides: dict[str, Any] | None = None) -> PretrainConfig:
    """`mini-pretrain` (training/recipes/) or a .yaml path, with `overrides`, through the same loader and
    checks as the fine-tuning recipes (training.config_loader); unknown keys are errors."""
    return PretrainConfig(**recipe_mapping(PretrainConfig, recipe, overrides))


def stdlib_files(config: PretrainConfig, root: Path | None = None) -> list[tuple[str, str]]:
    """[(path relative to the stdlib, text)] in a deterministic order, up to `stdlib_bytes` bytes."""
    return pretrain_corpus.stdlib_files(config.stdlib_bytes, config.exclude, config.max_file_bytes, root)


def corpus_files(
    config: PretrainConfig, stdlib_root: Path | None = None
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], dict[str, Any]]:
    """(train files, held-out files, what was read): the stdlib subset, its first `heldout_files` files held
    out, plus the recipe's `packages` up to `package_bytes` (training.pretrain_corpus: no Flyte in either).
    Train files are mixed in SHA-256 order of their paths, so the tokenizer's sample covers both sources."""
    dropped: dict[str, int] = {}
    std = pretrain_corpus.stdlib_files(
        config.stdlib_bytes, config.exclude, config.max_file_bytes, stdlib_root, dropped
    )
    heldout = std[: config.heldout_files] if len(std) > config.heldout_files else []
    pkgs, roots = pretrain_corpus.package_files(
        config.packages, config.package_bytes, config.exclude, config.max_file_bytes, dropped
    )
    train = sorted(std[len(heldout) :] + pkgs, key=lambda item: hashlib.sha256(item[0].encode()).hexdigest())
    info = {
        "stdlib": str(stdlib_root or sysconfig.get_paths()["stdlib"]),
        "packages": {name: {"path": root, "version": _dist_version(name)} for name, root in roots.items()},
        "stdlib_bytes": sum(len(t.encode("utf-8")) for _, t in std[len(heldout) :]),
        "package_bytes": sum(len(t.encode("utf-8")) for _, t in pkgs),
        "dropped": dict(sorted(dropped.items())),
    }
    return train, heldout, info


def _dist_version(package: str) -> str | None:
    from importlib import metadata

    for dist in metadata.packages_distributions().get(package, []):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def pack_documents(tokenizer, texts: list[str], config: PretrainConfig, seed: int) -> Packed:
    """Texts → FIM/CLM sequences (the fine-tuning's Preparer: FIM on documents that fit one context) →
    document-isolated rows of `max_length` tokens."""
    from training.prepare import (  # heavy (datasets): imported when run, not for --help
        Preparer,
        iter_examples,
    )

    preparer = Preparer(tokenizer, config.max_length, config.fim_rate, config.spm_rate)
    rng = np.random.default_rng(seed)
    stream = [ex.input_ids for ex in iter_examples(preparer, texts, ["python"] * len(texts), rng)]
    if not stream:
        raise ValueError("no text to pretrain on: raise stdlib_bytes")
    return pack_sequences(stream, config.max_length, tokenizer.pad_token_id)


def total_steps(config: PretrainConfig) -> int:
    """`max_steps`, or fewer when `max_tokens` (row tokens) is reached first."""
    if config.max_tokens is None:
        return config.max_steps
    return min(
        config.max_steps, max(1, math.ceil(config.max_tokens / (config.batch_size * config.max_length)))
    )


def lr_at(step: int, config: PretrainConfig) -> float:
    """Linear warmup, then cosine decay to `learning_rate × min_lr_ratio` at the run's last step."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, total_steps(config) - config.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return config.learning_rate * (config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine)


def mean_loss(model, packed: Packed, batch_size: int) -> float:
    """Mean next-token loss (nats) over every labelled token of `packed` (documents isolated)."""
    import torch

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(packed), batch_size):
            batch = packed.rows(slice(i, i + batch_size))
            n = int((batch["labels"][:, 1:] != -100).sum())
            if n:
                total += model(**batch, use_cache=False).loss.item() * n
                count += n
    model.train()
    return total / max(count, 1)


def pretrain(
    config: PretrainConfig, out: Path, stdlib_root: Path | None = None, overwrite: bool = False
) -> dict:
    """Build tokenizer + model, train them on the stdlib subset, save everything to `out`; returns the log."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists: pass another --out, or --overwrite to replace it")
    import torch
    from tqdm.auto import tqdm

    from training.tiny import build_tiny, save_base  # torch and transformers: when run, not for --help

    t0 = time.monotonic()
    torch.manual_seed(config.seed)
    train_files, heldout, sources = corpus_files(config, stdlib_root)
    texts = [text for _, text in train_files]
    # The context trained at is the model's maximum: evaluation's default context is what was trained.
    tokenizer, model = build_tiny(texts, config, config.max_length, config.seed)
    packed = pack_documents(tokenizer, texts, config, config.seed)
    heldout_packed = (
        pack_documents(tokenizer, [t for _, t in heldout], config, config.seed + 1) if heldout else None
    )
    prep_s = time.monotonic() - t0

    # Weight decay on matrices only (norms and nothing else are 1-D), as GPT/Llama training does.
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=config.learning_rate, betas=(0.9, 0.95))
    order = np.random.default_rng(config.seed).permutation(len(packed))
    steps = total_steps(config)
    history: list[dict[str, Any]] = []
    model.train()
    start, tokens, real_tokens = time.monotonic(), 0, 0
    bar = tqdm(total=steps, desc="pretrain", unit="step")
    running = []
    for step in range(steps):  # steps only: the clock never decides what the model sees
        idx = [order[(step * config.batch_size + j) % len(order)] for j in range(config.batch_size)]
        batch = packed.rows(idx)
        for group in optimizer.param_groups:
            group["lr"] = lr = lr_at(step, config)
        loss = model(**batch, use_cache=False).loss
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += batch["input_ids"].numel()
        real_tokens += int((batch["labels"] != -100).sum())
        running.append(loss.item())
        bar.update(1)
        bar.set_postfix(loss=f"{running[-1]:.3f}", tok_s=f"{tokens / (time.monotonic() - start):.0f}")
        if (step + 1) % config.logging_steps == 0 or step + 1 == steps:
            history.append(
                {
                    "step": step + 1,
                    "loss": round(float(np.mean(running)), 4),
                    "learning_rate": lr,
                    "grad_norm": round(float(grad_norm), 4),
                    "tokens": tokens,
                    "elapsed_s": round(time.monotonic() - start, 2),
                }
            )
            running = []
    bar.close()
    train_s = time.monotonic() - start
    log = {
        "config": dataclasses.asdict(config),
        "python": sys.version.split()[0],
        "sources": sources,
        "files": {"train": [rel for rel, _ in train_files], "heldout": [rel for rel, _ in heldout]},
        "corpus_sha256": hashlib.sha256("\0".join(texts).encode()).hexdigest(),
        "train_bytes": sum(len(t.encode("utf-8")) for t in texts),
        "train_rows": len(packed),
        "row_tokens": int(packed.input_ids.size),
        "padding_tokens": packed.padding,
        "sequences": packed.documents,
        "tokens_seen": tokens,  # row tokens (batch_size × max_length per step), padding included
        "labelled_tokens_seen": real_tokens,
        "epochs": round(tokens / max(packed.input_ids.size, 1), 3),
        "steps": steps,
        "stopped_by": "max_steps" if steps == config.max_steps else "max_tokens",
        "parameters": sum(p.numel() for p in model.parameters()),
        "final_train_loss": history[-1]["loss"] if history else None,
        "heldout_loss": mean_loss(model, heldout_packed, config.batch_size)
        if heldout_packed is not None
        else None,
        "prepare_s": round(prep_s, 2),
        "train_s": round(train_s, 2),
        "tokens_per_s": round(tokens / max(train_s, 1e-9), 1),
        "log_history": history,
    }
    save_base(model, tokenizer, out, {"pretrain_log.json": json.dumps(log, indent=2) + "\n"})
    return log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.pretrain", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--recipe",
        "--config",
        dest="recipe",
        default="mini-pretrain",
        help="pretraining recipe name or .yaml",
    )
    parser.add_argument("--out", required=True, help="base model folder to write")
    add_set_option(
        parser, "override recipe fields (repeatable: all are applied), as in `python -m training train`"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    args = parser.parse_args(argv)
    config = load_pretrain_config(args.recipe, parse_overrides(args.set))
    log = pretrain(config, Path(args.out), overwrite=args.overwrite)
    print(
        f"{log['parameters'] / 1e6:.2f}M params, {log['steps']} steps, {log['tokens_seen']:,} tokens "
        f"({log['epochs']} epochs of {log['train_bytes']:,} bytes) in {log['train_s']:.0f} s; "
        f"final train loss {log['final_train_loss']}, held-out loss {log['heldout_loss']}; wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
