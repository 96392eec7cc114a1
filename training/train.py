"""`python -m training train`: SFTTrainer + LoRA on the prepared corpus, saved as a publishable adapter.

RUN/checkpoints/ holds Trainer checkpoints (for --resume), RUN/base/ the locally built tiny base, RUN/logs/
TensorBoard's event files (with `report_to: tensorboard`, training/tracking.py), and RUN/adapter/ the
adapter, written to a temporary folder and renamed into place only once complete (docs/ARCHITECTURE.md §3).
Works the same under `accelerate launch` (DDP, FSDP, DeepSpeed).

Trainer writes a checkpoint straight into checkpoint-<step>/ (trainer_state.json last), so a run killed
while saving leaves a partial folder: it is reported, removed, and --resume takes the latest complete one.
Resuming a run that already reached max_steps trains nothing and leaves RUN/adapter as it is.
The published files name local paths relative to RUN, never as this machine's absolute paths.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import zipfile
from pathlib import Path

import torch
import yaml
from peft import LoraConfig, prepare_model_for_kbit_training
from rich.console import Console
from rich.table import Table
from safetensors import SafetensorError, safe_open
from transformers import TrainerState
from trl import SFTTrainer

from flyte_llama_common.atomic import replace_dir
from flyte_llama_common.ids import is_local_path
from training import schedule
from training.config import TrainConfig, to_yaml
from training.data import load_corpus
from training.modeling import load_base_model, load_tokenizer, pin_revision
from training.prepare import Preparer, prepare_split
from training.tiny import build_tiny_base
from training.tracking import LOGS_DIR, send_tensorboard_to

PICKLES = ("training_args.bin", "optimizer.pt", "scheduler.pt", "rng_state.pth")
CHECKPOINT_RE = re.compile(r"checkpoint-([0-9]+)")


def train(
    config: TrainConfig, run_dir: Path, resume: bool = False, recipe_keys: list[str] | None = None
) -> dict:
    """Train per `config` into `run_dir`; returns training_log.json's summary."""
    run_dir = Path(run_dir)
    checkpoints = run_dir / "checkpoints"
    config.output_dir = str(checkpoints)
    # The main process removes partial checkpoints before the others look, so all ranks pick the same one.
    with config.main_process_first(local=False, desc="check the checkpoints"):
        last = _checkpoint_to_resume(config, checkpoints, resume)
    finished = _finished_at(config, last) if last is not None else None
    if finished is not None:
        done = _adapter_summary(run_dir / "adapter")
        if done is not None and done.get("global_step") == finished:
            print(
                f"{run_dir} already finished at step {finished} (max_steps={config.max_steps}): nothing to "
                f"train, {run_dir / 'adapter'} is unchanged; raise max_steps (--set max_steps=N) to train on"
            )
            return done

    train_split, eval_split = config.dataset_train_split, config.dataset_test_split
    corpus = load_corpus(
        config.dataset_name, config.dataset_revision, (train_split,) + ((eval_split,) if eval_split else ())
    )
    model, tokenizer, base_id, base_revision = _load_base(config, corpus[train_split], run_dir)

    preparer = Preparer(tokenizer, config.max_length, config.effective_fim_rate, config.spm_rate)
    train_ds, train_stats = prepare_split(
        corpus[train_split], preparer, config.seed, "prepare train", config.max_train_docs
    )
    eval_ds = None
    if eval_split:  # evaluated unpacked (eval_packing: false): a loss per whole document
        eval_ds, _ = prepare_split(
            corpus[eval_split], preparer, config.seed + 1, "prepare eval", config.max_eval_docs
        )
    # The same rows per optimizer step on any number of GPUs: accumulation comes from the world size. It is
    # set before the trainer exists (its accelerator reads it); the steps need the packed row count.
    config.gradient_accumulation_steps = schedule.accumulation(config, config.world_size)
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
    send_tensorboard_to(trainer, run_dir / LOGS_DIR)  # RUN/logs, not inside RUN/checkpoints
    plan = schedule.derive(config, len(trainer.train_dataset), config.world_size)
    schedule.apply(trainer.args, plan)
    if finished is None:
        result = trainer.train(resume_from_checkpoint=str(last) if last is not None else None)
        runtime = float(result.metrics.get("train_runtime", 0.0))
    else:  # killed after its last checkpoint, before RUN/adapter was written: export, train nothing more
        print(f"{last.name} finished the run at step {finished}: writing {run_dir / 'adapter'} from it")
        trainer._load_from_checkpoint(str(last))
        trainer.state = TrainerState.load_from_json(str(last / "trainer_state.json"))
        runtime = 0.0
    if eval_ds is not None:
        trainer.evaluate()  # the final, honest eval loss lands in log_history

    summary = {
        "global_step": trainer.state.global_step,
        "train_tokens": int(trainer.state.num_input_tokens_seen),
        "train_runtime_s": round(runtime, 3),
        "hardware": hardware(config.world_size),
        "objective": config.objective,
        "fim_rate": config.effective_fim_rate,
        "spm_rate": config.spm_rate,
        "max_length": config.max_length,
        "dataset": {"id": portable(config.dataset_name, run_dir), "revision": config.dataset_revision},
        "schedule": plan.as_dict(),  # what the recipe's tokens and fractions came to on this run
        # What trained this adapter (the card lists these, not the versions of the machine that renders it).
        "versions": library_versions(),
    }
    config.model_revision = base_revision
    keys = list(dict.fromkeys([*(recipe_keys or []), "model_revision", "dataset_name", "dataset_revision"]))
    recipe = _published_recipe(config, keys, run_dir)
    # adapter_config.json keeps a local base as its absolute path: PEFT (AutoPeftModelForCausalLM) resolves
    # a relative one against the working directory. model_card.stage rewrites it to the Hub id for publishing,
    # and push refuses a folder whose base is still a local path.
    save_adapter(trainer, run_dir / "adapter", base_id, base_revision, summary, recipe)
    if trainer.is_world_process_zero():
        print_summary(trainer.state.log_history, summary, train_stats, run_dir / "adapter")
    return summary


def checkpoint_problem(path: Path, needs_optimizer: bool = True) -> str | None:
    """Why Trainer could not resume from checkpoint folder `path` (None: it is complete).

    transformers 5.24's `_save_checkpoint` writes the weights, then optimizer, scheduler and RNG state,
    then trainer_state.json last; a folder without a trainer_state.json of its own step, or with a
    truncated file, is what a kill while saving leaves. FSDP and DeepSpeed save folders instead of files.
    """
    step = int(CHECKPOINT_RE.fullmatch(path.name).group(1))
    try:
        names = set(os.listdir(path))
        state = json.loads((path / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return "no readable trainer_state.json"
    if not isinstance(state, dict) or state.get("global_step") != step:
        return f"its trainer_state.json is not for step {step}"
    if not any(n.startswith(("adapter_model.", "model.", "pytorch_model", "global_step")) for n in names):
        return "no model weights"
    if needs_optimizer and not any(n.startswith(("optimizer", "global_step")) for n in names):
        return "no optimizer state"
    if needs_optimizer and not any(n.startswith("rng_state") for n in names):
        return "no RNG state"
    for name in sorted(names):
        try:
            if name.endswith(".safetensors"):
                with safe_open(str(path / name), "pt"):  # checks the header against the file's size
                    pass
            elif name.endswith((".pt", ".pth", ".bin")) and not zipfile.is_zipfile(path / name):
                return f"{name} is truncated"
        except (OSError, SafetensorError):
            return f"{name} is truncated"
    return None


def scan_checkpoints(folder: Path, needs_optimizer: bool = True) -> tuple[Path | None, dict[Path, str]]:
    """(the latest complete checkpoint-<step> in `folder` or None, {incomplete checkpoint: why})."""
    found = [p for p in folder.iterdir() if CHECKPOINT_RE.fullmatch(p.name)] if folder.is_dir() else []
    latest, broken = None, {}
    for path in sorted(found, key=lambda p: int(p.name.split("-")[1]), reverse=True):
        problem = checkpoint_problem(path, needs_optimizer) if path.is_dir() else "not a folder"
        if problem:
            broken[path] = problem
        elif latest is None:
            latest = path
    return latest, broken


def _checkpoint_to_resume(config: TrainConfig, checkpoints: Path, resume: bool) -> Path | None:
    """The checkpoint to resume from (None: start afresh); removes partial ones when going ahead."""
    last, broken = scan_checkpoints(checkpoints, needs_optimizer=not config.save_only_model)
    why = ", ".join(f"{p.name} ({problem})" for p, problem in broken.items())
    if resume and last is None:
        extra = f" to resume from, only incomplete ones: {why}" if why else ""
        raise FileNotFoundError(
            f"--resume: no checkpoint under {checkpoints}{extra}; drop --resume to start afresh"
        )
    if not resume and last is not None:
        raise FileExistsError(f"{checkpoints} already has {last.name}: pass --resume, or a new --output-dir")
    if broken and config.should_save:
        for path in broken:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        after = f"resuming from {last.name}" if last is not None else "starting afresh"
        print(f"incomplete checkpoint left by a run killed while saving: {why}; removed it, {after}")
    return last


def _finished_at(config: TrainConfig, last: Path) -> int | None:
    """The step `last` is at when that already completes the run (nothing left to train), else None."""
    state = json.loads((last / "trainer_state.json").read_text())
    step, target = int(state["global_step"]), config.max_steps
    if target <= 0 and state.get("num_train_epochs") == config.num_train_epochs:
        target = int(state.get("max_steps") or 0)  # an epoch-based run ends where it planned to
    return step if 0 < target <= step else None


def _adapter_summary(adapter: Path) -> dict | None:
    try:
        return json.loads((adapter / "training_log.json").read_text())["summary"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def portable(value: str | None, run_dir: Path) -> str | None:
    """A local path as the published files name it (docs/ARCHITECTURE.md §3): relative to RUN as "./x", or
    "../x" when at most two levels up and below a top-level folder, else "local:NAME"; Hub ids unchanged.

    Published files must not carry this machine's absolute paths (a home folder, a user name); neither
    form ever reads as a Hub id.
    """
    if not value or not (os.path.isabs(value) or is_local_path(value)):
        return value
    target, root = Path(value).expanduser().resolve(), Path(run_dir).resolve()
    rel = Path(os.path.relpath(target, root))
    ups = rel.parts.count("..")
    if ups == 0:
        return "./" if rel == Path(".") else f"./{rel.as_posix()}"
    return rel.as_posix() if ups <= 2 and len(root.parts) - ups > 2 else f"local:{target.name}"


def _published_recipe(config: TrainConfig, keys: list[str], run_dir: Path) -> str:
    """recipe.yaml: the resolved `keys`, with the dataset, the base and any absolute path made `portable`."""

    def walk(value, key=None):
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str) and (key in ("dataset_name", "model_name_or_path") or os.path.isabs(value)):
            return portable(value, run_dir)
        return value

    return yaml.safe_dump(walk(yaml.safe_load(to_yaml(config, keys))), sort_keys=False)


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


TRAINING_LIBRARIES = ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "tokenizers")


def library_versions() -> dict[str, str]:
    """{distribution: version} of the libraries that shape training (those installed), and Python's."""
    import importlib.metadata
    import platform

    out = {"python": platform.python_version()}
    for name in TRAINING_LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def save_adapter(
    trainer, out: Path, base_id: str, base_revision: str | None, summary: dict, recipe: str
) -> None:
    """Write RUN/adapter via a temporary folder + rename; no pickles; the base recorded for users."""
    # Not flyte_llama_common.atomic.staged_dir: its folder is named after the owning process, and under
    # FSDP/DeepSpeed every rank must save into the same folder (rank 0 then renames it into place).
    tmp = out.with_name(out.name + ".tmp")
    if trainer.is_world_process_zero():
        shutil.rmtree(tmp, ignore_errors=True)
    # Every process calls save_model: under FSDP/DeepSpeed it gathers the sharded weights; only rank 0 writes.
    trainer.save_model(str(tmp))
    if not trainer.is_world_process_zero():
        return
    # Trainer adds training_args.bin (a pickle): never publish it. PEFT's template README names the base by
    # its local path and says nothing else; the model card is written by model_card.stage.
    for name in (*PICKLES, "README.md"):
        (tmp / name).unlink(missing_ok=True)
    cfg_path = tmp / "adapter_config.json"
    adapter_config = json.loads(cfg_path.read_text())
    adapter_config["base_model_name_or_path"] = base_id
    adapter_config["revision"] = base_revision
    if isinstance(adapter_config.get("target_modules"), list):  # PEFT saves a set: its order varies by run
        adapter_config["target_modules"] = sorted(adapter_config["target_modules"])
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
    planned = summary["schedule"]
    table.add_row("steps (planned)", f"{summary['global_step']} ({planned['total_steps']})")
    table.add_row("warmup steps", str(planned["warmup_steps"]))
    table.add_row("train tokens seen", f"{summary['train_tokens']:,}")
    table.add_row("tokens/s", f"{summary['train_tokens'] / runtime:,.0f}")
    table.add_row("documents → sequences", f"{stats.documents:,} → {stats.chunks:,}")
    table.add_row("modes (clm/psm/spm)", "/".join(str(stats.modes[m]) for m in ("clm", "psm", "spm")))
    table.add_row("final train loss", f"{train_losses[-1]:.4f}" if train_losses else "-")
    table.add_row("final eval loss", f"{eval_losses[-1]:.4f}" if eval_losses else "-")
    table.add_row("adapter", str(adapter_dir))
    Console().print(table)


def run(args) -> int:
    from training.config import recipe_from_args

    config, keys = recipe_from_args(args)
    train(config, Path(args.output_dir or f"runs/{config.recipe_name}"), resume=args.resume, recipe_keys=keys)
    return 0
