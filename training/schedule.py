"""A recipe's schedule in optimizer steps, from tokens: the arithmetic `train` applies and `plan` prints.

A recipe states its global batch in tokens (`global_batch_tokens`: rows of `max_length` per optimizer step,
summed over every GPU) and its schedule as fractions of the run (`warmup_ratio`, `evals_per_run`,
`checkpoints_per_run`). Gradient accumulation is derived from the world size, so 1, 2 or 8 GPUs train the
same rows per step and the same number of steps. Only arithmetic here (no torch): `plan` and `--help` stay
fast.

The step count follows transformers 5.24's Trainer (`_inner_training_loop`): a process sees
ceil(rows / (per_device_batch × world_size)) batches per epoch (accelerate shards batches evenly), an epoch
is ceil(batches / accumulation) optimizer steps, and a run ceil(epochs × steps per epoch) of them, unless
`max_steps` is positive. Trainer evaluates every `eval_steps` and once more at the last step when that is
not a multiple (DefaultFlowCallback), and saves the same way.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Schedule:
    world_size: int
    packed_rows: int  # training rows of up to max_length tokens, after packing
    rows_per_step: int  # summed over every process
    tokens_per_step: int  # rows_per_step × max_length (the most a step holds: packed rows are not all full)
    gradient_accumulation_steps: int
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    eval_steps: int | None  # None: no evaluation during training
    evaluations: int
    save_steps: int | None  # None: no checkpoints
    checkpoints: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def schedule_problems(config: Any, defaults: dict[str, Any]) -> list[str]:
    """A schedule in tokens/fractions and the step counts it derives must not both be given."""
    problems = []
    if config.global_batch_tokens is not None:
        if config.max_length and config.global_batch_tokens % config.max_length:
            problems.append(
                f"global_batch_tokens={config.global_batch_tokens}: must be a multiple of max_length "
                f"({config.max_length}), i.e. whole rows per step"
            )
        elif config.max_length and (config.global_batch_tokens // config.max_length) % (
            config.per_device_train_batch_size or 1
        ):
            problems.append(
                f"global_batch_tokens={config.global_batch_tokens} is "
                f"{config.global_batch_tokens // config.max_length} rows per step: not a multiple of "
                f"per_device_train_batch_size={config.per_device_train_batch_size}"
            )
        if config.gradient_accumulation_steps != 1:
            problems.append(
                "gradient_accumulation_steps is derived from global_batch_tokens and the world size: "
                "remove one of the two"
            )
    derived = (
        ("warmup_ratio", "warmup_steps"),
        ("evals_per_run", "eval_steps"),
        ("checkpoints_per_run", "save_steps"),
    )
    for given, steps in derived:
        if getattr(config, given) is not None and getattr(config, steps) != defaults[steps]:
            problems.append(f"{steps} is derived from {given}: remove one of the two")
    strategy = {"evals_per_run": "eval_strategy", "checkpoints_per_run": "save_strategy"}
    for given, name in strategy.items():
        value = getattr(config, name)
        if getattr(config, given) is not None and str(getattr(value, "value", value)) != "steps":
            problems.append(f"{given} needs {name}: steps")
    return problems


def rows_per_step(config: Any) -> int | None:
    """Rows per optimizer step the recipe asks for (None: it gives gradient_accumulation_steps itself)."""
    if config.global_batch_tokens is None:
        return None
    return config.global_batch_tokens // config.max_length


def accumulation(config: Any, world_size: int) -> int:
    """gradient_accumulation_steps for `world_size` processes; a clear error when the batch cannot divide."""
    if world_size < 1:
        raise ValueError(f"world size {world_size}: must be at least 1")
    rows = rows_per_step(config)
    if rows is None:
        return config.gradient_accumulation_steps
    per_step = config.per_device_train_batch_size * world_size
    if rows % per_step:
        fits = [n for n in range(1, rows + 1) if rows % (config.per_device_train_batch_size * n) == 0]
        raise ValueError(
            f"global_batch_tokens={config.global_batch_tokens} is {rows} rows of {config.max_length} per "
            f"step, which {world_size} process(es) × per_device_train_batch_size="
            f"{config.per_device_train_batch_size} do not divide: use a world size in {fits}, or change "
            "per_device_train_batch_size"
        )
    return rows // per_step


def _every(total: int, times: int | None, given: int | float | None, enabled: bool) -> tuple[int | None, int]:
    """(interval in steps, how many times it fires in `total` steps, the last step included)."""
    if not enabled or total <= 0:
        return None, 0
    if times is not None:
        interval = math.ceil(total / times)  # then at most `times` points, the last one at the end
    elif given is not None and given < 1:
        interval = max(1, math.ceil(total * given))  # Trainer reads a float below 1 as a ratio of the run
    else:
        interval = int(given) if given else total
    return interval, total // interval + (1 if total % interval else 0)


def derive(config: Any, packed_rows: int, world_size: int) -> Schedule:
    """The schedule `train` runs for `packed_rows` training rows on `world_size` processes."""
    accum = accumulation(config, world_size)
    per_step = config.per_device_train_batch_size * world_size
    batches = math.ceil(packed_rows / per_step) if packed_rows else 0
    steps_per_epoch = max(batches // accum + int(batches % accum > 0), 1)
    epochs_total = math.ceil(config.num_train_epochs * steps_per_epoch)
    total = config.max_steps if config.max_steps > 0 else epochs_total
    if config.warmup_ratio is not None:
        warmup = math.ceil(total * config.warmup_ratio)
    else:  # Trainer's own reading of warmup_steps (an int, or a float below 1 as a ratio)
        ws = config.warmup_steps
        warmup = int(ws) if ws >= 1 else math.ceil(total * ws)
    strategy = lambda name: str(getattr(getattr(config, name), "value", getattr(config, name)))  # noqa: E731
    eval_steps, evaluations = _every(
        total, config.evals_per_run, config.eval_steps, strategy("eval_strategy") == "steps"
    )
    save_steps, checkpoints = _every(
        total, config.checkpoints_per_run, config.save_steps, strategy("save_strategy") == "steps"
    )
    rows = per_step * accum
    return Schedule(
        world_size=world_size,
        packed_rows=packed_rows,
        rows_per_step=rows,
        tokens_per_step=rows * config.max_length,
        gradient_accumulation_steps=accum,
        steps_per_epoch=steps_per_epoch,
        total_steps=total,
        warmup_steps=warmup,
        eval_steps=eval_steps,
        evaluations=evaluations,
        save_steps=save_steps,
        checkpoints=checkpoints,
    )


def apply(args: Any, schedule: Schedule) -> None:
    """Set the derived steps on the TrainingArguments (before `trainer.train()`, which reads them)."""
    args.warmup_steps = schedule.warmup_steps
    if schedule.eval_steps is not None:
        args.eval_steps = schedule.eval_steps
    if schedule.save_steps is not None:
        args.save_steps = schedule.save_steps
