"""The corpus pipeline: cached per-repo work, then an explicit list of corpus-wide stages.

    repo @ pinned commit ──process_repo──▶ read → filters → redact   [per repo, cached; repo_step.py]
    all records ──STAGES (records in → records out, each with a report)──▶            [corpus-wide]
                  dedup: exact + near dedup + decontamination (dedup.py)
    survivors ──parse_check──▶ `parses` set by tree-sitter ──▶ export                 [cached per repo]

`process_repo` is a pure function of (repo spec, git objects, per-repo config, code), so its output —
records, drop counts and redaction report — is cached by (commit SHA, `repo_cache_key`) in cache.py:
a rebuild re-reads only the repos whose pin or per-repo config changed. Repos that miss the cache run in a
process pool; results are merged in config order, so the output never depends on scheduling.
Corpus-wide steps that need every repo at once are `PipelineStage`s listed in `corpus_stages`.

The tree-sitter parse check is the most expensive step per byte, so it runs last, on the survivors only
(dedup drops ~20% of the bytes, mostly the archived repos' Go copies); its results are kept beside each
repo's cache entry (keyed by path: the entry's key fixes every path's content), so a rebuild parses only
files it has never parsed.
"""

from __future__ import annotations

import importlib.metadata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache, partial
from itertools import pairwise
from pathlib import Path
from typing import Any

from flyte_llama_common.treesitter import parses

from . import cache
from .config import CorpusConfig, RepoSpec
from .dedup import deduplicate, rank_repos
from .dedup_near import lsh_params
from .fingerprint import REPO_STEP_CODE, code_fingerprint
from .gitread import git
from .record import SPLITS, Record
from .repo_step import RepoOutput, process_repo
from .sources import Source
from .workers import kill_workers
from .workers import worker_pool as _pool

StageFn = Callable[[list[Record]], tuple[list[Record], dict[str, Any]]]
# Libraries whose version changes what the per-repo step produces (parse checks, secret plugins).
_RESULT_LIBRARIES = ("tree-sitter", "tree-sitter-language-pack", "detect-secrets", "datasketch")


@dataclass(frozen=True)
class PipelineStage:
    """One corpus-wide step: records in → (records out, report).

    report_to="drops": the report is {reason: count} and lands at manifest["drops"][name].
    Otherwise the whole report lands at manifest[report_to] (e.g. "dedup"), and `drops(report)`, when
    given, gives the {reason: count} that also lands at manifest["drops"][name].
    """

    name: str
    run: StageFn
    report_to: str = "drops"
    drops: Callable[[dict[str, Any]], dict[str, int]] | None = None


def commit_times(cfg: CorpusConfig, sources: dict[str, Source]) -> dict[str, int]:
    """repo → committer time (Unix seconds) of its pinned commit: what ranks copies for dedup."""
    return {
        s.name: int(git(sources[s.name].git_dir, "log", "-1", "--format=%ct", s.commit).strip())
        for s in cfg.repos
    }


def _dedup_stage(records: list[Record], cfg: CorpusConfig, ranks: dict[str, int]):
    result = deduplicate(records, ranks, cfg.dedup)
    return result.kept, result.report


def corpus_stages(cfg: CorpusConfig, times: dict[str, int]) -> list[PipelineStage]:
    """The corpus-wide stages, in order, between the per-repo work and the export."""
    ranks = rank_repos(times, [r.name for r in cfg.repos])
    # The LSH optimum is cached per process and needs only the config: computed now, run_pipeline has
    # the parent do it while the per-repo work runs instead of after it.
    lsh_params(cfg.dedup.threshold, cfg.dedup.num_perm)
    return [
        PipelineStage(
            "dedup",
            partial(_dedup_stage, cfg=cfg, ranks=ranks),
            report_to="dedup",
            drops=lambda report: {k: report["removed"][k] for k in ("exact", "near")},
        ),
    ]


@dataclass
class PipelineResult:
    records: list[Record]  # sorted by (repo, path)
    drops: dict[str, dict[str, int]] = field(default_factory=dict)
    reports: dict[str, Any] = field(default_factory=dict)  # manifest keys ("dedup", "redactions")
    computed: list[str] = field(default_factory=list)  # repos processed this run (cache misses)
    parsed: int = 0  # files parse-checked this run (the others came from the per-repo memo)

    def by_split(self) -> dict[str, list[Record]]:
        out: dict[str, list[Record]] = {s: [] for s in SPLITS}
        for r in self.records:
            out[r.split].append(r)
        return out


@lru_cache(maxsize=1)
def _library_versions() -> dict[str, str]:
    # importlib.metadata parses each distribution's METADATA file on every call (~5 ms each): read them
    # once per process, not once per repo and per caller (a cold build asked 108 times).
    return {name: importlib.metadata.version(name) for name in _RESULT_LIBRARIES}


def repo_cache_key(spec: RepoSpec, cfg: CorpusConfig) -> str:
    """Hash of everything `process_repo` depends on besides the commit: the repo's role, the per-repo
    config sections, this package's code and the versions of the libraries that shape its output.
    Dedup and export settings are left out on purpose: changing them must not re-read any repo."""
    return cache.config_hash(
        {
            "repo": {"name": spec.name, "split": spec.split, "license": spec.license},
            "filters": cfg.filters,
            "splits": cfg.splits,
            "code": code_fingerprint(REPO_STEP_CODE),
            "libraries": _library_versions(),
        }
    )


def _process_uncached(
    spec: RepoSpec, source: Source, cfg: CorpusConfig, progress: bool, cache_dir: Path | None = None
) -> RepoOutput:
    """process_repo, then its per-repo cache entry written (module level, so the pool can pickle it).

    The entry is written here, in the worker, so that the parent does not write every repo's Parquet
    entry one after the other once the pool is done."""
    out = process_repo(spec, source, cfg, progress=progress)
    if cache_dir:
        meta = {"drops": out.drops, "redactions": out.redactions}
        cache.store(cache_dir, spec.name, spec.commit, repo_cache_key(spec, cfg), out.records, meta)
    return out


def _parse_all(items: list[tuple[str, str]]) -> list[bool | None]:
    return [parses(language, content) for language, content in items]


def byte_slices(sizes: list[int], slices: int) -> list[tuple[int, int]]:
    """[start, end) bounds that cut items of these sizes, in order, into at most `slices` contiguous runs
    of about equal total size (none empty)."""
    total, bounds, acc = sum(sizes), [0], 0
    for i, size in enumerate(sizes):
        acc += size
        if acc >= total * len(bounds) / slices and len(bounds) < slices and i + 1 < len(sizes):
            bounds.append(i + 1)
    bounds.append(len(sizes))
    return [(a, b) for a, b in pairwise(bounds) if b > a]


def parse_check(
    records: list[Record], cfg: CorpusConfig, cache_dir: Path | None = None, workers: int = 2
) -> int:
    """Set `parses` on every record (in place), reusing the per-repo memo of earlier builds; returns how
    many files were parsed now. Work is split into contiguous slices of about equal bytes (byte_slices)."""
    memos: dict[str, dict[str, bool | None]] = {}
    keys = {spec.name: (spec.commit, repo_cache_key(spec, cfg)) for spec in cfg.repos}
    if cache_dir:
        memos = {name: cache.load_sidecar(cache_dir, name, *key, "parses") for name, key in keys.items()}
    todo = [r for r in records if r.path not in memos.get(r.repo, {})]
    items = [(r.language, r.content) for r in todo]
    total = sum(len(c) for _, c in items)
    if workers > 1 and total > 1_000_000:  # below ~1 MB a pool costs more than it saves
        # 8 slices per worker, handed out as workers free up: bytes are not time (tree-sitter reads YAML
        # twice as fast as Go), and with one slice per worker one of them sat idle ~0.25 s at the end.
        bounds = byte_slices([len(content) for _, content in items], workers * 8)
        with _pool(workers) as pool:
            parts = pool.map(_parse_all, [items[a:b] for a, b in bounds])
            results = [x for part in parts for x in part]
    else:
        results = _parse_all(items)
    for record, ok in zip(todo, results, strict=True):
        memos.setdefault(record.repo, {})[record.path] = ok
    for record in records:
        record.parses = memos[record.repo][record.path]
    if cache_dir:
        for name in sorted({r.repo for r in todo}):
            cache.store_sidecar(cache_dir, name, *keys[name], "parses", memos[name])
    return len(todo)


@contextmanager
def repos_started(
    cfg: CorpusConfig, sources: dict[str, Source], cache_dir: Path | None = None, workers: int = 2
) -> Iterator[dict[str, Future[RepoOutput]]]:
    """Start the per-repo work of the repos with no per-repo cache entry in `workers` processes now, and
    yield {repo: future} for `process_repos(..., started=...)`.

    Why: a cold build's process would otherwise spend its first ~1 s importing `datasets` (pandas,
    pyarrow, huggingface_hub) on one core before reading any repo; started first, the workers read,
    filter and redact while the parent imports. Workers forked here, before that import, are also smaller.
    With at most one miss (or one worker) nothing starts: process_repos computes as before. Work still
    running at exit (the prepared `datasets` build was cached, or the block failed) is killed, not waited for.
    """
    keys = {spec.name: repo_cache_key(spec, cfg) for spec in cfg.repos}

    # A file check, not load_entry: a warm rebuild must not read every entry twice. A present but stale
    # or unreadable entry is simply recomputed by process_repos.
    def cached(s: RepoSpec) -> bool:
        return bool(cache_dir) and cache.cache_path(cache_dir, s.name, s.commit, keys[s.name]).exists()

    misses = [s for s in cfg.repos if not cached(s)]
    if len(misses) <= 1 or workers <= 1:
        yield {}
        return
    with _pool(min(workers, len(misses))) as pool:
        futures = {
            s.name: pool.submit(_process_uncached, s, sources[s.name], cfg, False, cache_dir) for s in misses
        }
        yield futures
        if not all(f.done() for f in futures.values()):
            kill_workers(pool)


def process_repos(
    cfg: CorpusConfig,
    sources: dict[str, Source],
    cache_dir: Path | None = None,
    workers: int = 2,
    progress: bool = True,
    started: dict[str, Future[RepoOutput]] | None = None,
) -> list[RepoOutput]:
    """Every repo of `cfg`, in config order: from the per-repo cache when its key matches, else computed
    (in `workers` processes when more than one repo misses, or by `started`, see repos_started) and then
    cached."""
    outputs: dict[str, RepoOutput] = {}
    keys = {spec.name: repo_cache_key(spec, cfg) for spec in cfg.repos}
    started = started or {}
    misses = []
    for spec in cfg.repos:
        entry = None
        if cache_dir and spec.name not in started:
            entry = cache.load_entry(cache_dir, spec.name, spec.commit, keys[spec.name])
        if entry is None:
            misses.append(spec)
        else:
            records, meta = entry
            outputs[spec.name] = RepoOutput(records, meta["drops"], meta["redactions"], cached=True)
    # Each computed repo's entry is written by _process_uncached, where it was computed.
    computed = {s.name: started[s.name].result() for s in misses if s.name in started}
    misses_left = [s for s in misses if s.name not in computed]
    if len(misses_left) > 1 and workers > 1:
        with _pool(min(workers, len(misses_left))) as pool:
            futures = {
                s.name: pool.submit(_process_uncached, s, sources[s.name], cfg, False, cache_dir)
                for s in misses_left
            }
            computed |= {name: f.result() for name, f in futures.items()}
    else:
        computed |= {
            s.name: _process_uncached(s, sources[s.name], cfg, progress, cache_dir) for s in misses_left
        }
    for spec in misses:
        outputs[spec.name] = computed[spec.name]
    return [outputs[spec.name] for spec in cfg.repos]


def merge_redactions(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One redaction report for the corpus from the per-repo ones (same shape as redact_records')."""
    by_kind: Counter[str] = Counter()
    by_repo: dict[str, dict[str, int]] = {}
    placeholders: dict[str, str] = {}
    for report in reports:
        by_kind.update(report["by_kind"])
        by_repo.update(report["by_repo"])
        placeholders.update(report["placeholders"])
    return {
        "by_kind": dict(sorted(by_kind.items())),
        "by_repo": dict(sorted(by_repo.items())),
        "files": sum(r["files"] for r in reports),
        "placeholders": dict(sorted(placeholders.items())),
        "total": sum(r["total"] for r in reports),
    }


def run_stages(records: list[Record], stages: list[PipelineStage]) -> PipelineResult:
    """Apply the corpus-wide stages in order, collecting their reports."""
    result = PipelineResult(records)
    for stage in stages:
        result.records, report = stage.run(result.records)
        if stage.report_to == "drops":
            result.drops[stage.name] = dict(report)
        else:
            result.reports[stage.report_to] = report
            if stage.drops is not None:
                result.drops[stage.name] = dict(stage.drops(report))
    result.records.sort(key=lambda r: (r.repo, r.path))
    return result


def run_pipeline(
    cfg: CorpusConfig,
    sources: dict[str, Source],
    stages: list[PipelineStage] | None = None,
    progress: bool = True,
    cache_dir: Path | None = None,
    workers: int = 2,
    started: dict[str, Future[RepoOutput]] | None = None,
) -> PipelineResult:
    """Every repo through the (cached) per-repo step, then the corpus-wide stages. Drops merge per stage.
    `started`: per-repo work already running (repos_started)."""
    outputs = process_repos(cfg, sources, cache_dir, workers, progress, started)
    records: list[Record] = []
    drops: dict[str, Counter[str]] = defaultdict(Counter)
    for out in outputs:
        records.extend(out.records)
        for stage, counts in out.drops.items():
            drops[stage].update(counts)
    # After the per-repo work, not overlapping it: while workers run, the parent only waits on the pool, the
    # path whose SIGTERM clean-up tests/test_hostile_build.py checks (an overlapped run once timed out there).
    if stages is None:
        stages = corpus_stages(cfg, commit_times(cfg, sources))
    result = run_stages(records, stages)
    result.parsed = parse_check(result.records, cfg, cache_dir, workers)
    result.drops = {**{k: dict(sorted(v.items())) for k, v in drops.items()}, **result.drops}
    result.reports["redactions"] = merge_redactions([o.redactions for o in outputs])
    result.computed = [spec.name for spec, out in zip(cfg.repos, outputs, strict=True) if not out.cached]
    return result
