"""Publish the infilling benchmark as the `infilling` config of the dataset folder.

`python -m training evaluate` cuts its infilling tasks from the test split (training/infill.py) and saves
them as `infilling_tasks.jsonl` next to eval_results.json. This module adds those tasks to the dataset
folder they were cut from, so anyone can load and rerun the exact benchmark:

    load_dataset("<org>/flyte-llama-corpus", "infilling", split="test", revision="v<version>")

    <folder>/infilling/test-00000-of-00001.parquet   one row per task, sorted by task_id
    <folder>/manifest.json                           + "infilling" (counts, settings) and the shard's sha256
    <folder>/README.md                               + the `infilling` config and a card section

Every task is checked against the folder's test split first (same file, and prefix + middle + suffix is
exactly that file's text at the recorded offsets), so tasks from another corpus version are refused rather
than published beside the wrong rows. The result is a new folder (`out`), built in a temp dir beside it and
moved into place whole; with `out` = the folder itself it is swapped in; adding tasks again replaces the old
ones. The card is rendered by the `render_card` the caller passes (the cards layer sits above this one).
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
from datasets.info import DatasetInfo, DatasetInfosDict
from huggingface_hub import DatasetCard

from flyte_llama_common.atomic import staged_dir
from flyte_llama_common.ids import is_hub_id
from flyte_llama_common.schemas import (
    InfillingConfigError,
    read_task_rows,
    task_arrow_schema,
    tasks_file_beside,
)

from .export import CardRenderer, file_sha256

CONFIG_NAME = "infilling"
API_CONFIG_NAME = "api_usage"  # the Flyte API-usage tasks (training/evaluation/api_usage.py), same columns
EXEC_CONFIG_NAME = (
    "execution"  # @task-body tasks with their reference outputs (training/evaluation/execution.py)
)
TASK_CONFIGS = (CONFIG_NAME, API_CONFIG_NAME, EXEC_CONFIG_NAME)
SHARD = f"{CONFIG_NAME}/test-00000-of-00001.parquet"


def shard_of(config_name: str) -> str:
    return f"{config_name}/test-00000-of-00001.parquet"


TASK_SCHEMA = task_arrow_schema()  # columns of flyte_llama_common.schemas.Task, in published order
TASK_FEATURES = datasets.Features.from_arrow_schema(TASK_SCHEMA)


REBUILD_TASKS = "rerun `python -m training evaluate --dataset FOLDER` to cut tasks from this folder"


def check_tasks(
    rows: list[dict[str, Any]], test_files: dict[tuple[str, str], str], fix: str = REBUILD_TASKS
) -> None:
    """Every task must come from a file of the test split, with its text at the recorded offsets;
    otherwise a clear error ending with `fix`."""
    for row in rows:
        content = test_files.get((row["repo"], row["path"]))
        if content is None:
            raise InfillingConfigError(
                f"task {row['task_id']}: {row['repo']}/{row['path']} is not in the test split; "
                f"the tasks were cut from another corpus version: {fix}"
            )
        (w0, s0), (s1, w1) = (row["window"][0], row["span"][0]), (row["span"][1], row["window"][1])
        text = row["prefix"] + row["middle"] + row["suffix"]
        if (content[w0:s0], content[s0:s1], content[s1:w1]) != (row["prefix"], row["middle"], row["suffix"]):
            raise InfillingConfigError(
                f"task {row['task_id']}: prefix + middle + suffix ({len(text)} chars) is not the text of "
                f"{row['repo']}/{row['path']} at {row['window']}: the file changed since the tasks were cut; "
                f"{fix}"
            )


def _test_files(folder: Path) -> dict[tuple[str, str], str]:
    shards = sorted((folder / "data").glob("test-*.parquet"))
    if not shards:
        raise InfillingConfigError(
            f"{folder} has no test split (data/test-*.parquet): nothing to cut tasks from"
        )
    files: dict[tuple[str, str], str] = {}
    for shard in shards:
        table = pq.read_table(shard, columns=["repo", "path", "content"])
        for repo, path, content in zip(
            *(table[c].to_pylist() for c in ("repo", "path", "content")), strict=True
        ):
            files[(repo, path)] = content
    return files


def infilling_summary(
    rows: list[dict[str, Any]], settings: dict[str, Any] | None, config_name: str = CONFIG_NAME
) -> dict[str, Any]:
    """The manifest's block of a task config: counts by language, kind, repo, and how the tasks were cut."""

    def counts(key: str) -> dict[str, int]:
        return dict(sorted(Counter(r[key] for r in rows).items()))

    return {
        "config_name": config_name,
        "tasks": len(rows),
        "files": len({(r["repo"], r["path"]) for r in rows}),
        "by_language": counts("language"),
        "by_kind": counts("kind"),
        "by_language_kind": dict(sorted(Counter(f"{r['language']}/{r['kind']}" for r in rows).items())),
        "by_repo": counts("repo"),
        # Decontamination verdicts and the fresh slice (training/evaluation): dropped tasks are published
        # too, with their reason, so the counts can be checked; `evaluate` scores only the others.
        "by_contamination": counts("contamination"),
        "scored": sum(r["contamination"] in ("clean", "unchecked") for r in rows),
        "fresh": sum(bool(r["fresh"]) for r in rows if r["contamination"] in ("clean", "unchecked")),
        "dated": sum(r["fresh"] is not None for r in rows),
        "settings": settings or {},
    }


def task_settings(eval_results: dict[str, Any]) -> dict[str, Any]:
    """How the tasks were cut, from eval_results.json: seed, token budgets, whose tokenizer counted them."""
    infill = dict((eval_results.get("settings") or {}).get("infill") or {})
    base = ((eval_results.get("models") or {}).get("base") or {}).get("id")
    keep = ("seed", "num_tasks", "prefix_tokens", "suffix_tokens")  # the tasks, not how they were run
    settings = eval_results.get("settings") or {}
    extra = {
        "decontamination": settings.get("decontamination"),
        "fresh_cutoff": settings.get("fresh_cutoff") if settings.get("decontamination") is not None else None,
    }
    # A local path means nothing to readers of the card (and may leak a home directory): Hub ids only.
    picked = {k: infill[k] for k in keep if k in infill}
    return {
        **picked,
        **{k: v for k, v in extra.items() if v is not None},
        "tokenizer": base if is_hub_id(base) else None,
    }


def add_infilling_config(
    folder: str | Path,
    tasks_path: str | Path,
    settings: dict[str, Any] | None = None,
    *,
    render_card: CardRenderer,
    out: str | Path | None = None,
    config_name: str = CONFIG_NAME,
) -> dict[str, Any]:
    """The dataset folder `folder` plus its `infilling` (or `api_usage`) config (added, or replaced),
    written as the folder `out`; returns the new manifest. `folder` is left as it was unless `out` is
    `folder` itself (the default), which is then swapped whole. `render_card` is
    model_card.dataset_card.render_dataset_card."""
    folder = Path(folder).resolve()
    out = Path(out).resolve() if out is not None else folder
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file() or not (folder / "README.md").is_file():
        raise InfillingConfigError(
            f"{folder} is not a dataset folder (no manifest.json/README.md): "
            "build it with `python -m dataset_builder build`"
        )
    rows = sorted(read_task_rows(tasks_path), key=lambda r: r["task_id"])
    check_tasks(rows, _test_files(folder))
    manifest = json.loads(manifest_path.read_text())
    infos = DatasetInfosDict.from_dataset_card_data(DatasetCard.load(folder / "README.md").data)

    with staged_dir(out) as tmp:
        shutil.copytree(folder, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns(config_name))
        tmp.chmod(0o755)
        shard = shard_of(config_name)
        (tmp / config_name).mkdir()
        table = pa.Table.from_pylist(rows, schema=TASK_SCHEMA)
        pq.write_table(table, tmp / shard, compression="zstd", store_schema=True)
        shards = {p: s for p, s in manifest["shards"].items() if not p.startswith(f"{config_name}/")}
        manifest["shards"] = {**shards, shard: file_sha256(tmp / shard)}
        manifest[config_name] = infilling_summary(rows, settings, config_name)
        (tmp / "manifest.json").write_text(json.dumps(manifest, sort_keys=True, indent=2) + "\n")
        splits = datasets.SplitDict(dataset_name=manifest["name"])
        splits.add(datasets.SplitInfo(name="test", num_bytes=table.nbytes, num_examples=table.num_rows))
        infos[config_name] = DatasetInfo(
            features=TASK_FEATURES,
            splits=splits,
            download_size=(tmp / shard).stat().st_size,
            dataset_size=table.nbytes,
            config_name=config_name,
        )
        card = str(render_card(manifest, infos))
        (tmp / "README.md").write_text(card + ("" if card.endswith("\n") else "\n"))
    return manifest


def add_from_eval_results(
    folder: str | Path,
    eval_results_path: str | Path,
    *,
    render_card: CardRenderer,
    out: str | Path | None = None,
) -> dict[str, Any] | None:
    """`add_infilling_config` with the tasks that eval_results.json names (read from beside it) and their
    settings; returns the new manifest, or None (and writes nothing) when that evaluation ran no infilling."""
    path = Path(eval_results_path)
    try:
        results = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InfillingConfigError(f"cannot read {path}: {err}") from None
    if not isinstance(results, dict):
        raise InfillingConfigError(f"{path} must hold a JSON object: re-run `python -m training evaluate`")
    tasks = tasks_file_beside(path, results)
    if tasks is None:
        return None
    manifest = add_infilling_config(folder, tasks, task_settings(results), render_card=render_card, out=out)
    target = Path(out) if out is not None else Path(folder)
    # The API-usage and execution tasks, when that evaluation cut them: more configs of the same new folder.
    for section, config_name in (("api_usage", API_CONFIG_NAME), ("execution", EXEC_CONFIG_NAME)):
        block = results.get(section) if isinstance(results.get(section), dict) else None
        if not block or not block.get("tasks_file"):
            continue
        more = tasks_file_beside(path, {"infilling": {"tasks_file": block["tasks_file"]}})
        settings = task_settings(results)
        if section == "execution":  # the survey's exclusion table travels with the tasks
            settings["survey"] = block.get("summary")
            settings["execution"] = (results.get("settings") or {}).get("execution")
        manifest = add_infilling_config(
            target, more, settings, render_card=render_card, config_name=config_name
        )
    return manifest
