"""Typed configuration of `evaluate`: a dataclass validated when it is made, from flags, YAML or code.

    python -m training evaluate --config eval.yaml --set infill_tasks=50 --adapter RUN/adapter

Precedence: the dataclass defaults < the `--config` YAML < `--set KEY=VALUE` < explicit flags. The field names
are the flags' names with `_` (`--max-new-tokens` is `max_new_tokens`). job.py, workflows.py and the mini
experiment build an `EvalConfig` directly and call `evaluate(config)`; no stage passes argv to another.
Nothing here imports torch: a bad value fails in milliseconds, before any model is loaded.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import math
from dataclasses import dataclass, field
from datetime import date as _date
from pathlib import Path
from typing import Any

import yaml

from training.evaluation.freshness import CODE_LLAMA_CUTOFF, CUTOFF_SOURCE
from training.options import (
    EVALUATE_HELP,
    INFILL_MODE_HELP,
    INFILL_MODES,
    add_set_option,
    non_negative_int,
    positive_int,
)

DTYPES = ("bfloat16", "float16", "float32")


@dataclass(frozen=True)
class EvalConfig:
    """What `python -m training evaluate` scores, and how (docs/ARCHITECTURE.md §4 records it)."""

    dataset: str = field(default="", metadata={"help": "dataset folder or Hub id (required)"})
    dataset_revision: str | None = None
    split: str = "test"
    base: str | None = field(default=None, metadata={"help": "base model; default: the adapter's base"})
    base_revision: str | None = None
    adapter: str | None = field(default=None, metadata={"help": "RUN/adapter folder, scored beside its base"})
    adapter_revision: str | None = field(
        default=None, metadata={"help": "with a Hub id as --adapter: its tag or commit (default: main)"}
    )
    context: int | None = field(default=None, metadata={"help": "window; default: the model's positions"})
    stride: int | None = field(default=None, metadata={"help": "new tokens per window; default context // 2"})
    batch_size: int = 4
    dtype: str | None = field(default=None, metadata={"help": "default: bfloat16 on GPU, else float32"})
    max_docs: int | None = None
    infill_tasks: int = field(
        default=1000,
        metadata={
            "help": "clean infilling tasks to cut, spread over (language, kind); 1,000 is the scale of "
            "HumanEval-infilling (1,033 single-line); on a CPU score a subset, e.g. 200 (0: perplexity only)"
        },
    )
    infill_seed: int = 0
    api_tasks: int = field(
        default=300,
        metadata={
            "help": "API-usage tasks to cut (flytekit imports, decorators, calls; 0: none), scored with "
            "api_valid (names exist, calls bind); seeded by infill_seed"
        },
    )
    # Execution tasks (training/evaluation/execution.py): a @task body as the hole, passed when the example's
    # workflows, run in the sandbox, return the original outputs.
    exec_tasks: int = field(
        default=0,
        metadata={
            "help": "execution tasks to cut (0: none; e.g. 100): held-out example files are run in a "
            "sandbox first, so this takes minutes; seeded by infill_seed"
        },
    )
    exec_max_new_tokens: int = field(default=384, metadata={"help": "tokens a generated task body may take"})
    exec_timeout: int = field(default=60, metadata={"help": "wall-clock seconds per sandboxed run"})
    exec_reference_budget: int = field(
        default=30, metadata={"help": "seconds the original file may take; slower files are excluded"}
    )
    exec_workers: int | None = field(default=None, metadata={"help": "parallel runs; default: CPU cores"})
    exec_memory_mb: int = field(default=4096, metadata={"help": "address-space limit of each run (MB)"})
    infill_from: str | None = field(
        default=None,
        metadata={
            "help": "score published tasks instead of cutting new ones: an infilling_tasks.jsonl, or a "
            "dataset folder or Hub id with an `infilling` config (at --dataset-revision), cut from "
            "--dataset's split"
        },
    )
    infill_mode: str = field(default="psm", metadata={"help": INFILL_MODE_HELP})
    max_new_tokens: int = 128
    prefix_tokens: int = 1024
    suffix_tokens: int = 512
    out: str = field(default="eval_results.json", metadata={"help": "results file; tasks go beside it"})
    # Decontamination, freshness, baselines and intervals (docs/EVALUATION.md).
    decontaminate: bool = field(
        default=True,
        metadata={"help": "drop tasks whose hole with context, or middle, occurs in train/validation"},
    )
    decontam_context: int = field(
        default=2, metadata={"help": "lines of context each side of a checked hole"}
    )
    decontam_min_chars: int = field(default=20, metadata={"help": "shortest middle checked on its own"})
    git_dirs: str | None = field(
        default=None,
        metadata={
            "help": "folder holding the repos' git dirs (<repo>.git or <repo>/.git) with the pinned "
            "commits: tasks get authored dates (git blame) and the fresh slice is scored"
        },
    )
    fresh_cutoff: str = field(
        default=CODE_LLAMA_CUTOFF,
        metadata={"help": f"YYYY-MM-DD: middles authored on or after it are fresh ({CUTOFF_SOURCE})"},
    )
    baselines: bool = field(default=True, metadata={"help": "score the trivial baselines on the same tasks"})
    ngram_max_tokens: int = field(
        default=4_000_000, metadata={"help": "train tokens the n-gram baseline reads"}
    )
    byte_ngram_max_bytes: int = field(
        default=32_000_000,
        metadata={"help": "train bytes the byte n-gram likelihood baseline counts (bits/byte, nats/char)"},
    )
    likelihood: bool = field(
        default=True, metadata={"help": "teacher-forced nats/char and /token of the middles (PSM and SPM)"}
    )
    bootstrap_seed: int = 0
    # Retrieval-augmented systems (training/evaluation/retrieval_benchmark.py, docs/EVALUATION.md).
    retrieval: bool = field(
        default=False,
        metadata={"help": "also score base and adapter with BM25-retrieved train chunks in the prompt"},
    )
    retrieval_index: str | None = field(
        default=None,
        metadata={"help": "index folder (built there from the train split if absent; default: beside --out)"},
    )
    retrieval_k: int = field(default=5, metadata={"help": "chunks retrieved per task"})
    retrieval_tokens: int = field(default=512, metadata={"help": "token budget of the retrieved context"})

    def __post_init__(self) -> None:
        problems = _type_problems(self)
        if not problems:
            problems = _value_problems(self)
        if problems:
            raise ValueError("invalid evaluation config: " + "; ".join(problems))

    def replace(self, **changes: Any) -> EvalConfig:
        """A copy with `changes` applied (validated again)."""
        return dataclasses.replace(self, **changes)


_POSITIVE = (
    "context",
    "stride",
    "batch_size",
    "max_docs",
    "max_new_tokens",
    "prefix_tokens",
    "suffix_tokens",
    "ngram_max_tokens",
    "byte_ngram_max_bytes",
    "retrieval_k",
    "retrieval_tokens",
    "exec_max_new_tokens",
    "exec_timeout",
    "exec_reference_budget",
    "exec_workers",
    "exec_memory_mb",
)
_NON_NEGATIVE = (
    "infill_tasks",
    "api_tasks",
    "exec_tasks",
    "infill_seed",
    "decontam_context",
    "decontam_min_chars",
    "bootstrap_seed",
)
FIELDS = {f.name: f for f in dataclasses.fields(EvalConfig)}
_TYPES = {  # what YAML or --set may give for each field (bool is never an int here)
    name: (int,) if f.type in ("int", "int | None") else (bool,) if f.type == "bool" else (str,)
    for name, f in FIELDS.items()
}


def _type_problems(config: EvalConfig) -> list[str]:
    out = []
    for name, f in FIELDS.items():
        value = getattr(config, name)
        if value is None and "None" in str(f.type):
            continue
        if isinstance(value, bool) != (_TYPES[name] == (bool,)) or not isinstance(value, _TYPES[name]):
            want = {(int,): "an integer", (bool,): "true or false"}.get(_TYPES[name], "a string")
            out.append(f"{name}={value!r} must be {want}" + (" or null" if "None" in str(f.type) else ""))
    return out


def _value_problems(c: EvalConfig) -> list[str]:
    out = []
    if not c.dataset.strip():
        out.append("dataset is empty: pass --dataset FOLDER_OR_HUB_ID")
    for name in _POSITIVE:
        if getattr(c, name) is not None and getattr(c, name) <= 0:
            out.append(f"{name}={getattr(c, name)} must be positive")
    for name in _NON_NEGATIVE:
        if getattr(c, name) < 0:
            out.append(f"{name}={getattr(c, name)} must be >= 0")
    if c.infill_mode not in INFILL_MODES:
        out.append(f"infill_mode={c.infill_mode!r}: use one of {', '.join(INFILL_MODES)}")
    try:
        _date.fromisoformat(c.fresh_cutoff)
    except ValueError:
        out.append(f"fresh_cutoff={c.fresh_cutoff!r} is not a YYYY-MM-DD date")
    if c.dtype is not None and c.dtype not in DTYPES:
        out.append(f"dtype={c.dtype!r}: use one of {', '.join(DTYPES)}")
    if c.retrieval_index is not None and not c.retrieval:
        out.append("retrieval_index is set but retrieval is off: add --retrieval (or drop the index)")
    return out


def parse_eval_overrides(pairs: list[str]) -> dict[str, Any]:
    """`["infill_tasks=12", "dtype=float32"]` → {"infill_tasks": 12, "dtype": "float32"}, names checked."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"override {pair!r} is not KEY=VALUE (e.g. --set infill_tasks=50)")
        _check_name(key, "--set")
        raw = raw.strip()
        if raw in ("", "null", "~", "None"):
            value = None
        elif _TYPES[key] == (str,):
            value = raw  # paths, ids and revisions are text as given ("1.0", "a: b" stay strings)
        else:
            try:
                value = yaml.safe_load(raw)
            except yaml.YAMLError:
                value = raw
            if isinstance(value, float) and math.isfinite(value) and value.is_integer():
                value = int(value)
        out[key] = value
    return out


def _check_name(key: str, where: str) -> None:
    if key not in FIELDS:
        close = difflib.get_close_matches(key, FIELDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"{where}: unknown evaluation field {key!r}{hint}; known: {', '.join(FIELDS)}")


def load_eval_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping of an evaluation YAML file, keys checked against EvalConfig's fields."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ValueError(f"cannot read --config {path}: {err.strerror or err}") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds a YAML {type(data).__name__}, not a mapping of field: value")
    for key in data:
        _check_name(str(key), str(path))
    return data


def eval_config_from_args(args: argparse.Namespace, given: set[str]) -> EvalConfig:
    """The config of a parsed `python -m training evaluate`: YAML < --set < the flags in `given`."""
    values: dict[str, Any] = {}
    if getattr(args, "config", None):
        values.update(load_eval_yaml(args.config))
    values.update(parse_eval_overrides(getattr(args, "set", None) or []))
    values.update({name: getattr(args, name) for name in FIELDS if name in given})
    if "out" in values and values["out"] is not None:
        values["out"] = str(values["out"])
    return EvalConfig(**values)


def evaluate_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The options of `python -m training evaluate`: one flag per EvalConfig field, plus --config and --set.

    Flags default to "not given" (argparse.SUPPRESS), so `eval_config_from_args` can tell a flag from a
    default and let it override the YAML and --set.
    """
    p = parser or argparse.ArgumentParser(prog="python -m training evaluate", description=EVALUATE_HELP)
    p.add_argument(
        "--config", type=Path, help="evaluation YAML: a mapping of the fields below (flag names with _)"
    )
    add_set_option(p, "override config fields, e.g. --set infill_tasks=50 max_new_tokens=64 (repeatable)")
    defaults = EvalConfig.__dataclass_fields__
    for name, f in FIELDS.items():
        kind = positive_int if name in _POSITIVE else non_negative_int if name in _NON_NEGATIVE else str
        default = defaults[name].default
        text = f.metadata.get("help", "")
        if default not in (None, ""):
            text = f"{text} (default: {default})" if text else f"default: {default}"
        choices = INFILL_MODES if name == "infill_mode" else DTYPES if name == "dtype" else None
        if _TYPES[name] == (bool,):
            p.add_argument(
                "--" + name.replace("_", "-"),
                dest=name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=text.replace("%", "%%"),
            )
            continue
        p.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            type=kind,
            choices=choices,
            default=argparse.SUPPRESS,
            help=text.replace("%", "%%"),
        )
    return p


def given_fields(args: argparse.Namespace) -> set[str]:
    """The EvalConfig fields set by a flag on this command line (the others were suppressed)."""
    return {name for name in FIELDS if hasattr(args, name)}


def command_flags(config: EvalConfig) -> list[str]:
    """The `python -m training evaluate` flags that reproduce `config` (fields left at their defaults are
    omitted): what reports print so a reader can rerun one stage by hand."""
    flags = []
    for name, f in FIELDS.items():
        value = getattr(config, name)
        if value != f.default and value is not None:
            flag = "--" + name.replace("_", "-")
            if isinstance(value, bool):
                flags.append(flag if value else "--no-" + name.replace("_", "-"))
            else:
                flags += [flag, str(value)]
    return flags
