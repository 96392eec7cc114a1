"""Typed training configuration: TRL's SFTConfig plus the model, LoRA, data and FIM fields of a recipe.

A recipe is one flat YAML file under `training/recipes/` (alignment-handbook style). `load_recipe` reads it,
applies `key=value` overrides from the command line, rejects unknown keys, and validates every value, so a
typo fails at once with a message that says what to change instead of hours into a run.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from trl import SFTConfig

RECIPES_DIR = Path(__file__).parent / "recipes"
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class TrainConfig(SFTConfig):
    """SFTConfig (all of TRL's/Trainer's fields keep their names) + what a Flyte Llama recipe adds."""

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
    quantization: str | None = field(default=None, metadata={"help": "null, or `nf4` for QLoRA (CUDA)."})
    attn_implementation: str | None = field(
        default=None, metadata={"help": "null = flash_attention_2 when installed on a GPU, else sdpa."}
    )
    # --- tiny base (only when model_name_or_path is `tiny`) ------------------------------------------------
    tiny_vocab_size: int = field(default=512, metadata={"help": "BPE vocabulary trained on the train split."})
    tiny_tokenizer_chars: int = field(default=2_000_000, metadata={"help": "Characters to train the BPE on."})
    tiny_hidden_size: int = 64
    tiny_num_layers: int = 2
    tiny_num_heads: int = 4
    tiny_intermediate_size: int = 128
    # --- LoRA ----------------------------------------------------------------------------------------------
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator (scale = alpha / r)."})
    lora_dropout: float = 0.05
    lora_target_modules: list[str] = field(
        default_factory=lambda: list(ALL_LINEAR), metadata={"help": "Linear layers that get an adapter."}
    )
    # --- data ----------------------------------------------------------------------------------------------
    dataset: str = field(default="", metadata={"help": "Dataset folder (docs/ARCHITECTURE.md §2) or Hub id."})
    dataset_revision: str | None = field(default=None, metadata={"help": "Hub dataset tag/commit to pin."})
    train_split: str = "train"
    eval_split: str | None = field(default="validation", metadata={"help": "null = no evaluation."})
    max_train_docs: int | None = field(
        default=None, metadata={"help": "Use only the first N train documents."}
    )
    max_eval_docs: int | None = field(default=None, metadata={"help": "Use only the first N eval documents."})
    # --- hardware the recipe is sized for (Flyte resources in workflows.py) ---------------------------------
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
        _check_types(self, {f.name for f in dataclasses.fields(TrainConfig)} - _SFT_FIELDS)
        problems = []
        if self.objective not in ("fim", "clm"):
            problems.append(f"objective={self.objective!r}: use `fim` or `clm`")
        for name in ("fim_rate", "spm_rate", "lora_dropout"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name}={getattr(self, name)}: must be between 0 and 1")
        if self.lora_r <= 0 or self.lora_alpha <= 0:
            problems.append(f"lora_r={self.lora_r}, lora_alpha={self.lora_alpha}: both must be positive")
        if not self.lora_target_modules:
            problems.append("lora_target_modules is empty: name the linear layers to adapt")
        if self.max_length is None or self.max_length < 32:
            problems.append(f"max_length={self.max_length}: must be at least 32 tokens")
        if self.dtype not in ("bfloat16", "float16", "float32"):
            problems.append(f"dtype={self.dtype!r}: use bfloat16, float16 or float32")
        if self.quantization not in (None, "nf4"):
            problems.append(f"quantization={self.quantization!r}: use null or nf4")
        if self.model_revision is not None and not self.model_revision.strip():
            problems.append("model_revision is empty: give a 40-hex commit SHA, a tag/branch, or null")
        if self.gpus < 0 or self.cpus < 1:
            problems.append(f"gpus={self.gpus}, cpus={self.cpus}: need gpus >= 0 and cpus >= 1")
        if not re.fullmatch(r"[1-9][0-9]*(Ki|Mi|Gi|Ti)", self.memory):
            problems.append(f"memory={self.memory!r}: use a Kubernetes quantity such as 8Gi or 320Gi")
        if self.packing and self.packing_strategy not in ("bfd", "bfd_split", "wrapped"):
            problems.append(f"packing_strategy={self.packing_strategy!r}: use bfd, bfd_split or wrapped")
        if problems:
            raise ValueError(f"invalid recipe {self.recipe_name!r}:\n  - " + "\n  - ".join(problems))

    @property
    def is_tiny(self) -> bool:
        from training.modeling import is_tiny

        return is_tiny(self.model_name_or_path)

    @property
    def effective_fim_rate(self) -> float:
        return self.fim_rate if self.objective == "fim" else 0.0


_SFT_FIELDS = {f.name for f in dataclasses.fields(SFTConfig)}


def _check_types(config: Any, names: set[str]) -> None:
    """YAML gives strings, ints, floats, lists: check them against the annotations so `lora_r: "16"` or
    `fim_rate: high` is an error naming the field rather than a crash deep inside training."""
    hints = typing.get_type_hints(type(config))
    for name in sorted(names):
        value, hint = getattr(config, name), hints[name]
        allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        origins = tuple(typing.get_origin(a) or a for a in allowed)
        if float in origins and isinstance(value, int) and not isinstance(value, bool):
            continue  # `fim_rate: 1` is fine
        if not isinstance(value, origins) or (isinstance(value, bool) and bool not in origins):
            names_ = " or ".join("null" if a is type(None) else a.__name__ for a in origins)
            raise ValueError(f"{name}={value!r} has the wrong type: expected {names_}")


def recipe_path(recipe: str) -> Path:
    """`tiny` → training/recipes/tiny.yaml; a path to a .yaml file is used as is."""
    path = Path(recipe)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    path = RECIPES_DIR / f"{recipe}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in RECIPES_DIR.glob("*.yaml")))
        raise FileNotFoundError(f"no recipe {recipe!r}: choose one of {known}, or pass a path to a .yaml")
    return path


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`["max_steps=5", "fim_rate=0.5"]` → {"max_steps": 5, "fim_rate": 0.5} (values parsed as YAML)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"override {pair!r} is not KEY=VALUE (e.g. --set max_steps=10)")
        out[key.strip()] = yaml.safe_load(value)
    return _strategies_as_strings(out)


def _strategies_as_strings(data: dict[str, Any]) -> dict[str, Any]:
    """YAML 1.1 reads `eval_strategy: no` as False; the Trainer's *_strategy fields want the string "no"."""
    return {k: "no" if k.endswith("_strategy") and v is False else v for k, v in data.items()}


def recipe_dict(recipe: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The recipe's YAML mapping with `overrides` applied and unknown keys rejected."""
    path = recipe_path(recipe)
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a recipe is a YAML mapping of field: value")
    data = _strategies_as_strings({"recipe_name": path.stem, **data, **(overrides or {})})
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{path}: unknown field {key!r}{hint}")
    return data


def load_recipe(recipe: str, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Load and validate a recipe (name or path) with CLI overrides applied."""
    return TrainConfig(**recipe_dict(recipe, overrides))


def to_yaml(config: TrainConfig, keys: list[str]) -> str:
    """The resolved values of `keys` (the recipe's own keys plus resolved revisions) as YAML."""
    values = config.to_dict()  # enums (eval_strategy, lr_scheduler_type, …) become plain strings here
    return yaml.safe_dump({k: values[k] for k in keys}, sort_keys=False)


def add_recipe_args(parser) -> None:
    """The options every `python -m training` command shares."""
    parser.add_argument("--recipe", default="tiny", help="recipe name (training/recipes/) or a .yaml path")
    parser.add_argument("--dataset", help="dataset folder or Hub id (overrides the recipe's `dataset`)")
    parser.add_argument("--dataset-revision", help="Hub dataset revision (tag or commit)")
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE", help="override recipe fields, e.g. max_steps=10"
    )


def recipe_from_args(args) -> tuple[TrainConfig, list[str]]:
    """(validated config, the keys the recipe + overrides set) from parsed `add_recipe_args` options."""
    overrides = parse_overrides(args.set)
    if args.dataset:
        overrides["dataset"] = args.dataset
    if args.dataset_revision:
        overrides["dataset_revision"] = args.dataset_revision
    data = recipe_dict(args.recipe, overrides)
    return TrainConfig(**data), list(data)
