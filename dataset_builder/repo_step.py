"""The per-repo step: one repo at its pinned commit → filtered, redacted records and the drop counts.

    tree entries ──path filters──▶ candidates ──secret names dropped──▶ blobs ──bytes/text filters──▶ Records
                                                                              ──redact──▶ RepoOutput

A pure function of (repo spec, git objects, per-repo config, code): pipeline.py caches its output per repo
(by commit and `repo_cache_key`) and runs it in forked workers for the repos that miss the cache. `parses`
is left None here; pipeline.parse_check fills it in for the files that survive dedup.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from . import filters
from .config import CorpusConfig, RepoSpec
from .gitread import MODE_SUBMODULE, MODE_SYMLINK, list_tree, read_blobs
from .languages import DOC_LANGUAGES, detect_language, is_doc, is_test_path
from .notebooks import NotebookError, notebook_to_percent
from .record import Record, count_lines, record_id
from .redact import redact_records, secret_paths
from .sources import Source, fetch_blobs
from .splits import assign_split


def tqdm(*args: Any, **kwargs: Any) -> Any:
    """tqdm.auto's progress bar, imported when the first bar is made: a cold build forks its workers
    before that import (~0.1 s) instead of after it."""
    from tqdm.auto import tqdm as bar

    return bar(*args, **kwargs)


@dataclass
class RepoOutput:
    records: list[Record]
    drops: dict[str, dict[str, int]]  # stage ("read" | "filter") → reason → count
    redactions: dict[str, Any]  # redact.redact_records' report for this repo
    blobs_fetched: int = 0
    cached: bool = False  # came from the per-repo cache


def _to_record(
    spec: RepoSpec, path: str, blob_sha: str, data: bytes, language: str | None, cfg: CorpusConfig
):
    """Bytes of one candidate file → (Record, None) or (None, drop reason). `parses` is set later."""
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
        parses=None,
    )
    return record, None


def _utf8(path: str) -> bool:
    """False for a name that list_tree could not decode (its bytes are kept as lone surrogates)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def process_repo(spec: RepoSpec, source: Source, cfg: CorpusConfig, progress: bool = True) -> RepoOutput:
    """Read `spec` at its pinned commit; filter and redact every file, counting each drop. `parses` is
    left None: `parse_check` fills it in for the files that survive dedup."""
    read_drops: Counter[str] = Counter()
    filter_drops: Counter[str] = Counter()
    candidates: list[tuple[str, str, str | None]] = []  # (path, blob sha, language or None)
    for entry in list_tree(source.git_dir, spec.commit):
        if not entry.path.isascii() and not _utf8(entry.path):
            # git allows any bytes in a name; the Parquet `path` column (and the Hub) is UTF-8 only.
            read_drops["undecodable_path"] += 1
            continue
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
    # The `path` column is published as is: a file whose name holds a secret is dropped, never renamed.
    flagged = secret_paths([path for path, _, _ in candidates])
    if flagged:
        filter_drops["secret_in_path"] += len(flagged)
        candidates = [c for c in candidates if c[0] not in flagged]

    fetched = fetch_blobs(source, spec.commit, {sha for _, sha, _ in candidates})
    records: list[Record] = []
    paths = {sha: path for path, sha, _ in candidates}  # so a corrupt object's error names its file
    blobs = read_blobs(source.git_dir, [sha for _, sha, _ in candidates], paths=paths, repo=spec.name)
    items = zip(candidates, blobs, strict=True)
    if progress:  # never in a pool worker: a forked child can inherit tqdm's lock held by another thread
        items = tqdm(items, total=len(candidates), desc=f"{spec.name:>24}", unit="file", leave=False)
    for (path, sha, language), (_, data) in items:
        if data is None:
            filter_drops["missing_blob"] += 1
            continue
        record, reason = _to_record(spec, path, sha, data, language, cfg)
        if record is None:
            filter_drops[reason] += 1
        else:
            records.append(record)
    records.sort(key=lambda r: r.path)
    # Redact before anything is cached, hashed or written (the parse check runs on the survivors later).
    records, redactions = redact_records(records)
    drops = {"read": dict(sorted(read_drops.items())), "filter": dict(sorted(filter_drops.items()))}
    return RepoOutput(records, drops, redactions, fetched)
