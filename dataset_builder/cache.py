"""Per-repo cache of processed records, keyed by (pinned commit SHA, config hash).

A repo's records depend only on its commit and on the corpus config, so a rebuild with the same pins and
config reads one Parquet file per repo instead of re-reading git and re-running the filters. Changing a
pin or any config value changes the key: that repo (or every repo, for a config change) is recomputed.

Layout: `<cache_dir>/<repo>/<commit_sha>-<config_hash[:16]>.parquet`, written with
`records_to_table`, so the cache holds exactly the published columns. Writes are atomic
(flyte_llama_common.atomic: a temp file in the same folder, fsync, `os.replace`), so an interrupted build
never leaves a half-written entry that a later build would trust. The key is also stored in the file's
schema metadata and checked on load, next to an optional JSON `meta` dict (the pipeline keeps the repo's
drop counts and redaction report there).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from dataset_builder.record import Record, records_to_table, table_to_records
from flyte_llama_common.atomic import atomic_path, write_text_atomic

CACHE_FORMAT = "1"  # bump when the cached content changes meaning without a config change
_META_KEY = b"flyte_llama_cache"
_EXTRA_KEY = b"flyte_llama_meta"


def config_hash(config: Any) -> str:
    """sha256 of the canonical JSON of a config (a dataclass or a JSON-serialisable mapping)."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def cache_path(cache_dir: Path, repo: str, commit_sha: str, cfg_hash: str) -> Path:
    if not repo or "/" in repo or repo.startswith("."):
        raise ValueError(f"repo name {repo!r} cannot be used as a cache folder name")
    if len(commit_sha) < 7 or any(c not in "0123456789abcdef" for c in commit_sha):
        raise ValueError(f"commit {commit_sha!r} is not a hex SHA; resolve refs to SHAs before caching")
    return Path(cache_dir) / repo / f"{commit_sha}-{cfg_hash[:16]}.parquet"


def _key(repo: str, commit_sha: str, cfg_hash: str) -> bytes:
    key = {"format": CACHE_FORMAT, "repo": repo, "commit": commit_sha, "config": cfg_hash}
    return json.dumps(key, sort_keys=True).encode()


def load_entry(
    cache_dir: Path, repo: str, commit_sha: str, cfg_hash: str
) -> tuple[list[Record], dict[str, Any]] | None:
    """(records, meta) of the entry, or None on a miss (no entry, another key, or an unreadable file)."""
    path = cache_path(cache_dir, repo, commit_sha, cfg_hash)
    if not path.exists():
        return None
    try:
        table = pq.read_table(path)
        metadata = table.schema.metadata or {}
        if metadata.get(_META_KEY) != _key(repo, commit_sha, cfg_hash):
            return None
        meta = json.loads(metadata.get(_EXTRA_KEY, b"{}"))
    except (OSError, pa.ArrowInvalid, ValueError):
        return None  # truncated or foreign file: recompute and overwrite
    return table_to_records(table.replace_schema_metadata(None)), meta


def load(cache_dir: Path, repo: str, commit_sha: str, cfg_hash: str) -> list[Record] | None:
    """The cached records, or None on a miss."""
    entry = load_entry(cache_dir, repo, commit_sha, cfg_hash)
    return None if entry is None else entry[0]


def store(
    cache_dir: Path,
    repo: str,
    commit_sha: str,
    cfg_hash: str,
    records: list[Record],
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write the entry (records + JSON `meta`) atomically and remove the repo's entries for other keys
    (stale pins/configs)."""
    path = cache_path(cache_dir, repo, commit_sha, cfg_hash)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = records_to_table(records)
    extra = json.dumps(meta or {}, sort_keys=True).encode()
    table = table.replace_schema_metadata({_META_KEY: _key(repo, commit_sha, cfg_hash), _EXTRA_KEY: extra})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    for other in path.parent.iterdir():  # stale entries and their sidecars; "." = another writer's temp
        if not other.name.startswith((path.stem, ".")):
            other.unlink(missing_ok=True)
    return path


def _sidecar(cache_dir: Path, repo: str, commit_sha: str, cfg_hash: str, name: str) -> Path:
    return cache_path(cache_dir, repo, commit_sha, cfg_hash).with_suffix(f".{name}.json")


def load_sidecar(cache_dir: Path, repo: str, commit_sha: str, cfg_hash: str, name: str) -> dict[str, Any]:
    """A JSON dict kept beside the entry (e.g. results computed later for some of its records); {} when
    absent or unreadable. It shares the entry's key, so it goes stale (and is removed) with it."""
    try:
        return json.loads(_sidecar(cache_dir, repo, commit_sha, cfg_hash, name).read_text())
    except (OSError, ValueError):
        return {}


def store_sidecar(
    cache_dir: Path, repo: str, commit_sha: str, cfg_hash: str, name: str, data: dict[str, Any]
) -> None:
    """Write the sidecar atomically (same folder temp file + os.replace)."""
    path = _sidecar(cache_dir, repo, commit_sha, cfg_hash, name)
    write_text_atomic(path, json.dumps(data, sort_keys=True))


def load_or_compute(
    cache_dir: Path, repo: str, commit_sha: str, cfg_hash: str, compute: Callable[[], list[Record]]
) -> tuple[list[Record], bool]:
    """(records, hit): the cached records for this key, or `compute()`'s, which are then cached."""
    cached = load(cache_dir, repo, commit_sha, cfg_hash)
    if cached is not None:
        return cached, True
    records = compute()
    store(cache_dir, repo, commit_sha, cfg_hash, records)
    return records, False
