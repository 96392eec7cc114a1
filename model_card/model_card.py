"""The Flyte Llama model card: Hub metadata + a Jinja body, built only from what a run recorded.

Inputs are the contracts of docs/ARCHITECTURE.md: `eval_results.json` (the only source of metric values),
`training_log.json` (summary), `recipe.yaml` and `adapter_config.json` of the adapter folder, and optionally
the dataset folder's `manifest.json` (the pinned repo SHAs). A value the run does not have is left out of
the card; nothing here has a default that could pass for a measurement.

`datasets:` must name a Hub dataset. A local dataset path is refused unless `allow_local_dataset=True`
(offline demos): then `datasets:` is omitted and `check_card_metadata` (run by `push.py`) reports the card
as not publishable, so a card pointing at somebody's disk never reaches the Hub.
"""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from flyte_llama_common.ids import is_hub_id
from model_card.eval_view import (
    API_COLUMNS,
    api_view,
    bpb_view,
    exec_view,
    infilling_view,
    retrieval_view,
)

TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE = TEMPLATES / "model_card.md.j2"


def fim_usage() -> str:
    """The infilling how-to (Code Llama's PSM prompt from token ids, and as text for servers), shared by the
    adapter's card and the merged model's: both load a `model` and a `tokenizer` with the same prompt.
    Static text (no template variables); `.j2` so that no Markdown formatter rewrites its code."""
    return (TEMPLATES / "fim_usage.md.j2").read_text(encoding="utf-8").strip()


# A Hub id is "name" or "org/name" (no path separators beyond one, no leading dot or slash).
REQUIRED_FIELDS = (
    "base_model",
    "base_model_relation",
    "library_name",
    "pipeline_tag",
    "datasets",
    "model-index",
)
TAGS = ["flyte", "code", "lora", "peft", "fill-in-the-middle", "code-llama", "text-generation"]

# Code Llama's infilling tokens as text (the `▁` is part of each token's name).
PRE_TEXT, SUF_TEXT, MID_TEXT = "▁<PRE>", "▁<SUF>", "▁<MID>"


def psm_text(prefix: str, suffix: str) -> str:
    """The PSM infilling prompt as plain text, for a widget or a server: the saved tokenizer.json encodes it
    (BOS added) to exactly training's `BOS <PRE> enc(prefix) <SUF> enc'(suffix) <MID>` for a non-empty prefix
    that does not start with a space (tests/test_fill_me.py). Text after a special token gets no leading "▁",
    so the prefix carries its SentencePiece space explicitly. Not `<FILL_ME>`: servers do not split on it, and
    transformers' CodeLlamaTokenizer builds another prompt through it unless the suffix starts with a space.
    """
    return f"{PRE_TEXT} {prefix}{SUF_TEXT}{suffix}{MID_TEXT}"


# Widget prompts: fixed Flyte snippets (the widget is only live where a provider serves the model).
WIDGET = [
    {
        "example_title": "Flyte task",
        "text": "from flytekit import task, workflow\n\n\n@task\ndef mean(values: list[float]) -> float:\n",
    },
    {
        "example_title": "Flyte workflow",
        "text": "from flytekit import task, workflow\n\n\n@workflow\ndef training_wf(",
    },
    {
        "example_title": "Infill (<PRE> prefix <SUF>suffix <MID>)",
        "text": psm_text(
            'from flytekit import task\n\n\n@task\ndef add(a: int, b: int) -> int:\n    """',
            '"""\n    return a + b\n',
        ),
    },
]


class CardError(ValueError):
    """The inputs cannot produce a truthful card; the message says what to pass instead."""


def is_code_llama(base_id: str | None) -> bool:
    return bool(base_id) and is_hub_id(base_id) and str(base_id).lower().startswith("codellama/")


def resolve_dataset(
    eval_results: dict, training_log: dict | None, dataset_id: str | None, allow_local: bool
) -> dict[str, Any]:
    """The dataset the card cites: explicit id > eval_results.json > training_log.json summary."""
    summary_ds = ((training_log or {}).get("summary") or {}).get("dataset") or {}
    eval_ds = eval_results.get("dataset") or {}
    ds_id = dataset_id or eval_ds.get("id") or summary_ds.get("id")
    revision = eval_ds.get("revision") or summary_ds.get("revision")
    if not ds_id:
        raise CardError("no dataset id in eval_results.json or training_log.json: pass --dataset-id ORG/NAME")
    hub = is_hub_id(ds_id)
    if not hub and not allow_local:
        raise CardError(
            f"the dataset is a local path ({ds_id!r}); the card's `datasets:` must be a Hub id. "
            "Push the dataset first and pass --dataset-id ORG/NAME "
            "(or --allow-local-dataset for an offline demo)."
        )
    return {"id": ds_id, "revision": revision, "split": eval_ds.get("split", "test"), "is_hub": hub}


INFILL_INDEX = (("exact_match", "Infilling exact match"), ("edit_similarity", "Infilling edit similarity"))
# (eval_results section = dataset config, metric key, model-index name) of the benchmarks beside perplexity.
BENCHMARK_INDEX = (
    *(("infilling", key, label) for key, label in INFILL_INDEX),
    ("api_usage", "api_valid", "API-usage validity"),
    ("execution", "pass_at_1", "Execution pass@1"),
)


def index_entries(eval_results: dict) -> list[tuple[str, float, str | None, str]]:
    """(model-index name, value, dataset config or None, metric type) of this adapter's own numbers only
    (the base model's and the baselines' go in the card's tables, never the index)."""
    model = "adapter"
    out: list[tuple[str, float, str | None, str]] = []
    ppl = ((eval_results.get("perplexity") or {}).get(model) or {}).get("overall") or {}
    if "perplexity" in ppl:
        out.append(("Test perplexity", ppl["perplexity"], None, "perplexity"))
    for section, key, label in BENCHMARK_INDEX:
        record = (((eval_results.get(section) or {}).get(model) or {}).get("overall")) or {}
        if record.get(key) is not None:
            out.append((label, record[key], section, key))
    return out


def expected_metrics(eval_results: dict) -> dict[str, float]:
    """The model-index metrics a card must carry, by name, exactly as in eval_results.json."""
    return {name: value for name, value, _, _ in index_entries(eval_results)}


def build_eval_results(eval_results: dict, dataset: dict) -> list[EvalResult]:
    """model-index entries (one per metric), from eval_results.json only."""
    common = {
        "task_type": "text-generation",
        "dataset_type": dataset["id"],
        "dataset_name": dataset["id"],
        "dataset_split": dataset.get("split"),
        "dataset_revision": dataset.get("revision"),
    }
    results = []
    for name, value, config, metric_type in index_entries(eval_results):
        # Each benchmark is its own config of the dataset; perplexity is on the default config.
        extra = {"dataset_config": config} if config else {}
        results.append(
            EvalResult(**common, **extra, metric_type=metric_type, metric_value=value, metric_name=name)
        )
    return results


def _short_targets(targets: Any) -> list[str] | None:
    """`all-linear` is saved expanded to full module paths: show the distinct leaf names."""
    if not targets:
        return None
    if isinstance(targets, str):
        return [targets]
    return sorted({str(t).rsplit(".", 1)[-1] for t in targets})


def _present(rows: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in rows if v is not None and v != [] and v != ""]


def training_rows(adapter_config: dict, summary: dict, recipe: dict) -> list[tuple[str, Any]]:
    """(label, value) rows of the training procedure; rows without a recorded value are dropped."""
    fim = summary.get("objective") == "fim"
    return _present(
        [
            ("Objective", summary.get("objective")),
            ("LoRA rank (r)", adapter_config.get("r")),
            ("LoRA alpha", adapter_config.get("lora_alpha")),
            ("LoRA dropout", adapter_config.get("lora_dropout")),
            ("LoRA target modules", ", ".join(_short_targets(adapter_config.get("target_modules")) or [])),
            ("Learning rate", recipe.get("learning_rate")),
            ("LR scheduler", recipe.get("lr_scheduler_type")),
            ("Per-device batch size", recipe.get("per_device_train_batch_size")),
            ("Gradient accumulation", recipe.get("gradient_accumulation_steps")),
            ("Optimizer steps", summary.get("global_step")),
            ("Context length (tokens)", summary.get("max_length") or recipe.get("max_length")),
            ("Packing", recipe.get("packing")),
            ("FIM rate", summary.get("fim_rate") if fim else None),
            ("SPM rate (share of FIM in SPM order)", summary.get("spm_rate") if fim else None),
            ("Training tokens seen", f"{summary['train_tokens']:,}" if summary.get("train_tokens") else None),
            (
                "Training time (s)",
                round(summary["train_runtime_s"], 1) if summary.get("train_runtime_s") else None,
            ),
            ("Hardware", summary.get("hardware")),
            ("Seed", recipe.get("seed")),
        ]
    )


def _metric_rows(section: dict, group: str, keys: tuple[str, ...]) -> list[dict]:
    """Rows {name, base: {...}, adapter: {...}} for `overall` or each key of `by_repo`/`by_language`/..."""
    base, adapter = section.get("base") or {}, section.get("adapter") or {}
    if group == "overall":
        names = ["overall"] if "overall" in base or "overall" in adapter else []
        pick = lambda m, n: m.get("overall")  # noqa: E731
    else:
        names = sorted(set(base.get(group) or {}) | set(adapter.get(group) or {}))
        pick = lambda m, n: (m.get(group) or {}).get(n)  # noqa: E731
    rows = []
    for name in names:
        b, a = pick(base, name) or {}, pick(adapter, name) or {}
        rows.append(
            {"name": name, "base": {k: b.get(k) for k in keys}, "adapter": {k: a.get(k) for k in keys}}
        )
    return rows


def framework_versions(summary: dict) -> tuple[list[tuple[str, str]], bool]:
    """(name, version) rows and whether the run recorded them; else the versions of the environment that
    renders the card, which the card then says."""
    recorded = summary.get("versions")
    if isinstance(recorded, dict) and recorded:
        return sorted((str(k), str(v)) for k, v in recorded.items()), True
    out = []
    for pkg in ("peft", "transformers", "trl", "torch", "datasets", "tokenizers", "huggingface_hub"):
        try:
            out.append((pkg, importlib.metadata.version(pkg)))
        except importlib.metadata.PackageNotFoundError:
            continue
    return out, False


def render_model_card(
    *,
    repo_id: str,
    eval_results: dict,
    adapter_config: dict,
    training_log: dict | None = None,
    recipe: dict | None = None,
    manifest: dict | None = None,
    plots: list[tuple[str, str]] | None = None,
    dataset_id: str | None = None,
    allow_local_dataset: bool = False,
    model_version: dict | None = None,
    merged_repo_id: str | None = None,
) -> ModelCard:
    """Render README.md for the staged model folder. `plots` = [(title, path relative to the repo)];
    `merged_repo_id`: the separate repo of the merged model (model_card/merged.py) the card links to."""
    summary = (training_log or {}).get("summary") or {}
    recipe = recipe or {}
    dataset = resolve_dataset(eval_results, training_log, dataset_id, allow_local_dataset)
    base_id = adapter_config.get("base_model_name_or_path") or (eval_results.get("models") or {}).get(
        "base", {}
    ).get("id")
    base = {"id": base_id, "revision": adapter_config.get("revision"), "is_hub": is_hub_id(base_id)}
    llama = is_code_llama(base_id)
    versions, versions_recorded = framework_versions(summary)

    card_data = ModelCardData(
        base_model=base_id if base["is_hub"] else None,
        base_model_relation="adapter" if base["is_hub"] else None,
        library_name="peft",
        pipeline_tag="text-generation",
        license="llama2" if llama else None,
        datasets=[dataset["id"]] if dataset["is_hub"] else None,
        language=["code"],
        tags=TAGS,
        widget=WIDGET,
        model_name=repo_id.split("/")[-1],
        eval_results=build_eval_results(eval_results, dataset) or None,
    )
    ppl, infill = eval_results.get("perplexity") or {}, eval_results.get("infilling") or {}
    ppl_keys, infill_keys = (
        ("perplexity", "bits_per_byte", "tokens"),
        ("exact_match", "edit_similarity", "tasks"),
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE),
        repo_id=repo_id,
        base=base,
        code_llama=llama,
        dataset=dataset,
        sources=(manifest or {}).get("sources") or [],
        dataset_version=(manifest or {}).get("version"),
        training=training_rows(adapter_config, summary, recipe),
        eval_settings=eval_results.get("settings") or {},
        ppl_tables={g: _metric_rows(ppl, g, ppl_keys) for g in ("overall", "by_repo", "by_language")},
        bpb_view=bpb_view(eval_results.get("held_out_bits_per_byte")),
        infill_tables={
            g: _metric_rows(infill, g, infill_keys) for g in ("overall", "by_kind", "by_language")
        },
        infill_view=infilling_view(infill, eval_results.get("settings") or {}),
        api_view=api_view(eval_results.get("api_usage")),
        exec_view=exec_view(eval_results.get("execution")),
        retrieval_views=[
            (title, view)
            for title, view in (
                ("held-out infilling tasks", retrieval_view(infill)),
                ("API-usage tasks", retrieval_view(eval_results.get("api_usage"), API_COLUMNS)),
            )
            if view
        ],
        fim=summary.get("objective") == "fim",
        has_infilling=bool(infill.get("base") or infill.get("adapter")),
        tasks_file=infill.get("tasks_file"),
        plots=plots or [],
        versions=versions,
        versions_recorded=versions_recorded,
        model_version=model_version or {},  # version.json (model_card/identity.py): the tag to pin
        fim_usage=fim_usage(),
        merged_repo_id=merged_repo_id,
    )


def split_front_matter(text: str) -> dict:
    """The YAML metadata block of a README.md (empty dict when there is none)."""
    match = re.match(r"^---\s*\n(.*?)\n---\s*\n", text, re.DOTALL)
    return (yaml.safe_load(match.group(1)) or {}) if match else {}


def card_metrics(meta: dict) -> dict[str, float]:
    """metric name → value of every metric in the card's model-index."""
    out = {}
    for model in meta.get("model-index") or []:
        for result in model.get("results") or []:
            for metric in result.get("metrics") or []:
                out[metric.get("name")] = metric.get("value")
    return out


def check_card_metadata(readme_text: str, eval_results: dict | None) -> list[str]:
    """Offline checks of a model card before publishing; returns problems (empty = publishable)."""
    try:
        meta = split_front_matter(readme_text)
    except yaml.YAMLError as err:
        return [f"README.md front matter is not valid YAML: {err}"]
    problems = [f"card metadata lacks `{field}`" for field in REQUIRED_FIELDS if not meta.get(field)]
    problems += [
        f"`datasets` entry {d!r} is not a Hub id" for d in meta.get("datasets") or [] if not is_hub_id(d)
    ]
    if meta.get("base_model") and not is_hub_id(meta["base_model"]):
        problems.append(f"`base_model` {meta['base_model']!r} is not a Hub id")
    if eval_results is not None and card_metrics(meta) != expected_metrics(eval_results):
        problems.append(
            f"model-index {card_metrics(meta)} differs from "
            f"eval_results.json {expected_metrics(eval_results)}: re-stage the folder"
        )
    return problems
