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
than published beside the wrong rows. The folder is rebuilt in a temp dir and swapped in whole; adding the
tasks again replaces the old ones.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
from datasets.info import DatasetInfo, DatasetInfosDict
from huggingface_hub import DatasetCard

from .atomic import replace_dir
from .export import file_sha256

CONFIG_NAME = "infilling"
SHARD = f"{CONFIG_NAME}/test-00000-of-00001.parquet"
TASK_SCHEMA = pa.schema(
    [
        ("task_id", pa.string()),
        ("repo", pa.string()),
        ("path", pa.string()),
        ("language", pa.string()),
        ("kind", pa.string()),
        ("prefix", pa.string()),
        ("middle", pa.string()),
        ("suffix", pa.string()),
        ("lines", pa.list_(pa.int64())),  # 1-based first and last line of the middle
        ("span", pa.list_(pa.int64())),  # the middle's character range in the file
        ("window", pa.list_(pa.int64())),  # the range prefix + middle + suffix cover
    ]
)
TASK_FEATURES = datasets.Features.from_arrow_schema(TASK_SCHEMA)


class InfillingConfigError(ValueError):
    """The tasks cannot be added to this folder; the message says why and what to do."""


def read_task_rows(path: str | Path) -> list[dict[str, Any]]:
    """The rows of an infilling_tasks.jsonl file, checked for the columns of TASK_SCHEMA."""
    rows = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise InfillingConfigError(f"{path}:{n}: not JSON ({err})") from None
        missing = [c for c in TASK_SCHEMA.names if c not in row]
        if missing:
            raise InfillingConfigError(f"{path}:{n}: task lacks {missing}; is this an infilling_tasks.jsonl?")
        rows.append({c: row[c] for c in TASK_SCHEMA.names})
    if not rows:
        raise InfillingConfigError(f"{path} has no tasks")
    return rows


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


def infilling_summary(rows: list[dict[str, Any]], settings: dict[str, Any] | None) -> dict[str, Any]:
    """The manifest's "infilling" block: counts by language, kind, repo, and how the tasks were cut."""

    def counts(key: str) -> dict[str, int]:
        return dict(sorted(Counter(r[key] for r in rows).items()))

    return {
        "config_name": CONFIG_NAME,
        "tasks": len(rows),
        "files": len({(r["repo"], r["path"]) for r in rows}),
        "by_language": counts("language"),
        "by_kind": counts("kind"),
        "by_language_kind": dict(sorted(Counter(f"{r['language']}/{r['kind']}" for r in rows).items())),
        "by_repo": counts("repo"),
        "settings": settings or {},
    }


def task_settings(eval_results: dict[str, Any]) -> dict[str, Any]:
    """How the tasks were cut, from eval_results.json: seed, token budgets, whose tokenizer counted them."""
    from model_card.model_card import is_hub_id

    infill = dict((eval_results.get("settings") or {}).get("infill") or {})
    base = ((eval_results.get("models") or {}).get("base") or {}).get("id")
    keep = ("seed", "num_tasks", "prefix_tokens", "suffix_tokens")  # the tasks, not how they were run
    # A local path means nothing to readers of the card (and may leak a home directory): Hub ids only.
    return {**{k: infill[k] for k in keep if k in infill}, "tokenizer": base if is_hub_id(base) else None}


def add_infilling_config(
    folder: str | Path, tasks_path: str | Path, settings: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Add (or replace) the `infilling` config of the dataset folder; returns the new manifest."""
    folder = Path(folder).resolve()
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

    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        shutil.copytree(folder, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns(CONFIG_NAME))
        tmp.chmod(0o755)
        (tmp / CONFIG_NAME).mkdir()
        table = pa.Table.from_pylist(rows, schema=TASK_SCHEMA)
        pq.write_table(table, tmp / SHARD, compression="zstd", store_schema=True)
        shards = {p: s for p, s in manifest["shards"].items() if not p.startswith(f"{CONFIG_NAME}/")}
        manifest["shards"] = {**shards, SHARD: file_sha256(tmp / SHARD)}
        manifest["infilling"] = infilling_summary(rows, settings)
        (tmp / "manifest.json").write_text(json.dumps(manifest, sort_keys=True, indent=2) + "\n")
        splits = datasets.SplitDict(dataset_name=manifest["name"])
        splits.add(datasets.SplitInfo(name="test", num_bytes=table.nbytes, num_examples=table.num_rows))
        infos[CONFIG_NAME] = DatasetInfo(
            features=TASK_FEATURES,
            splits=splits,
            download_size=(tmp / SHARD).stat().st_size,
            dataset_size=table.nbytes,
            config_name=CONFIG_NAME,
        )
        from model_card.dataset_card import render_dataset_card

        card = str(render_dataset_card(manifest, infos))
        (tmp / "README.md").write_text(card + ("" if card.endswith("\n") else "\n"))
        replace_dir(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return manifest


def add_from_eval_results(folder: str | Path, eval_results_path: str | Path) -> dict[str, Any] | None:
    """Add the tasks that eval_results.json names (read from beside it) with their settings; returns the new
    manifest, or None when that evaluation ran no infilling."""
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
    return add_infilling_config(folder, tasks, task_settings(results))


def tasks_file_beside(eval_results_path: str | Path, results: dict[str, Any]) -> Path | None:
    """The tasks file eval_results.json names (None: no infilling ran). It must be a file in the results'
    own folder: an absolute name, a `..`, or a link leading out would publish some other file as the
    benchmark, so each is refused with the reason."""
    infilling = results.get("infilling")
    if infilling is None:
        return None
    name = infilling.get("tasks_file") if isinstance(infilling, dict) else None
    if not name:
        return None
    folder = Path(eval_results_path).parent
    where = f"{eval_results_path}: infilling.tasks_file"
    fix = "it must name a file beside eval_results.json, e.g. infilling_tasks.jsonl"
    if not isinstance(name, str) or "\0" in name:
        raise InfillingConfigError(f"{where} is not a file name: {fix}")
    if Path(name).is_absolute() or name.startswith("~") or ".." in Path(name).parts:
        raise InfillingConfigError(f"{where} is {name!r}, outside the results' folder: {fix}")
    path = folder / name
    if not path.resolve().is_relative_to(folder.resolve()):
        raise InfillingConfigError(f"{where}: {path} is a link leading out of {folder}: {fix}")
    if not path.is_file():
        raise InfillingConfigError(f"{where} names {name} but {path} is not a file: {fix}")
    return path
