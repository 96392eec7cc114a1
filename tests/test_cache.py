from __future__ import annotations

from dataclasses import dataclass

import pytest

from dataset_builder import cache
from dataset_builder.record import Record, record_id

SHA1 = "a" * 40
SHA2 = "b" * 40


def _rec(repo: str, path: str, content: str, sha: str = SHA1) -> Record:
    return Record(
        id=record_id(repo, path), repo=repo, path=path, language="python", content=content,
        bytes=len(content.encode()), lines=content.count("\n"), commit_sha=sha, blob_sha="0" * 40,
        license="Apache-2.0", split="train", is_test=False, is_doc=False, is_notebook=False, parses=True,
        redactions=1,
    )  # fmt: skip


@dataclass(frozen=True)
class Cfg:
    min_bytes: int = 10
    languages: tuple = ("python",)


def test_config_hash_is_stable_and_sensitive():
    assert cache.config_hash(Cfg()) == cache.config_hash({"languages": ["python"], "min_bytes": 10})
    assert cache.config_hash(Cfg()) != cache.config_hash(Cfg(min_bytes=11))


def test_miss_then_hit_round_trips_records(tmp_path):
    calls = []
    recs = [_rec("flytekit", "a.py", "x = 1\n"), _rec("flytekit", "b.py", "y = 'é'\n")]

    def compute():
        calls.append(1)
        return recs

    h = cache.config_hash(Cfg())
    got, hit = cache.load_or_compute(tmp_path, "flytekit", SHA1, h, compute)
    assert (got, hit, len(calls)) == (recs, False, 1)
    got, hit = cache.load_or_compute(tmp_path, "flytekit", SHA1, h, compute)
    assert (got, hit, len(calls)) == (recs, True, 1)
    assert [p.name for p in (tmp_path / "flytekit").iterdir()] == [f"{SHA1}-{h[:16]}.parquet"]


def test_config_or_commit_change_invalidates_and_replaces_the_entry(tmp_path):
    h1, h2 = cache.config_hash(Cfg()), cache.config_hash(Cfg(min_bytes=99))
    cache.store(tmp_path, "flyte", SHA1, h1, [_rec("flyte", "a.py", "1\n")])
    assert cache.load(tmp_path, "flyte", SHA1, h2) is None  # config changed
    assert cache.load(tmp_path, "flyte", SHA2, h1) is None  # pin changed
    new = [_rec("flyte", "a.py", "2\n", SHA2)]
    got, hit = cache.load_or_compute(tmp_path, "flyte", SHA2, h1, lambda: new)
    assert (got, hit) == (new, False)
    assert cache.load(tmp_path, "flyte", SHA1, h1) is None  # stale entry removed
    assert len(list((tmp_path / "flyte").glob("*.parquet"))) == 1
    # other repos are untouched
    cache.store(tmp_path, "flytekit", SHA1, h1, [])
    assert cache.load(tmp_path, "flytekit", SHA1, h1) == []
    assert cache.load(tmp_path, "flyte", SHA2, h1) == new


def test_corrupt_entry_is_a_miss_and_failed_write_leaves_nothing(tmp_path, monkeypatch):
    h = cache.config_hash(Cfg())
    path = cache.cache_path(tmp_path, "flyte", SHA1, h)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not parquet")
    assert cache.load(tmp_path, "flyte", SHA1, h) is None

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(cache.pq, "write_table", boom)
    with pytest.raises(OSError, match="disk full"):
        cache.store(tmp_path, "flyte", SHA1, h, [_rec("flyte", "a.py", "1\n")])
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp file left
    assert path.read_bytes() == b"not parquet"


def test_bad_keys_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="hex SHA"):
        cache.cache_path(tmp_path, "flyte", "main", "0" * 64)
    with pytest.raises(ValueError, match="folder name"):
        cache.cache_path(tmp_path, "../x", SHA1, "0" * 64)


def test_meta_and_sidecar_travel_with_the_entry_and_go_stale_with_it(tmp_path):
    h = cache.config_hash(Cfg())
    meta = {"drops": {"filter": {"generated": 2}}, "redactions": {"total": 1}}
    cache.store(tmp_path, "flyte", SHA1, h, [_rec("flyte", "a.py", "1\n")], meta)
    records, got = cache.load_entry(tmp_path, "flyte", SHA1, h)
    assert got == meta and [r.path for r in records] == ["a.py"]
    assert cache.load_sidecar(tmp_path, "flyte", SHA1, h, "parses") == {}  # absent: empty
    cache.store_sidecar(tmp_path, "flyte", SHA1, h, "parses", {"a.py": True, "b.md": None})
    assert cache.load_sidecar(tmp_path, "flyte", SHA1, h, "parses") == {"a.py": True, "b.md": None}
    cache.store(tmp_path, "flyte", SHA2, h, [])  # a new pin: the old entry and its sidecar go
    assert sorted(p.name for p in (tmp_path / "flyte").iterdir()) == [f"{SHA2}-{h[:16]}.parquet"]
    assert cache.load_sidecar(tmp_path, "flyte", SHA1, h, "parses") == {}


def test_repo_cache_key_reads_library_versions_once(monkeypatch):
    # importlib.metadata parses a METADATA file per call; a build asks for every repo, several times.
    import importlib.metadata

    from dataset_builder import pipeline
    from dataset_builder.config import load_config

    calls = []
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: calls.append(name) or real(name))
    pipeline._library_versions.cache_clear()
    cfg = load_config(None)
    keys = [pipeline.repo_cache_key(spec, cfg) for spec in cfg.repos for _ in range(3)]
    assert sorted(calls) == sorted(pipeline._RESULT_LIBRARIES)
    assert len(set(keys)) == len(cfg.repos)  # still one key per repo
    pipeline._library_versions.cache_clear()
