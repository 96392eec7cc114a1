"""`python -m training train`: SFTTrainer + LoRA on the prepared corpus, saved as a publishable adapter.

RUN/checkpoints/ holds Trainer checkpoints (for --resume), RUN/base/ the locally built tiny base, and
RUN/adapter/ the adapter, written to a temporary folder and renamed into place only once complete
(docs/ARCHITECTURE.md §3). Works the same under `accelerate launch` (DDP, FSDP, DeepSpeed).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
from pathlib import Path

import torch
from peft import LoraConfig, prepare_model_for_kbit_training
from rich.console import Console
from rich.table import Table
from transformers.trainer_utils import get_last_checkpoint
from trl import SFTTrainer

from dataset_builder.atomic import replace_dir
from training.config import TrainConfig, to_yaml
from training.data import load_corpus
from training.modeling import build_tiny_base, load_base_model, load_tokenizer, pin_revision
from training.prepare import Preparer, prepare_split

PICKLES = ("training_args.bin", "optimizer.pt", "scheduler.pt", "rng_state.pth")


def train(
    config: TrainConfig, run_dir: Path, resume: bool = False, recipe_keys: list[str] | None = None
) -> dict:
    """Train per `config` into `run_dir`; returns training_log.json's summary."""
    run_dir = Path(run_dir)
    checkpoints = run_dir / "checkpoints"
    config.output_dir = str(checkpoints)
    last = get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None
    if resume and last is None:
        raise FileNotFoundError(f"--resume: no checkpoint under {checkpoints}; drop --resume to start afresh")
    if not resume and last is not None:
        raise FileExistsError(
            f"{checkpoints} already has {Path(last).name}: pass --resume, or a new --output-dir"
        )

    splits = (config.train_split,) + ((config.eval_split,) if config.eval_split else ())
    corpus = load_corpus(config.dataset, config.dataset_revision, splits)
    model, tokenizer, base_id, base_revision = _load_base(config, corpus[config.train_split], run_dir)

    preparer = Preparer(tokenizer, config.max_length, config.effective_fim_rate, config.spm_rate)
    train_ds, train_stats = prepare_split(
        corpus[config.train_split], preparer, config.seed, "prepare train", config.max_train_docs
    )
    eval_ds = None
    if config.eval_split:  # evaluated unpacked (eval_packing: false): a loss per whole document
        eval_ds, _ = prepare_split(
            corpus[config.eval_split], preparer, config.seed + 1, "prepare eval", config.max_eval_docs
        )
    # Padding-free packed batches have no padding to exclude; otherwise count non-padding positions.
    config.include_num_input_tokens_seen = "all" if config.packing or config.padding_free else "non_padding"

    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=config.lora_target_modules,
            task_type="CAUSAL_LM",
        ),
    )
    result = trainer.train(resume_from_checkpoint=last if resume else None)
    if eval_ds is not None:
        trainer.evaluate()  # the final, honest eval loss lands in log_history

    summary = {
        "global_step": trainer.state.global_step,
        "train_tokens": int(trainer.state.num_input_tokens_seen),
        "train_runtime_s": round(float(result.metrics.get("train_runtime", 0.0)), 3),
        "hardware": hardware(config.world_size),
        "objective": config.objective,
        "fim_rate": config.effective_fim_rate,
        "spm_rate": config.spm_rate,
        "max_length": config.max_length,
        "dataset": {"id": config.dataset, "revision": config.dataset_revision},
    }
    config.model_revision = base_revision
    keys = list(dict.fromkeys([*(recipe_keys or []), "model_revision", "dataset", "dataset_revision"]))
    save_adapter(trainer, run_dir / "adapter", base_id, base_revision, summary, to_yaml(config, keys))
    if trainer.is_world_process_zero():
        print_summary(trainer.state.log_history, summary, train_stats, run_dir / "adapter")
    return summary


def _load_base(config: TrainConfig, train_split, run_dir: Path):
    """(model, tokenizer, base id to record, base revision to record)."""
    if config.is_tiny:
        base_dir = (run_dir / "base").resolve()
        # Under accelerate the main process builds it while the others wait, then they load the same files.
        with config.main_process_first(desc="build the tiny base"):
            if not (base_dir / "config.json").is_file():
                run_dir.mkdir(parents=True, exist_ok=True)
                build_tiny_base(train_split["content"], base_dir, config)
        model = load_base_model(
            str(base_dir), dtype=config.dtype, attn_implementation=config.attn_implementation
        )
        return model, load_tokenizer(str(base_dir)), str(base_dir), None
    revision = pin_revision(config.model_name_or_path, config.model_revision)
    tokenizer = load_tokenizer(config.model_name_or_path, revision)
    model = load_base_model(
        config.model_name_or_path, revision, config.dtype, config.quantization, config.attn_implementation
    )
    if config.quantization:
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=config.activation_checkpointing
        )
    return model, tokenizer, config.model_name_or_path, revision


def save_adapter(
    trainer, out: Path, base_id: str, base_revision: str | None, summary: dict, recipe: str
) -> None:
    """Write RUN/adapter via a temporary folder + rename; no pickles; the base recorded for users."""
    tmp = out.with_name(out.name + ".tmp")
    if trainer.is_world_process_zero():
        shutil.rmtree(tmp, ignore_errors=True)
    # Every process calls save_model: under FSDP/DeepSpeed it gathers the sharded weights; only rank 0 writes.
    trainer.save_model(str(tmp))
    if not trainer.is_world_process_zero():
        return
    for name in PICKLES:  # Trainer adds training_args.bin (a pickle): never publish it
        (tmp / name).unlink(missing_ok=True)
    cfg_path = tmp / "adapter_config.json"
    adapter_config = json.loads(cfg_path.read_text())
    adapter_config["base_model_name_or_path"] = base_id
    adapter_config["revision"] = base_revision
    cfg_path.write_text(json.dumps(adapter_config, indent=2, sort_keys=True) + "\n")
    log = {"log_history": trainer.state.log_history, "summary": summary}
    (tmp / "training_log.json").write_text(json.dumps(log, indent=2) + "\n")
    (tmp / "recipe.yaml").write_text(recipe)
    replace_dir(tmp, out)


def hardware(world_size: int) -> str:
    if torch.cuda.is_available():
        return f"{world_size} x {torch.cuda.get_device_name(0)}"
    cpu = platform.processor() or platform.machine()
    return f"cpu ({cpu}, {os.cpu_count()} cores, {world_size} process(es))"


def print_summary(log_history: list[dict], summary: dict, stats, adapter_dir: Path) -> None:
    train_losses = [r["loss"] for r in log_history if "loss" in r]
    eval_losses = [r["eval_loss"] for r in log_history if "eval_loss" in r]
    runtime = summary["train_runtime_s"] or float("nan")
    table = Table(title="training summary")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("steps", str(summary["global_step"]))
    table.add_row("train tokens seen", f"{summary['train_tokens']:,}")
    table.add_row("tokens/s", f"{summary['train_tokens'] / runtime:,.0f}")
    table.add_row("documents → sequences", f"{stats.documents:,} → {stats.chunks:,}")
    table.add_row("modes (clm/psm/spm)", "/".join(str(stats.modes[m]) for m in ("clm", "psm", "spm")))
    table.add_row("final train loss", f"{train_losses[-1]:.4f}" if train_losses else "-")
    table.add_row("final eval loss", f"{eval_losses[-1]:.4f}" if eval_losses else "-")
    table.add_row("adapter", str(adapter_dir))
    Console().print(table)


def add_args(parser) -> None:
    from training.config import add_recipe_args

    add_recipe_args(parser)
    parser.add_argument("--output-dir", default=None, help="RUN folder (default: runs/<recipe>)")
    parser.add_argument("--resume", action="store_true", help="continue from the latest RUN/checkpoints/*")


def run(args) -> int:
    from training.config import recipe_from_args

    config, keys = recipe_from_args(args)
    train(config, Path(args.output_dir or f"runs/{config.recipe_name}"), resume=args.resume, recipe_keys=keys)
    return 0
