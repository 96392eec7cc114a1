"""Typed training configuration: TRL's SFTConfig plus the model, LoRA, data and FIM fields of a recipe.

A recipe is one flat YAML file under `training/recipes/` (alignment-handbook style), read by the project's
one loader (`training.config_loader`, shared with pretraining): overrides from the command line (`--set
KEY=VALUE`, or TRL-style `--KEY VALUE`) are applied, unknown keys rejected, and every value validated when
the config is built, so a typo fails at once with a message that says what to change instead of hours
into a run. Fields TRL has keep TRL's names (`SFTConfig`'s; `ModelConfig`'s `model_name_or_path`,
`model_revision`, `dtype`, `attn_implementation`, `lora_*`, `load_in_4bit`, `bnb_4bit_quant_type`;
`ScriptArguments`' `dataset_name`, `dataset_train_split`, `dataset_test_split`); the rest are this project's.
TRL's `TrlParser` over TrainConfig (the alignment-handbook's `--config recipe.yaml --key value`) gives
the same config as this project's loader (`trl_parser`, tests/test_config_trl.py). Old keys renamed to
TRL's names are refused with the new name (`RENAMED_FIELDS`).

The schedule is stated in tokens and fractions (`global_batch_tokens`, `warmup_ratio`, `evals_per_run`,
`checkpoints_per_run`); training/schedule.py turns them into steps for the world size and corpus at hand.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

import torch
import yaml
from trl import SFTConfig

from training.config_loader import (  # noqa: F401  (re-exported: the names callers have always used)
    RECIPES_DIR,
    flag_overrides,
    parse_overrides,
    recipe_mapping,
    recipe_path,
    rule_problems,
    type_problems,
)
from training.schedule import schedule_problems
from training.tiny_args import TINY_POSITIVE, TinyModelArguments, tiny_problems
from training.tracking import report_to_problems

TINY_PREFIX = "tiny"  # recipes whose base is built locally say `model_name_or_path: tiny` (or `tiny:<name>`)
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def is_tiny(name_or_path: str) -> bool:
    """True for the locally built tiny base (`tiny` or `tiny:<anything>`), which has no Hub id."""
    return name_or_path == TINY_PREFIX or name_or_path.startswith(TINY_PREFIX + ":")


@dataclass
class TrainConfig(SFTConfig, TinyModelArguments):
    """SFTConfig (all of TRL's/Trainer's fields keep their names) + what a Flyte Llama recipe adds; the
    `tiny_*` fields (TinyModelArguments) shape the base only when model_name_or_path is `tiny`."""

    recipe_name: str = field(default="custom", metadata={"help": "Recipe name, recorded in the run."})
    # --- base model ---------------------------------------------------------------------------------------
    model_name_or_path: str = field(
        default="tiny", metadata={"help": "Hub id, local folder, or `tiny` (built locally into RUN/base)."}
    )
    model_revision: str | None = field(
        default=None,
        metadata={
            "help": "Base model commit. A 40-hex SHA is used as is; a branch or tag (e.g. `main`) is "
            "resolved to its SHA through the Hub at train time and that SHA is what the adapter records."
        },
    )
    dtype: str = field(default="bfloat16", metadata={"help": "Weights dtype: bfloat16, float16, float32."})
    load_in_4bit: bool = field(
        default=False,
        metadata={"help": "QLoRA: the base in 4-bit (bitsandbytes, double quantisation; CUDA only)."},
    )
    bnb_4bit_quant_type: str = field(
        default="nf4",
        metadata={"help": "4-bit type with load_in_4bit; `nf4` (QLoRA's) is the one supported."},
    )
    attn_implementation: str | None = field(
        default=None, metadata={"help": "null = flash_attention_2 when installed on a GPU, else sdpa."}
    )
    # --- LoRA ----------------------------------------------------------------------------------------------
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator (scale = alpha / r)."})
    lora_dropout: float = 0.05
    lora_target_modules: list[str] = field(
        default_factory=lambda: list(ALL_LINEAR), metadata={"help": "Linear layers that get an adapter."}
    )
    # --- data ----------------------------------------------------------------------------------------------
    dataset_name: str = field(
        default="", metadata={"help": "Dataset folder (docs/ARCHITECTURE.md §2) or Hub id."}
    )
    # TRL's ScriptArguments has no revision: this one is the project's.
    dataset_revision: str | None = field(default=None, metadata={"help": "Hub dataset tag/commit to pin."})
    dataset_train_split: str = field(default="train", metadata={"help": "Split to train on."})
    dataset_test_split: str | None = field(
        default="validation", metadata={"help": "Split for the validation loss; null = no evaluation."}
    )
    max_train_docs: int | None = field(
        default=None, metadata={"help": "Use only the first N train documents."}
    )
    max_eval_docs: int | None = field(default=None, metadata={"help": "Use only the first N eval documents."})
    # --- schedule, in tokens and fractions (training/schedule.py derives the steps) ------------------------
    global_batch_tokens: int | None = field(
        default=None,
        metadata={
            "help": "Tokens per optimizer step over all GPUs (a multiple of max_length: rows × max_length); "
            "gradient_accumulation_steps is derived from the world size. null: gradient_accumulation_steps."
        },
    )
    warmup_ratio: float | None = field(
        default=None,
        metadata={
            "help": "Warmup as a fraction of the optimizer steps (warmup_steps derived at train time)."
        },
    )
    evals_per_run: int | None = field(
        default=None,
        metadata={"help": "Validation points during the run (eval_steps derived at train time)."},
    )
    checkpoints_per_run: int | None = field(
        default=None, metadata={"help": "Checkpoints during the run (save_steps derived at train time)."}
    )
    # --- hardware the recipe is sized for (Flyte resources in workflows.py; never changes the schedule) -----
    gpus: int = field(
        default=0, metadata={"help": "GPUs per run; more than one runs as torch elastic, a process per GPU."}
    )
    cpus: int = field(default=2, metadata={"help": "CPU cores to request."})
    memory: str = field(default="8Gi", metadata={"help": "Memory to request (a Kubernetes quantity: 64Gi)."})
    # --- objective -----------------------------------------------------------------------------------------
    objective: str = field(default="fim", metadata={"help": "`fim` (FIM + CLM mix) or `clm`."})
    fim_rate: float = field(default=0.9, metadata={"help": "Share of documents turned into FIM examples."})
    spm_rate: float = field(default=0.5, metadata={"help": "Share of FIM examples in SPM order (rest PSM)."})

    def __post_init__(self) -> None:
        self._validate_own_fields()
        if self.bf16 and not self.use_cpu and not torch.cuda.is_available():
            raise ValueError(
                f"recipe {self.recipe_name!r} trains in bf16 on a GPU and no CUDA GPU is visible. Use "
                "`--recipe tiny` on CPU, or override with `--set bf16=false dtype=float32 use_cpu=true`."
            )
        super().__post_init__()

    def _validate_own_fields(self) -> None:
        # Defaults are the libraries' own business; what the recipe or --set gave is checked.
        names = {f.name for f in dataclasses.fields(TrainConfig)}
        parsed = {k for k, v in _PARSER_DEFAULTS.items() if getattr(self, k) is v}
        problems = type_problems(self, names - _SFT_FIELDS)
        problems += type_problems(self, _SFT_FIELDS - parsed, True)
        if not problems:
            problems = _value_problems(self)
        if problems:
            # One line: the CLI prints it as `error: ...`.
            raise ValueError(
                f"invalid recipe {self.recipe_name!r}: " + "; ".join(problems) + " (fix the recipe or --set)"
            )

    @property
    def is_tiny(self) -> bool:
        return is_tiny(self.model_name_or_path)

    @property
    def effective_fim_rate(self) -> float:
        return self.fim_rate if self.objective == "fim" else 0.0

    @property
    def quantization(self) -> str | None:
        """What training.modeling loads the base with: `nf4` (QLoRA) or None."""
        return self.bnb_4bit_quant_type if self.load_in_4bit else None

    # Read-only old attribute names, for readers not yet moved to TRL's (recipes and --set refuse them).
    @property
    def dataset(self) -> str:
        return self.dataset_name

    @property
    def train_split(self) -> str:
        return self.dataset_train_split

    @property
    def eval_split(self) -> str | None:
        return self.dataset_test_split


# Old recipe keys → what to write instead (a user's YAML or --set with one fails naming the new key).
RENAMED_FIELDS = {
    "dataset": "dataset_name",
    "train_split": "dataset_train_split",
    "eval_split": "dataset_test_split",
    "quantization": "load_in_4bit: true (with bnb_4bit_quant_type: nf4)",
}
TrainConfig.RENAMED_FIELDS = RENAMED_FIELDS


_SFT_FIELDS = {f.name for f in dataclasses.fields(SFTConfig)}
# The defaults HfArgumentParser (under TrlParser) hands for two TrainingArguments fields whose default it
# cannot express; TrainingArguments.__post_init__ reads both as the default ("no" and no debug options).
_PARSER_DEFAULTS = {"include_num_input_tokens_seen": False, "debug": None}


# Every int/float field and the range it must lie in (training.config_loader.RULES), checked when the
# config is built, before any work.
# fmt: off
_FIELDS_BY_RULE: dict[str, tuple[str, ...]] = {
    "positive": (
        "per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
        "num_train_epochs", "learning_rate", "adam_epsilon", "logging_steps", "eval_steps", "save_steps",
        "save_total_limit", "eval_accumulation_steps", "torch_empty_cache_steps", "neftune_noise_alpha",
        "dataloader_prefetch_factor", "ddp_bucket_cap_mb", "ddp_timeout", "dataset_num_proc",
        "pad_to_multiple_of", *TINY_POSITIVE, "max_train_docs", "max_eval_docs", "cpus",
        "global_batch_tokens", "evals_per_run", "checkpoints_per_run",
    ),
    "non_negative": (
        "warmup_steps", "weight_decay", "max_grad_norm", "eval_delay", "seed", "data_seed",
        "dataloader_num_workers", "router_aux_loss_coef", "gpus",
    ),
    "fraction": ("label_smoothing_factor", "fim_rate", "spm_rate", "lora_dropout", "warmup_ratio"),
    "beta": ("adam_beta1", "adam_beta2"),
    "steps": ("max_steps",),
    "rank": ("local_rank",),
    "": ("lora_r", "lora_alpha", "max_length"),  # checked with their own messages in _value_problems
}
# fmt: on
NUMERIC_RULES = {name: rule for rule, names in _FIELDS_BY_RULE.items() for name in names}


def _value_problems(config: TrainConfig) -> list[str]:
    """Range and consistency problems of a config whose types are already right."""
    problems = rule_problems(config, NUMERIC_RULES)
    if config.objective not in ("fim", "clm"):
        problems.append(f"objective={config.objective!r}: use `fim` or `clm`")
    if config.lora_r <= 0 or config.lora_alpha <= 0:
        problems.append(f"lora_r={config.lora_r}, lora_alpha={config.lora_alpha}: both must be positive")
    if not config.lora_target_modules:
        problems.append("lora_target_modules is empty: name the linear layers to adapt")
    if config.max_length is None or config.max_length < 32:
        problems.append(f"max_length={config.max_length}: must be at least 32 tokens")
    problems += tiny_problems(config, check_vocab=config.is_tiny)
    if config.dtype not in ("bfloat16", "float16", "float32"):
        problems.append(f"dtype={config.dtype!r}: use bfloat16, float16 or float32")
    if config.load_in_4bit and config.bnb_4bit_quant_type != "nf4":
        problems.append(f"bnb_4bit_quant_type={config.bnb_4bit_quant_type!r}: only nf4 is supported")
    problems += schedule_problems(config, {f.name: f.default for f in dataclasses.fields(TrainConfig)})
    if config.model_revision is not None and not config.model_revision.strip():
        problems.append("model_revision is empty: give a 40-hex commit SHA, a tag/branch, or null")
    if not re.fullmatch(r"[1-9][0-9]*(Ki|Mi|Gi|Ti)", config.memory):
        problems.append(f"memory={config.memory!r}: use a Kubernetes quantity such as 8Gi or 320Gi")
    if config.packing and config.packing_strategy not in ("bfd", "bfd_split", "wrapped"):
        problems.append(f"packing_strategy={config.packing_strategy!r}: use bfd, bfd_split or wrapped")
    # Trainer imports the backends only after the data is prepared: a missing package fails here instead.
    problems += report_to_problems(config.report_to)
    return problems


def recipe_dict(recipe: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The recipe's YAML mapping with `overrides` applied and unknown keys rejected."""
    return recipe_mapping(TrainConfig, recipe, overrides)


def trl_parser():
    """TRL's TrlParser over TrainConfig: what an alignment-handbook style script uses,
    `trl_parser().parse_args_and_config(["--config", "recipe.yaml", "--learning_rate", "1e-4"])`. It builds
    the same config as `load_recipe` (tests/test_config_trl.py); this project's CLI keeps its own loader for
    `--recipe NAME`, `--set`, YAML-typed `--key value` and the one-line errors."""
    from trl import TrlParser

    return TrlParser((TrainConfig,))


def load_recipe(recipe: str, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Load and validate a recipe (name or path) with CLI overrides applied."""
    return TrainConfig(**recipe_dict(recipe, overrides))


def to_yaml(config: TrainConfig, keys: list[str]) -> str:
    """The resolved values of `keys` (the recipe's own keys plus resolved revisions) as YAML."""
    values = config.to_dict()  # enums (eval_strategy, lr_scheduler_type, …) become plain strings here
    return yaml.safe_dump({k: values[k] for k in keys}, sort_keys=False)


def recipe_from_args(args, data_only: bool = False) -> tuple[TrainConfig, list[str]]:
    """(validated config, the keys the recipe + overrides set) from parsed `add_recipe_args` options.

    `data_only` (for `prepare`, which only tokenizes): without a CUDA GPU the device settings are set to the
    CPU (`use_cpu`, no bf16) so a GPU recipe's data can be prepared anywhere; `train` keeps the check."""
    overrides = parse_overrides(args.set)
    # TRL-style `--KEY VALUE` flags come after --set: the later value wins, as on TrlParser's command line.
    overrides.update(flag_overrides(TrainConfig, getattr(args, "field_flags", [])))
    if args.dataset:  # `--dataset` is the documented alias of `--dataset_name`
        overrides["dataset_name"] = args.dataset
    if args.dataset_revision:
        overrides["dataset_revision"] = args.dataset_revision
    data = recipe_dict(args.recipe, overrides)
    keys = list(data)
    if data_only and not torch.cuda.is_available():
        data = {**data, "use_cpu": True, "bf16": False, "fp16": False}
    return TrainConfig(**data), keys
