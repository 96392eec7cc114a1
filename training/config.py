"""Typed training configuration: TRL's SFTConfig plus the model, LoRA, data and FIM fields of a recipe.

A recipe is one flat YAML file under `training/recipes/` (alignment-handbook style). `load_recipe` reads it,
applies `key=value` overrides from the command line, rejects unknown keys, and validates every value, so a
typo fails at once with a message that says what to change instead of hours into a run.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import math
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
TINY_PREFIX = "tiny"  # recipes whose base is built locally say `model_name_or_path: tiny` (or `tiny:<name>`)
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def is_tiny(name_or_path: str) -> bool:
    """True for the locally built tiny base (`tiny` or `tiny:<anything>`), which has no Hub id."""
    return name_or_path == TINY_PREFIX or name_or_path.startswith(TINY_PREFIX + ":")


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
        # Defaults are the libraries' own business; what the recipe or --set gave is checked.
        names = {f.name for f in dataclasses.fields(TrainConfig)}
        problems = _type_problems(self, names - _SFT_FIELDS) + _type_problems(self, _SFT_FIELDS, True)
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


_SFT_FIELDS = {f.name for f in dataclasses.fields(SFTConfig)}


# Every int/float field and the range it must lie in, checked when the config is built (before any work).
# Trainer's convention for max_steps: a positive count, or -1 to train for num_train_epochs instead.
_RULES: dict[str, tuple[Any, str]] = {
    "positive": (lambda v: v > 0, "must be positive"),
    "non_negative": (lambda v: v >= 0, "must be 0 or more"),
    "fraction": (lambda v: 0 <= v <= 1, "must be between 0 and 1"),
    "beta": (lambda v: 0 <= v < 1, "must be at least 0 and below 1"),
    "steps": (lambda v: v > 0 or v == -1, "must be positive, or -1 to train for num_train_epochs"),
    "rank": (lambda v: v >= -1, "must be -1 (not distributed) or a process rank"),
}
# fmt: off
_FIELDS_BY_RULE: dict[str, tuple[str, ...]] = {
    "positive": (
        "per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
        "num_train_epochs", "learning_rate", "adam_epsilon", "logging_steps", "eval_steps", "save_steps",
        "save_total_limit", "eval_accumulation_steps", "torch_empty_cache_steps", "neftune_noise_alpha",
        "dataloader_prefetch_factor", "ddp_bucket_cap_mb", "ddp_timeout", "dataset_num_proc",
        "pad_to_multiple_of", "tiny_vocab_size", "tiny_tokenizer_chars", "tiny_hidden_size",
        "tiny_num_layers",
        "tiny_num_heads", "tiny_intermediate_size", "max_train_docs", "max_eval_docs", "cpus",
    ),
    "non_negative": (
        "warmup_steps", "weight_decay", "max_grad_norm", "eval_delay", "seed", "data_seed",
        "dataloader_num_workers", "router_aux_loss_coef", "gpus",
    ),
    "fraction": ("label_smoothing_factor", "fim_rate", "spm_rate", "lora_dropout"),
    "beta": ("adam_beta1", "adam_beta2"),
    "steps": ("max_steps",),
    "rank": ("local_rank",),
    "": ("lora_r", "lora_alpha", "max_length"),  # checked with their own messages in _value_problems
}
# fmt: on
NUMERIC_RULES = {name: rule for rule, names in _FIELDS_BY_RULE.items() for name in names}


def _value_problems(config: TrainConfig) -> list[str]:
    """Range and consistency problems of a config whose types are already right."""
    problems = []
    for name, rule in NUMERIC_RULES.items():
        value = getattr(config, name, None)
        if not rule or not isinstance(value, (int, float)) or isinstance(value, bool):
            continue  # None (= the library's default behaviour) or a string the type allows
        ok, need = _RULES[rule]
        if not math.isfinite(value) or not ok(value):
            problems.append(f"{name}={value!r}: {need}")
    if config.objective not in ("fim", "clm"):
        problems.append(f"objective={config.objective!r}: use `fim` or `clm`")
    if config.lora_r <= 0 or config.lora_alpha <= 0:
        problems.append(f"lora_r={config.lora_r}, lora_alpha={config.lora_alpha}: both must be positive")
    if not config.lora_target_modules:
        problems.append("lora_target_modules is empty: name the linear layers to adapt")
    if config.max_length is None or config.max_length < 32:
        problems.append(f"max_length={config.max_length}: must be at least 32 tokens")
    if config.is_tiny:
        from training.tiny import BYTE_TOKENS, SPECIAL

        floor = len(SPECIAL) + len(BYTE_TOKENS) + 16  # build_tiny_tokenizer's own minimum
        if config.tiny_vocab_size < floor:
            problems.append(f"tiny_vocab_size={config.tiny_vocab_size}: must be at least {floor}")
    heads = config.tiny_num_heads
    if heads > 0 and (config.tiny_hidden_size % heads or (config.tiny_hidden_size // heads) % 2):
        problems.append(
            f"tiny_hidden_size={config.tiny_hidden_size}: must be tiny_num_heads ({heads}) times an even "
            "head size (rotary embeddings)"
        )
    if config.dtype not in ("bfloat16", "float16", "float32"):
        problems.append(f"dtype={config.dtype!r}: use bfloat16, float16 or float32")
    if config.quantization not in (None, "nf4"):
        problems.append(f"quantization={config.quantization!r}: use null or nf4")
    if config.model_revision is not None and not config.model_revision.strip():
        problems.append("model_revision is empty: give a 40-hex commit SHA, a tag/branch, or null")
    if not re.fullmatch(r"[1-9][0-9]*(Ki|Mi|Gi|Ti)", config.memory):
        problems.append(f"memory={config.memory!r}: use a Kubernetes quantity such as 8Gi or 320Gi")
    if config.packing and config.packing_strategy not in ("bfd", "bfd_split", "wrapped"):
        problems.append(f"packing_strategy={config.packing_strategy!r}: use bfd, bfd_split or wrapped")
    return problems


def _matches(value: Any, hint: Any) -> bool:
    """Whether a YAML value (str, int, float, bool, None, list, dict) fits a field annotation."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is typing.Literal:
        return any(value is a or (type(value) is type(a) and value == a) for a in args)
    if origin is list:
        return isinstance(value, list) and all(_matches(v, args[0]) for v in value) if args else True
    if origin is not None:
        return isinstance(value, origin)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)  # `fim_rate: 1` is fine
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return isinstance(value, (hint, str))  # the library turns the string into its enum (or says no)
    return isinstance(value, hint) if isinstance(hint, type) else True


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is type(None):
        return "null"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is typing.Literal:
        return " or ".join(repr(a) for a in args)
    if origin is list:
        return f"a list of {_describe(args[0])}" if args else "a list"
    return getattr(origin or hint, "__name__", str(hint))


def _type_problems(config: Any, names: set[str], skip_defaults: bool = False) -> list[str]:
    """YAML gives strings, ints, floats, lists: check them against the annotations so `lora_r: "16"` or
    `learning_rate: abc` is an error naming the field rather than a crash deep inside training."""
    hints = typing.get_type_hints(type(config))
    fields = {f.name: f for f in dataclasses.fields(config)}
    problems = []
    for name in sorted(names):
        value, f = getattr(config, name), fields[name]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if skip_defaults and (value is default or value == default):
            continue
        if not _matches(value, hints[name]):
            problems.append(f"{name}={value!r} has the wrong type: expected {_describe(hints[name])}")
    return problems


def _check_types(config: Any, names: set[str]) -> None:
    """Raise ValueError naming the first field whose value does not fit its annotation."""
    problems = _type_problems(config, names)
    if problems:
        raise ValueError(problems[0])


def recipe_path(recipe: str) -> Path:
    """`tiny` → training/recipes/tiny.yaml; a path to a .yaml file is used as is."""
    path = Path(recipe)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    known = ", ".join(sorted(p.stem for p in RECIPES_DIR.glob("*.yaml")))
    if path.suffix in (".yaml", ".yml") or len(path.parts) > 1:
        raise FileNotFoundError(
            f"recipe file {recipe} not found: pass an existing .yaml file or one of {known}"
        )
    path = RECIPES_DIR / f"{recipe}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no recipe {recipe!r}: choose one of {known}, or pass a path to a .yaml")
    return path


class _RecipeLoader(yaml.SafeLoader):
    """SafeLoader that reads `1e-4` as a number (YAML 1.2; PyYAML alone reads it as a string) and refuses
    a key given twice (PyYAML alone keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, typing.Hashable) and key in seen:
                mark = key_node.start_mark
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} is given twice (line {mark.line + 1}): keep one", mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _load_yaml(text: str, where: str) -> Any:
    """YAML text → Python values, or a one-line ValueError saying where the syntax is wrong."""
    try:
        return yaml.load(text, Loader=_RecipeLoader)  # a SafeLoader: no arbitrary objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ValueError(f"{where} is not valid YAML{at}: {problem}; fix the syntax there") from exc


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`["max_steps=5", "fim_rate=0.5"]` → {"max_steps": 5, "fim_rate": 0.5} (values parsed as YAML)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {pair!r} is not KEY=VALUE (e.g. --set max_steps=10)")
        out[key.strip()] = _load_yaml(value, f"--set {pair!r}: the value")
    return _strategies_as_strings(out)


def _strategies_as_strings(data: dict[str, Any]) -> dict[str, Any]:
    """YAML 1.1 reads `eval_strategy: no` as False; the Trainer's *_strategy fields want the string "no"."""
    return {
        k: "no" if isinstance(k, str) and k.endswith("_strategy") and v is False else v
        for k, v in data.items()
    }


def recipe_dict(recipe: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The recipe's YAML mapping with `overrides` applied and unknown keys rejected."""
    path = recipe_path(recipe)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text: save the recipe as UTF-8 YAML") from exc
    data = _load_yaml(text, str(path))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(
            f"{path} holds a YAML {type(data).__name__}, not a mapping: a recipe is `field: value` lines"
        )
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    for key in [*data, *(overrides or {})]:
        if key not in known:
            source = "--set" if key in (overrides or {}) else str(path)
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{source}: unknown field {key!r}{hint}")
    return _strategies_as_strings({"recipe_name": path.stem, **data, **(overrides or {})})


def load_recipe(recipe: str, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Load and validate a recipe (name or path) with CLI overrides applied."""
    return TrainConfig(**recipe_dict(recipe, overrides))


def to_yaml(config: TrainConfig, keys: list[str]) -> str:
    """The resolved values of `keys` (the recipe's own keys plus resolved revisions) as YAML."""
    values = config.to_dict()  # enums (eval_strategy, lr_scheduler_type, …) become plain strings here
    return yaml.safe_dump({k: values[k] for k in keys}, sort_keys=False)


def recipe_from_args(args) -> tuple[TrainConfig, list[str]]:
    """(validated config, the keys the recipe + overrides set) from parsed `add_recipe_args` options."""
    overrides = parse_overrides(args.set)
    if args.dataset:
        overrides["dataset"] = args.dataset
    if args.dataset_revision:
        overrides["dataset_revision"] = args.dataset_revision
    data = recipe_dict(args.recipe, overrides)
    return TrainConfig(**data), list(data)
