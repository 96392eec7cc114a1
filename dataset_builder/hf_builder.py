"""The corpus as a `datasets.ArrowBasedBuilder`, so `download_and_prepare()` + `as_dataset()` work.

The BuilderConfig carries the corpus version (semver) and the pins (the whole CorpusConfig). The cache
key is the config hash plus a hash of the code that shapes the records (fingerprint.BUILD_CODE): the same
pins, recipe and code reuse the prepared Arrow files (a rebuild takes milliseconds), any change rebuilds —
and then the per-repo cache (pipeline.process_repos) still spares every repo whose pin and per-repo config
did not change.
Records are handed over as Arrow tables in the stable (repo, path) order, keyed by their position, so the
Arrow files and the Parquet export are the same bytes on every rebuild.

datasets 5 no longer runs loading scripts from the Hub, so this class is how WE build; the published
repo holds the Parquet export (export.py), which `load_dataset` reads with no code.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import datasets

from .config import CorpusConfig
from .fingerprint import BUILD_CODE, code_fingerprint
from .pipeline import PipelineResult, PipelineStage, run_pipeline
from .record import ARROW_SCHEMA, SPLITS, Record, records_to_table
from .sources import Source

# datasets "extends" every builder's module for streaming when the builder is made: it swaps the module's
# `open`, `os.path.*`, `pathlib.Path` and the readers of pandas, numpy and scipy.io for remote-aware
# versions, importing pandas' and scipy's readers to do so (~0.3 s of a cold build for scipy.io alone).
# This builder reads local git objects and never streams, so its module tells datasets it is done already
# (datasets/streaming.py returns early for a module whose `_patched_for_streaming` is true).
_patched_for_streaming = True
TABLE_ROWS = 2048  # records per Arrow table handed to datasets (bounds the peak memory of a split)
REPORT_FILE = "pipeline_report.json"  # drops and stage reports, kept beside the cached Arrow files
FEATURES = datasets.Features.from_arrow_schema(ARROW_SCHEMA)


@dataclasses.dataclass
class FlyteCorpusConfig(datasets.BuilderConfig):
    """BuilderConfig with the corpus recipe (version + pins) and, at run time, where to read the repos."""

    corpus: CorpusConfig | None = None
    # Runtime only, not part of the cache key (the pins decide the content, not where objects come from).
    sources: dict[str, Source] | None = None
    stages: list[PipelineStage] | None = None  # None: pipeline.corpus_stages(corpus)
    progress: bool = True
    repo_cache_dir: Path | None = None  # per-repo cache (cache.py); None: no per-repo caching
    workers: int = 2  # processes for the repos that miss the per-repo cache


class FlyteCorpus(datasets.ArrowBasedBuilder):
    BUILDER_CONFIG_CLASS = FlyteCorpusConfig
    BUILDER_CONFIGS = [FlyteCorpusConfig(name="default", version=datasets.Version("1.0.0"))]  # noqa: RUF012
    DEFAULT_CONFIG_NAME = "default"
    computed: tuple[str, ...] = ()  # repos processed by this run (none when the prepared build is reused)
    parsed = 0  # files parse-checked by this run
    # Per-repo work already running (pipeline.repos_started); set on the instance, never in the config,
    # which datasets deep-copies (futures hold locks).
    started: dict[str, Any] | None = None

    def _info(self) -> datasets.DatasetInfo:
        corpus = self.config.corpus
        return datasets.DatasetInfo(
            description="Source code, tests and docs of pinned Flyte repositories, split by repository.",
            features=FEATURES,
            homepage="https://github.com/flyteorg",
            license="apache-2.0",
            version=corpus.version if corpus else None,
        )

    def _split_generators(self, dl_manager: Any) -> list[datasets.SplitGenerator]:
        cfg = self.config
        if cfg.corpus is None or cfg.sources is None:
            raise ValueError("build through build_corpus(...) or pass corpus=CorpusConfig and sources={...}")
        self._result = run_pipeline(
            cfg.corpus,
            cfg.sources,
            stages=cfg.stages,
            progress=cfg.progress,
            cache_dir=cfg.repo_cache_dir,
            workers=cfg.workers,
            started=self.started,
        )
        self.computed, self.parsed = tuple(self._result.computed), self._result.parsed
        report = {"drops": self._result.drops, "reports": self._result.reports}
        # _output_dir is datasets' temp dir here; it is renamed into the cache with the Arrow files.
        Path(self._output_dir, REPORT_FILE).write_text(json.dumps(report, sort_keys=True, indent=1))
        by_split = self._result.by_split()
        # An empty split cannot be read back by as_dataset(); tiny recipes may have no validation file.
        return [
            datasets.SplitGenerator(name=s, gen_kwargs={"records": by_split[s]})
            for s in SPLITS
            if by_split[s]
        ]

    def _generate_tables(self, records: list[Record]) -> Any:
        # Whole Arrow tables, not one example at a time: the records already have the published schema,
        # so datasets has nothing to encode (the per-example path cost ~1 s of a cold build).
        for i in range(0, len(records), TABLE_ROWS):
            yield i, records_to_table(records[i : i + TABLE_ROWS])

    def pipeline_report(self) -> dict[str, Any]:
        """Drops and stage reports of the prepared build (also when it came from the cache)."""
        return json.loads(Path(self.cache_dir, REPORT_FILE).read_text())


def make_builder(
    corpus: CorpusConfig,
    sources: dict[str, Source],
    cache_dir: str | Path,
    stages: list[PipelineStage] | None = None,
    progress: bool = True,
    repo_cache_dir: str | Path | None = None,
    workers: int = 2,
) -> FlyteCorpus:
    """A builder whose cache is keyed by the corpus config hash and the code fingerprint."""
    return FlyteCorpus(
        cache_dir=str(cache_dir),
        dataset_name=corpus.name.replace("-", "_"),
        config_id=f"default-{corpus.config_sha256[:16]}",
        hash=code_fingerprint(BUILD_CODE)[:16],
        corpus=corpus,
        sources=sources,
        stages=stages,
        progress=progress,
        repo_cache_dir=Path(repo_cache_dir) if repo_cache_dir else None,
        workers=workers,
        version=datasets.Version(corpus.version),
    )


def build_dataset(builder: FlyteCorpus, progress: bool = True) -> tuple[datasets.DatasetDict, dict[str, Any]]:
    """download_and_prepare + as_dataset; returns the DatasetDict and the pipeline report."""
    was_disabled = datasets.are_progress_bars_disabled()
    if not progress:
        datasets.disable_progress_bars()  # process-global in datasets: restored below
    try:
        builder.download_and_prepare()
        return builder.as_dataset(), builder.pipeline_report()
    finally:
        if not progress and not was_disabled:
            datasets.enable_progress_bars()


__all__ = ["FlyteCorpus", "FlyteCorpusConfig", "PipelineResult", "build_dataset", "make_builder"]
