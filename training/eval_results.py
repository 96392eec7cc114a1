"""`eval_results.json` (docs/ARCHITECTURE.md §4): build, validate, write atomically, read, and summarise.

The model card reads only this file, so everything about it lives here: the metric records, the checks that
a file follows schema version 1, and the rich table `python -m training evaluate` prints at the end.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from flyte_llama_common.atomic import write_text_atomic

SCHEMA_VERSION = 2  # 2: exact_match_strict, valid_fill, ci95, likelihood, baselines, differences
MODEL_KEYS = ("base", "adapter")
PERPLEXITY_FIELDS = {
    "perplexity": float,
    "loss": float,
    "bits_per_byte": float,
    "tokens": int,
    "bytes": int,
    "documents": int,
}
INFILL_FIELDS = ("exact_match", "exact_match_strict", "edit_similarity", "valid_fill", "tasks", "ci95")
OPTIONAL_FIELDS = (
    "nats_per_char_psm",
    "nats_per_token_psm",
    "nats_per_char_spm",
    "nats_per_token_spm",
    "api_valid",
    "pass_at_1",
)


class EvalResultsError(ValueError):
    """An eval_results.json that does not follow docs/ARCHITECTURE.md §4."""


def portable_location(value: str | None, results_path: str | os.PathLike) -> str | None:
    """How eval_results.json names a dataset, model or tasks source (§4): a Hub id as is; a local path as
    `./x` or `../x`, relative to the results' folder, when it lies within two levels above it; any other
    local path as `local:NAME` (its last component only).

    The file is published with the model, so it must not carry this machine's absolute paths (a home
    directory, a user name); the relative form still finds a run's own adapter, base and corpus."""
    if not value or not Path(value).expanduser().exists():
        return value  # a Hub id (ORG/NAME) or nothing
    target = Path(value).expanduser().resolve()
    rel = Path(os.path.relpath(target, Path(results_path).expanduser().resolve().parent))
    if rel.parts.count("..") > 2:
        return f"local:{target.name}"
    text = rel.as_posix()
    return text if text.startswith("..") else "./" if text == "." else f"./{text}"


def _is_local_absolute(value: Any) -> bool:
    return isinstance(value, str) and (os.path.isabs(value) or value.startswith("~"))


def perplexity_metrics(nll_sum: float, tokens: int, num_bytes: int, documents: int) -> dict[str, Any]:
    """The §4 `M` record from summed negative log-likelihood (nats) over `tokens` scored tokens.

    loss is the token-weighted mean; bits per byte divides the same total by the UTF-8 bytes, which makes
    models with different tokenizers comparable.
    """
    if tokens <= 0:
        raise ValueError("no tokens were scored: the documents are empty")
    loss = nll_sum / tokens
    return {
        "perplexity": math.exp(loss),
        "loss": loss,
        "bits_per_byte": nll_sum / math.log(2) / num_bytes if num_bytes else float("nan"),
        "tokens": int(tokens),
        "bytes": int(num_bytes),
        "documents": int(documents),
    }


def build_results(
    *,
    dataset: Mapping[str, Any],
    models: Mapping[str, Any],
    settings: Mapping[str, Any],
    perplexity: Mapping[str, Any],
    held_out_bits_per_byte: Mapping[str, Any] | None = None,
    infilling: Mapping[str, Any] | None = None,
    api_usage: Mapping[str, Any] | None = None,
    execution: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble a results dict in the §4 key order and validate it."""
    results: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "dataset": dict(dataset),
        "models": dict(models),
        "settings": dict(settings),
        "perplexity": dict(perplexity),
    }
    if held_out_bits_per_byte is not None:
        results["held_out_bits_per_byte"] = dict(held_out_bits_per_byte)
    if infilling is not None:
        results["infilling"] = dict(infilling)
    if api_usage is not None:
        results["api_usage"] = dict(api_usage)
    if execution is not None:
        results["execution"] = dict(execution)
    validate_results(results)
    return results


def _check_perplexity_record(where: str, record: Any) -> None:
    if not isinstance(record, Mapping):
        raise EvalResultsError(f"{where} must be an object, got {type(record).__name__}")
    for field, kind in PERPLEXITY_FIELDS.items():
        if field not in record:
            raise EvalResultsError(f"{where} lacks '{field}'")
        if kind is int and not isinstance(record[field], int):
            raise EvalResultsError(f"{where}.{field} must be an integer")
        if kind is float and not isinstance(record[field], (int, float)):
            raise EvalResultsError(f"{where}.{field} must be a number")


def _check_infill_record(where: str, record: Any) -> None:
    keys = set(record) if isinstance(record, Mapping) else set()
    if not isinstance(record, Mapping) or not set(INFILL_FIELDS) <= keys <= {
        *INFILL_FIELDS,
        *OPTIONAL_FIELDS,
    }:
        raise EvalResultsError(
            f"{where} must have the keys {INFILL_FIELDS} (and optionally {OPTIONAL_FIELDS})"
        )


def _check_infill_block(where: str, block: Any) -> None:
    if not isinstance(block, Mapping):
        raise EvalResultsError(f"{where} must be an object")
    _check_infill_record(f"{where}.overall", block.get("overall"))
    if "fresh" in block:
        _check_infill_record(f"{where}.fresh", block["fresh"])
    for group in ("by_kind", "by_language"):
        for name, record in block.get(group, {}).items():
            _check_infill_record(f"{where}.{group}.{name}", record)


def validate_results(results: Mapping[str, Any]) -> None:
    """Raise EvalResultsError naming the first place where `results` breaks schema version 1."""
    if results.get("schema_version") != SCHEMA_VERSION:
        raise EvalResultsError(
            f"schema_version is {results.get('schema_version')!r}; this code reads {SCHEMA_VERSION}: "
            "re-run `python -m training evaluate` to regenerate the file"
        )
    for key in ("dataset", "models", "settings", "perplexity"):
        if key not in results:
            raise EvalResultsError(f"eval results lack the '{key}' section")
    for key in ("id", "revision", "split"):
        if key not in results["dataset"]:
            raise EvalResultsError(f"dataset lacks '{key}'")
    if "base" not in results["models"]:
        raise EvalResultsError("models lacks 'base'")
    evaluated = [m for m in MODEL_KEYS if m in results["models"]]
    for model in evaluated:
        if set(results["models"][model]) != {"id", "revision"}:
            raise EvalResultsError(f"models.{model} must have exactly 'id' and 'revision'")
        block = results["perplexity"].get(model)
        if block is None:
            raise EvalResultsError(f"perplexity lacks '{model}'")
        _check_perplexity_record(f"perplexity.{model}.overall", block.get("overall"))
        for group in ("by_repo", "by_language"):
            for name, record in block.get(group, {}).items():
                _check_perplexity_record(f"perplexity.{model}.{group}.{name}", record)
    located = [("dataset.id", results["dataset"]["id"])]
    located += [(f"models.{m}.id", results["models"][m]["id"]) for m in evaluated]
    located += [("settings.infill.tasks_from", ((results["settings"].get("infill") or {}).get("tasks_from")))]
    for where, value in located:
        if _is_local_absolute(value):
            raise EvalResultsError(
                f"{where} is an absolute local path ({value}): record it relative to the results' folder "
                "(re-run `python -m training evaluate`, which does)"
            )
    infilling = results.get("infilling")
    if infilling is not None:
        if "tasks_file" not in infilling:
            raise EvalResultsError("infilling lacks 'tasks_file'")
        for model in evaluated:
            if infilling.get(model) is None:
                raise EvalResultsError(f"infilling lacks '{model}'")
            _check_infill_block(f"infilling.{model}", infilling[model])
        for name, block in (infilling.get("baselines") or {}).items():
            _check_infill_block(f"infilling.baselines.{name}", block)
        _check_retrieval(results, "infilling", evaluated)
    api = results.get("api_usage")
    if api is not None and api.get("tasks_file"):
        for model in evaluated:
            if api.get(model) is None:
                raise EvalResultsError(f"api_usage lacks '{model}'")
            _check_infill_block(f"api_usage.{model}", api[model])
        _check_retrieval(results, "api_usage", evaluated)
    execution = results.get("execution")
    if execution is not None:
        if not isinstance(execution, Mapping) or "tasks_file" not in execution or "summary" not in execution:
            raise EvalResultsError("execution must be an object with 'tasks_file' and 'summary'")
        if any(m in execution for m in MODEL_KEYS) or "baselines" in execution:
            for model in evaluated:
                if execution.get(model) is None:
                    raise EvalResultsError(f"execution lacks '{model}'")
                _check_infill_block(f"execution.{model}", execution[model])
            for name in ("pass_body", "reference"):
                _check_infill_block(
                    f"execution.baselines.{name}", (execution.get("baselines") or {}).get(name)
                )
            _check_retrieval(results, "execution", evaluated)


def _check_retrieval(results: Mapping[str, Any], section: str, evaluated: list[str]) -> None:
    """`<section>.retrieval` (evaluate --retrieval): each model + retrieval in the shape of the plain blocks,
    a leak count, and the settings that made it."""
    block = results[section].get("retrieval")
    if block is None:
        return
    if not isinstance((results["settings"].get("retrieval")), Mapping):
        raise EvalResultsError(f"{section}.retrieval is present but settings.retrieval is not")
    for model in evaluated:
        if block.get(model) is None:
            raise EvalResultsError(f"{section}.retrieval lacks '{model}'")
        _check_infill_block(f"{section}.retrieval.{model}", block[model])
    if not isinstance((block.get("leaks") or {}).get("count"), int):
        raise EvalResultsError(f"{section}.retrieval.leaks.count must be an integer")


def write_results(path: str | os.PathLike, results: Mapping[str, Any]) -> None:
    """Validate, then write `results` atomically as indented JSON (key order kept as §4 shows it)."""
    validate_results(results)
    write_text_atomic(path, json.dumps(results, indent=2, allow_nan=False) + "\n")


def read_results(path: str | os.PathLike) -> dict[str, Any]:
    """Load and validate an eval_results.json."""
    with open(path, encoding="utf-8") as f:
        results = json.load(f)
    validate_results(results)
    return results


def summary_table(results: Mapping[str, Any]) -> Table:
    """One table: a row per metric group, base and adapter side by side (with the change, when both exist)."""
    models = [m for m in MODEL_KEYS if m in results["models"]]
    table = Table(title=f"eval: {results['dataset']['id']} [{results['dataset']['split']}]")
    table.add_column("metric")
    table.add_column("group")
    for model in models:
        table.add_column(model, justify="right")
    if len(models) == 2:
        table.add_column("change", justify="right")

    def add(metric: str, group: str, values: list[float | None], fmt: str, count: str) -> None:
        cells = [("-" if v is None else format(v, fmt)) for v in values]
        if len(values) == 2:
            both = None not in values
            cells.append(f"{values[1] - values[0]:+{fmt}}" if both else "-")
        table.add_row(metric, f"{group} ({count})", *cells)

    ppl = results["perplexity"]
    groups = [("overall", ppl["base"]["overall"])]
    groups += [(f"repo {k}", v) for k, v in ppl["base"].get("by_repo", {}).items()]
    groups += [(f"lang {k}", v) for k, v in ppl["base"].get("by_language", {}).items()]
    for label, record in groups:
        values = [_lookup(ppl[m], label)["perplexity"] for m in models]
        add("perplexity", label, values, ".3f", f"{record['tokens']:,} tok")
    for m_label in ("overall",):
        values = [_lookup(ppl[m], m_label)["bits_per_byte"] for m in models]
        add("bits/byte", m_label, values, ".4f", f"{ppl['base']['overall']['bytes']:,} B")
    return table


def _lookup(block: Mapping[str, Any], label: str) -> Mapping[str, Any]:
    """The record a summary row label names ('overall', 'repo X', 'lang X', 'kind X')."""
    if label == "overall":
        return block["overall"]
    kind, name = label.split(" ", 1)
    group = {"repo": "by_repo", "lang": "by_language", "kind": "by_kind"}[kind]
    return block[group][name]


def print_summary(results: Mapping[str, Any], console: Console | None = None) -> None:
    """Print the summary table to the terminal (or to `console`)."""
    console = console or Console()
    console.print(summary_table(results))
    if (section := results.get("held_out_bits_per_byte")) and section.get("systems"):
        table = Table(title="held-out bits per byte, models and counting baselines (lower is better)")
        for col in ("system", "bits/byte", "95% interval", "documents"):
            table.add_column(col, justify="left" if col == "system" else "right")
        for name, groups in section["systems"].items():
            rec = groups["overall"]
            ci = rec.get("ci95") or [float("nan")] * 2
            table.add_row(
                name, f"{rec['bits_per_byte']:.4f}", f"[{ci[0]:.4f}, {ci[1]:.4f}]", str(rec["documents"])
            )
        for key, diff in (section.get("differences") or {}).items():
            ci = diff.get("ci95") or [float("nan")] * 2
            table.add_row(key, f"{diff['bits_per_byte']:+.4f}", f"[{ci[0]:+.4f}, {ci[1]:+.4f}]", "paired")
        console.print(table)
    if results.get("infilling"):
        from training.evaluation.report import infilling_table

        console.print(infilling_table(results["infilling"]))
        if results["infilling"].get("retrieval"):  # the same models with retrieved context
            console.print(
                infilling_table(
                    results["infilling"]["retrieval"], "infilling, both models WITH retrieved context"
                )
            )
    if results.get("api_usage"):
        from training.evaluation.report import infilling_table

        console.print(infilling_table(results["api_usage"], "API usage, by family"))
