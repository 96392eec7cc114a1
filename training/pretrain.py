"""Full-parameter pretraining of a small Llama on Python's standard library: the mini experiment's Code Llama.

Every machine with Python has the standard library's sources, so an offline, CPU-only stand-in for Code Llama
can be built from them: a Code Llama–style BPE (with the FIM tokens, `training.tiny`) is trained on a
deterministic, byte-budgeted subset of the stdlib's `.py` files, then a small Llama is trained from scratch
on the same text with the same FIM objective the fine-tuning uses (`training.prepare.Preparer`), so the base
can already infill, as Code Llama can. The result is a folder that `AutoModelForCausalLM` / `AutoTokenizer`
load, plus `pretrain_log.json` (files used, tokens seen, loss curve), written via a temp folder + rename.

    python -m training.pretrain --recipe mini-pretrain --out runs/mini/base [--set max_minutes=7.2]
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import hashlib
import json
import math
import shutil
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm

from dataset_builder.atomic import replace_dir
from training.config import RECIPES_DIR, _check_types, parse_overrides
from training.prepare import Preparer, iter_examples
from training.tiny import build_tiny_model, build_tiny_tokenizer, sample_texts

# Not "general Python code": tests, GUIs, demos, vendored packages and generated tables (codecs, pydoc
# topics) would teach the model data files rather than code.
DEFAULT_EXCLUDE = [
    "test", "tests", "idlelib", "turtledemo", "site-packages", "lib2to3", "ensurepip", "encodings",
    "pydoc_data", "__pycache__", "tkinter", "config-*",
]  # fmt: skip


@dataclass
class PretrainConfig:
    """One pretraining recipe (`training/recipes/mini-pretrain.yaml`); every field is checked on load."""

    name: str = "custom"
    # --- corpus ---------------------------------------------------------------------------------------------
    stdlib_bytes: int = field(default=1_500_000, metadata={"help": "Byte budget of stdlib .py files."})
    max_file_bytes: int = field(default=100_000, metadata={"help": "Skip larger files (mostly data)."})
    exclude: list[str] = field(
        default_factory=lambda: list(DEFAULT_EXCLUDE),
        metadata={"help": "fnmatch patterns of folders to skip."},
    )
    tokenizer_bytes: int = field(default=600_000, metadata={"help": "Text the BPE is trained on."})
    heldout_files: int = field(
        default=8, metadata={"help": "Files kept out of training for a held-out loss."}
    )
    # --- tokenizer + model (training.tiny) ------------------------------------------------------------------
    vocab_size: int = 4096
    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 688
    max_length: int = field(default=512, metadata={"help": "Context: block length and max positions."})
    # --- objective: Code Llama's FIM mix --------------------------------------------------------------------
    fim_rate: float = 0.9
    spm_rate: float = 0.5
    # --- optimisation ---------------------------------------------------------------------------------------
    batch_size: int = 8
    max_steps: int = 200
    learning_rate: float = 2e-3
    min_lr_ratio: float = field(default=0.1, metadata={"help": "Cosine decays to learning_rate × this."})
    warmup_steps: int = 20
    weight_decay: float = 0.1
    max_grad_norm: float = 1.0
    max_minutes: float | None = field(
        default=None, metadata={"help": "Stop early (logged) after this wall time; null = never."}
    )
    logging_steps: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        _check_types(self, {f.name for f in dataclasses.fields(self)})
        problems = []
        for name in ("stdlib_bytes", "tokenizer_bytes", "max_file_bytes", "vocab_size", "hidden_size",
                     "num_layers", "num_heads", "intermediate_size", "batch_size", "max_steps",
                     "logging_steps"):  # fmt: skip
            if getattr(self, name) <= 0:
                problems.append(f"{name}={getattr(self, name)}: must be positive")
        if self.hidden_size % max(self.num_heads, 1):
            problems.append(f"hidden_size={self.hidden_size} is not a multiple of num_heads={self.num_heads}")
        for name in ("fim_rate", "spm_rate", "min_lr_ratio"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name}={getattr(self, name)}: must be between 0 and 1")
        if self.max_length < 64:
            problems.append(f"max_length={self.max_length}: must be at least 64 tokens")
        if self.learning_rate <= 0 or self.warmup_steps < 0 or self.heldout_files < 0:
            problems.append("learning_rate must be positive; warmup_steps and heldout_files non-negative")
        if problems:
            raise ValueError(f"invalid pretraining recipe {self.name!r}:\n  - " + "\n  - ".join(problems))


def load_pretrain_config(recipe: str, overrides: dict[str, Any] | None = None) -> PretrainConfig:
    """`mini-pretrain` (training/recipes/) or a .yaml path, with `overrides`; unknown keys are errors."""
    path = Path(recipe)
    if path.suffix not in (".yaml", ".yml"):
        path = RECIPES_DIR / f"{recipe}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no pretraining recipe {recipe!r} (looked for {path})")
    data = {"name": path.stem, **(yaml.safe_load(path.read_text()) or {}), **(overrides or {})}
    known = {f.name for f in dataclasses.fields(PretrainConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{path}: unknown field(s) {unknown}; known: {sorted(known)}")
    return PretrainConfig(**data)


def stdlib_files(config: PretrainConfig, root: Path | None = None) -> list[tuple[str, str]]:
    """[(path relative to the stdlib, text)] in a deterministic order, up to `stdlib_bytes` bytes.

    Files are ordered by the SHA-256 of their relative path: a fixed order that mixes packages, so a small
    budget covers many modules instead of the first letters of the alphabet.
    """
    root = Path(root or sysconfig.get_paths()["stdlib"])
    candidates = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).as_posix()
        if any(fnmatch.fnmatch(part, pat) for part in rel.split("/")[:-1] for pat in config.exclude):
            continue
        if path.stat().st_size <= config.max_file_bytes:
            candidates.append(rel)
    candidates.sort(key=lambda rel: hashlib.sha256(rel.encode()).hexdigest())
    out, total = [], 0
    for rel in candidates:
        try:
            text = (root / rel).read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # a handful of stdlib files are Latin-1 test data; not worth teaching
        if total + len(text.encode("utf-8")) > config.stdlib_bytes:
            continue  # a file that would overflow the budget is skipped; a smaller later one may fit
        out.append((rel, text))
        total += len(text.encode("utf-8"))
    if not out:
        raise FileNotFoundError(f"no .py files under {root} after excluding {config.exclude}")
    return out


def pack_blocks(tokenizer, texts: list[str], config: PretrainConfig, seed: int) -> np.ndarray:
    """Texts → FIM/CLM sequences (each BOS … EOS, via the fine-tuning's Preparer) → one token stream → rows
    of `max_length` tokens. Concatenate-and-cut is how GPT-style pretraining packs (StarCoder does FIM per
    document, then the same): no padding, and documents are separated by EOS/BOS, not by the mask."""
    preparer = Preparer(tokenizer, config.max_length, config.fim_rate, config.spm_rate)
    rng = np.random.default_rng(seed)
    stream = [ex.input_ids for ex in iter_examples(preparer, texts, ["python"] * len(texts), rng)]
    flat = np.fromiter((t for ids in stream for t in ids), dtype=np.int64)
    n = len(flat) // config.max_length
    if n == 0:
        raise ValueError(
            f"{len(flat)} tokens do not fill one {config.max_length}-token block: raise stdlib_bytes"
        )
    return flat[: n * config.max_length].reshape(n, config.max_length)


def lr_at(step: int, config: PretrainConfig, elapsed_s: float = 0.0) -> float:
    """Linear warmup, then cosine decay to `learning_rate × min_lr_ratio` at `max_steps` — or at
    `max_minutes`, whichever comes first. Decaying by the time budget too (as "Cramming", Geiping &
    Goldstein 2022, does) means a run that a slow or shared CPU stops early still ends annealed."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
    if config.max_minutes:
        progress = max(progress, elapsed_s / (config.max_minutes * 60))
    cosine = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return config.learning_rate * (config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine)


@torch.no_grad()
def mean_loss(model, blocks: np.ndarray, batch_size: int) -> float:
    """Mean next-token loss (nats) over `blocks` (every row fully scored)."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(blocks), batch_size):
        x = torch.from_numpy(blocks[i : i + batch_size])
        loss = model(input_ids=x, labels=x, use_cache=False).loss
        total += loss.item() * x.numel()
        count += x.numel()
    model.train()
    return total / max(count, 1)


def pretrain(
    config: PretrainConfig, out: Path, stdlib_root: Path | None = None, overwrite: bool = False
) -> dict:
    """Build tokenizer + model, train them on the stdlib subset, save everything to `out`; returns the log."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists: pass another --out, or --overwrite to replace it")
    t0 = time.monotonic()
    torch.manual_seed(config.seed)
    files = stdlib_files(config, stdlib_root)
    heldout = files[: config.heldout_files] if len(files) > config.heldout_files else []
    train_files = files[len(heldout) :]
    texts = [text for _, text in train_files]
    tokenizer = build_tiny_tokenizer(sample_texts(texts, config.tokenizer_bytes), config.vocab_size)
    model = build_tiny_model(
        tokenizer,
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        intermediate_size=config.intermediate_size,
        max_position_embeddings=config.max_length,  # evaluation's default context = what was trained
        seed=config.seed,
    )
    blocks = pack_blocks(tokenizer, texts, config, config.seed)
    eval_blocks = (
        pack_blocks(tokenizer, [t for _, t in heldout], config, config.seed + 1) if heldout else None
    )
    prep_s = time.monotonic() - t0

    # Weight decay on matrices only (norms and nothing else are 1-D), as GPT/Llama training does.
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=config.learning_rate, betas=(0.9, 0.95))
    order = np.random.default_rng(config.seed).permutation(len(blocks))
    history: list[dict[str, Any]] = []
    model.train()
    start, tokens, step, stopped = time.monotonic(), 0, 0, "max_steps"
    bar = tqdm(total=config.max_steps, desc="pretrain", unit="step")
    running = []
    for step in range(config.max_steps):
        elapsed = time.monotonic() - start
        if config.max_minutes is not None and elapsed > config.max_minutes * 60:
            stopped = "max_minutes"
            break
        idx = [order[(step * config.batch_size + j) % len(order)] for j in range(config.batch_size)]
        x = torch.from_numpy(blocks[idx])
        for group in optimizer.param_groups:
            group["lr"] = lr = lr_at(step, config, elapsed)
        loss = model(input_ids=x, labels=x, use_cache=False).loss
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += x.numel()
        running.append(loss.item())
        bar.update(1)
        bar.set_postfix(loss=f"{running[-1]:.3f}", tok_s=f"{tokens / (time.monotonic() - start):.0f}")
        if (step + 1) % config.logging_steps == 0 or step + 1 == config.max_steps:
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
    else:
        step = config.max_steps
    bar.close()
    train_s = time.monotonic() - start
    log = {
        "config": dataclasses.asdict(config),
        "python": sys.version.split()[0],
        "stdlib": str(stdlib_root or sysconfig.get_paths()["stdlib"]),
        "files": {"train": [rel for rel, _ in train_files], "heldout": [rel for rel, _ in heldout]},
        "corpus_sha256": hashlib.sha256("\0".join(texts).encode()).hexdigest(),
        "train_bytes": sum(len(t.encode("utf-8")) for t in texts),
        "train_blocks": len(blocks),
        "block_tokens": int(blocks.size),
        "tokens_seen": tokens,
        "epochs": round(tokens / max(blocks.size, 1), 3),
        "steps": step,
        "stopped_by": stopped,
        "parameters": sum(p.numel() for p in model.parameters()),
        "final_train_loss": history[-1]["loss"] if history else None,
        "heldout_loss": mean_loss(model, eval_blocks, config.batch_size) if eval_blocks is not None else None,
        "prepare_s": round(prep_s, 2),
        "train_s": round(train_s, 2),
        "tokens_per_s": round(tokens / max(train_s, 1e-9), 1),
        "log_history": history,
    }
    save_base(model, tokenizer, log, out)
    return log


def save_base(model, tokenizer, log: dict, out: Path) -> None:
    """Model + tokenizer + pretrain_log.json into `out`, through a temp folder renamed into place."""
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "pretrain_log.json").write_text(json.dumps(log, indent=2) + "\n")
    replace_dir(tmp, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.pretrain", description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="mini-pretrain", help="pretraining recipe name or .yaml path")
    parser.add_argument("--out", required=True, help="base model folder to write")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override recipe fields")
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
