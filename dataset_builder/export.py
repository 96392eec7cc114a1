"""Write the dataset folder = the Hub dataset repo, byte for byte (docs/ARCHITECTURE.md §2).

    <out>/data/{split}-{i:05d}-of-{n:05d}.parquet   rows sorted by (repo, path), fixed row groups
    <out>/README.md                                 dataset card (rendered by the render_card passed in)
    <out>/manifest.json                             version, config, pins, counts, drops, shard sha256

Everything is written into a temp folder beside `out` (atomic.staging_dir, named after the building
process) and renamed into place only when complete; an existing `out` is replaced only then. No
timestamps anywhere, so the same rows give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from datasets.info import DatasetInfo, DatasetInfosDict

from flyte_llama_common.atomic import remove_stale, replace_dir, staging_dir

from .config import CorpusConfig
from .hf_builder import FEATURES
from .record import ARROW_SCHEMA, SPLITS

# (manifest, dataset infos) → the README.md text: model_card.dataset_card.render_dataset_card.
CardRenderer = Callable[[dict[str, Any], DatasetInfosDict], Any]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def split_table(ds: datasets.Dataset) -> pa.Table:
    """The split as an Arrow table with exactly the published schema, sorted by (repo, path)."""
    table = ds.data.table.select(ARROW_SCHEMA.names)
    table = pa.Table.from_batches(table.to_batches(), schema=table.schema).cast(ARROW_SCHEMA)
    order = pc.sort_indices(table, sort_keys=[("repo", "ascending"), ("path", "ascending")])
    return table.take(order).combine_chunks()


def shard_bounds(sizes: list[int], max_shard_bytes: int) -> list[tuple[int, int]]:
    """Contiguous [start, end) row ranges of at most ~max_shard_bytes content each (at least one shard)."""
    bounds, start, acc = [], 0, 0
    for i, size in enumerate(sizes):
        if acc and acc + size > max_shard_bytes:
            bounds.append((start, i))
            start, acc = i, 0
        acc += size
    bounds.append((start, len(sizes)))
    return bounds


def _stats(tables: dict[str, pa.Table], key: str) -> dict[str, dict[str, dict[str, int]]]:
    out: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
    for split, table in tables.items():
        for value, nbytes in zip(table[key].to_pylist(), table["bytes"].to_pylist(), strict=True):
            cell = out[value].setdefault(split, {"files": 0, "bytes": 0})
            cell["files"] += 1
            cell["bytes"] += nbytes
    return {k: out[k] for k in sorted(out)}


def build_manifest(
    cfg: CorpusConfig, tables: dict[str, pa.Table], shards: dict[str, str], report: dict[str, Any]
) -> dict[str, Any]:
    """The manifest of docs/ARCHITECTURE.md, from the exported data (never from hand-kept counts)."""
    n_shards = {s: sum(1 for p in shards if p.startswith(f"data/{s}-")) for s in SPLITS}
    reports = report.get("reports", {})
    return {
        "name": cfg.name,
        "version": cfg.version,
        "config_sha256": cfg.config_sha256,
        "config": cfg.to_dict(),
        "sources": [
            {
                "name": r.name,
                "url": r.url,
                "ref": r.ref,
                "commit_sha": r.commit,
                "split": r.split,
                "license": r.license,
            }
            for r in cfg.repos
        ],
        "splits": {
            s: {"files": t.num_rows, "bytes": int(pc.sum(t["bytes"]).as_py() or 0), "shards": n_shards[s]}
            for s, t in tables.items()
        },
        "per_repo": _stats(tables, "repo"),
        "per_language": _stats(tables, "language"),
        "drops": report.get("drops", {}),
        "dedup": reports.get("dedup", {}),
        "redactions": reports.get("redactions", {}),
        "shards": shards,
    }


def write_shards(tables: dict[str, pa.Table], data_dir: Path, cfg: CorpusConfig) -> dict[str, str]:
    """Write every split's Parquet shards; returns {relative path: sha256}."""
    data_dir.mkdir(parents=True)
    shards: dict[str, str] = {}
    for split, table in tables.items():
        bounds = shard_bounds(table["bytes"].to_pylist(), cfg.export.max_shard_bytes)
        for i, (start, end) in enumerate(bounds):
            path = data_dir / f"{split}-{i:05d}-of-{len(bounds):05d}.parquet"
            pq.write_table(
                table.slice(start, end - start),
                path,
                row_group_size=cfg.export.row_group_size,
                compression="zstd",
                store_schema=True,
            )
            shards[f"data/{path.name}"] = file_sha256(path)
    return shards


def dataset_info(tables: dict[str, pa.Table], shards_dir: Path, cfg: CorpusConfig) -> DatasetInfo:
    """The card's `dataset_info`: features + split sizes measured on the exported data."""
    splits = datasets.SplitDict(dataset_name=cfg.name)
    for split, table in tables.items():
        splits.add(datasets.SplitInfo(name=split, num_bytes=table.nbytes, num_examples=table.num_rows))
    return DatasetInfo(
        features=FEATURES,
        splits=splits,
        download_size=sum(p.stat().st_size for p in sorted(shards_dir.glob("*.parquet"))),
        dataset_size=sum(t.nbytes for t in tables.values()),
        config_name="default",
    )


def export_dataset(
    dd: datasets.DatasetDict,
    report: dict[str, Any],
    cfg: CorpusConfig,
    out: str | Path,
    render_card: CardRenderer,
    staging: Path | None = None,
) -> dict[str, Any]:
    """Write the Hub folder to `out` (atomically) and return its manifest.

    `render_card(manifest, infos)` writes the dataset card (model_card.dataset_card.render_dataset_card:
    the cards layer sits above this one, so the caller hands it in).

    `staging`: an empty folder from atomic.staging_dir(out) to write into (build_corpus makes it before
    the pipeline runs); default: a new one. It is moved to `out` when complete, else removed.
    """
    out = Path(out).resolve()
    if staging is None:
        remove_stale(out)
    tmp = Path(staging) if staging is not None else staging_dir(out)
    tmp.chmod(0o755)  # mkdtemp makes it private; the published folder is not
    try:
        tables = {s: split_table(dd[s]) for s in SPLITS if s in dd}  # empty splits are not exported
        shards = write_shards(tables, tmp / "data", cfg)
        manifest = build_manifest(cfg, tables, shards, report)
        (tmp / "manifest.json").write_text(json.dumps(manifest, sort_keys=True, indent=2) + "\n")
        card = render_card(manifest, DatasetInfosDict({"default": dataset_info(tables, tmp / "data", cfg)}))
        (tmp / "README.md").write_text(str(card) + ("" if str(card).endswith("\n") else "\n"))
        replace_dir(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return manifest
