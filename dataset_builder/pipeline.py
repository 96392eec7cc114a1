"""The corpus pipeline: per-repo extraction, then an explicit list of corpus-wide stages.

    repo @ pinned commit ──process_repo──▶ records (filtered, converted, parsed, split)   [per repo]
    all records ──STAGES (records in → records out, each with a report)──▶ export            [global]

`process_repo` is a pure function of (repo spec, git objects, config), so its output can be cached by
(commit SHA, config hash). Corpus-wide steps that need every repo at once (dedup, decontamination,
redaction) are `PipelineStage`s: add one line to `corpus_stages` for each.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from . import filters
from .config import CorpusConfig, RepoSpec
from .gitread import MODE_SUBMODULE, MODE_SYMLINK, list_tree, read_blobs
from .languages import DOC_LANGUAGES, detect_language, is_doc, is_test_path, parses
from .notebooks import NotebookError, notebook_to_percent
from .record import SPLITS, Record, count_lines, record_id
from .sources import Source, fetch_blobs
from .splits import assign_split

StageFn = Callable[[list[Record]], tuple[list[Record], dict[str, Any]]]


@dataclass(frozen=True)
class PipelineStage:
    """One corpus-wide step: records in → (records out, report).

    report_to="drops": the report is {reason: count} and lands at manifest["drops"][name].
    Otherwise the whole report lands at manifest[report_to] (e.g. "dedup", "redactions"), and its
    "drops" entry, when present ({reason: count}), also at manifest["drops"][name].
    """

    name: str
    run: StageFn
    report_to: str = "drops"


def corpus_stages(cfg: CorpusConfig) -> list[PipelineStage]:
    """The corpus-wide stages, in order, between the per-repo filters and the export."""
    return [
        # Issue 3 adds, one line each (pure functions list[Record] -> (list[Record], report)):
        #   PipelineStage("dedup", partial(dedup.run, cfg=cfg), report_to="dedup"),
        #   PipelineStage("redact", partial(redact.run, cfg=cfg), report_to="redactions"),
    ]


@dataclass
class RepoOutput:
    records: list[Record]
    drops: dict[str, dict[str, int]]  # stage ("read" | "filter") → reason → count
    blobs_fetched: int = 0


@dataclass
class PipelineResult:
    records: list[Record]  # sorted by (repo, path)
    drops: dict[str, dict[str, int]] = field(default_factory=dict)
    reports: dict[str, Any] = field(default_factory=dict)  # manifest keys filled by stages ("dedup", ...)

    def by_split(self) -> dict[str, list[Record]]:
        out: dict[str, list[Record]] = {s: [] for s in SPLITS}
        for r in self.records:
            out[r.split].append(r)
        return out


def _to_record(
    spec: RepoSpec, path: str, blob_sha: str, data: bytes, language: str | None, cfg: CorpusConfig
):
    """Bytes of one candidate file → (Record, None) or (None, drop reason)."""
    fcfg = cfg.filters
    reason = filters.bytes_reason(data, language, fcfg)
    if reason:
        return None, reason
    language = language or detect_language(path, data[:256])  # extensionless: the shebang decides
    if language is None:
        return None, "unsupported_language"
    text = filters.decode(data)
    if text is None:
        return None, "undecodable"
    notebook = language == "notebook"
    if notebook:
        try:
            text, language = notebook_to_percent(text)
        except NotebookError:
            return None, "invalid_notebook"
        if language not in ("python", "shell", "javascript", "typescript", "go"):
            return None, "unsupported_language"
    if not text.strip():
        return None, "empty"
    reason = filters.text_reason(text, fcfg, prose=language in DOC_LANGUAGES)
    if reason:
        return None, reason
    record = Record(
        id=record_id(spec.name, path),
        repo=spec.name,
        path=path,
        language=language,
        content=text,
        bytes=len(text.encode("utf-8")),
        lines=count_lines(text),
        commit_sha=spec.commit,
        blob_sha=blob_sha,
        license=spec.license,
        split=assign_split(spec.split, spec.name, path, cfg.splits),
        is_test=is_test_path(path),
        is_doc=is_doc(path, language, notebook),
        is_notebook=notebook,
        parses=parses(language, text),
    )
    return record, None


def process_repo(spec: RepoSpec, source: Source, cfg: CorpusConfig, progress: bool = True) -> RepoOutput:
    """Read `spec` at its pinned commit and turn every kept file into a Record, counting each drop."""
    read_drops: Counter[str] = Counter()
    filter_drops: Counter[str] = Counter()
    candidates: list[tuple[str, str, str | None]] = []  # (path, blob sha, language or None)
    for entry in list_tree(source.git_dir, spec.commit):
        if entry.mode == MODE_SUBMODULE:
            read_drops["submodule"] += 1
            continue
        if entry.mode == MODE_SYMLINK:
            read_drops["symlink"] += 1
            continue
        reason = filters.path_reason(entry.path, cfg.filters)
        language = detect_language(entry.path)
        if reason is None and language is None and "." in entry.path.rsplit("/", 1)[-1]:
            reason = "unsupported_language"  # has an extension we do not take; no shebang check needed
        if reason:
            filter_drops[reason] += 1
            continue
        candidates.append((entry.path, entry.sha, language))

    fetched = fetch_blobs(source, spec.commit, {sha for _, sha, _ in candidates})
    records: list[Record] = []
    blobs = read_blobs(source.git_dir, [sha for _, sha, _ in candidates])
    bar = tqdm(total=len(candidates), desc=f"{spec.name:>24}", unit="file", disable=not progress, leave=False)
    with bar:
        for (path, sha, language), (_, data) in zip(candidates, blobs, strict=True):
            bar.update()
            if data is None:
                filter_drops["missing_blob"] += 1
                continue
            record, reason = _to_record(spec, path, sha, data, language, cfg)
            if record is None:
                filter_drops[reason] += 1
            else:
                records.append(record)
    records.sort(key=lambda r: r.path)
    drops = {"read": dict(read_drops), "filter": dict(filter_drops)}
    return RepoOutput(records, drops, fetched)


def run_stages(records: list[Record], stages: list[PipelineStage]) -> PipelineResult:
    """Apply the corpus-wide stages in order, collecting their reports."""
    result = PipelineResult(records)
    for stage in stages:
        result.records, report = stage.run(result.records)
        if stage.report_to == "drops":
            result.drops[stage.name] = dict(report)
        else:
            result.reports[stage.report_to] = report
            if isinstance(report.get("drops"), dict):
                result.drops[stage.name] = dict(report["drops"])
    result.records.sort(key=lambda r: (r.repo, r.path))
    return result


def run_pipeline(
    cfg: CorpusConfig,
    sources: dict[str, Source],
    stages: list[PipelineStage] | None = None,
    progress: bool = True,
) -> PipelineResult:
    """Every repo through `process_repo`, then the corpus-wide stages. Drops are merged per stage."""
    records: list[Record] = []
    drops: dict[str, Counter[str]] = defaultdict(Counter)
    for spec in tqdm(cfg.repos, desc="repos", unit="repo", disable=not progress):
        out = process_repo(spec, sources[spec.name], cfg, progress=progress)
        records.extend(out.records)
        for stage, counts in out.drops.items():
            drops[stage].update(counts)
    result = run_stages(records, corpus_stages(cfg) if stages is None else stages)
    result.drops = {**{k: dict(sorted(v.items())) for k, v in drops.items()}, **result.drops}
    return result
