"""One call that builds the corpus folder: what `python -m dataset_builder build` and the job both run."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flyte_llama_common.atomic import remove_stale, staging_dir

from .config import DEFAULT_CACHE, load_config
from .pipeline import repos_started
from .sources import resolve_sources

if TYPE_CHECKING:
    from .export import CardRenderer


def build_corpus(
    out: str | Path,
    config: str | Path | None = None,
    *,
    overrides: list[str] | None = None,
    mirrors: str | Path | None = None,
    sources: dict[str, str] | None = None,
    cache_dir: str | Path = DEFAULT_CACHE,
    progress: bool = True,
    workers: int = 2,
    stats: dict[str, Any] | None = None,
    render_card: CardRenderer,
) -> dict[str, Any]:
    """Build the Hub dataset folder `out` from the recipe `config` and return its manifest.

    Sources are resolved (and pins checked) before anything is read or written, so a bad pin or an
    unreachable repo fails fast and leaves no output. `cache_dir` holds partial clones (repos/), the
    per-repo cache (per_repo/) and prepared builds (datasets/); `workers` processes read the repos that
    miss the per-repo cache (the output does not depend on it). `stats`, when given, receives what this
    run recomputed ("computed": repos processed, "parsed": files parse-checked), kept out of the manifest.
    `render_card` writes README.md: pass model_card.dataset_card.render_dataset_card (cards sit in the
    layer above; entry points wire them in).
    The temp folder the export is written into is made beside `out` before the pipeline starts, named
    after this process; folders that killed builds left there are removed first (atomic.remove_stale).
    """
    cfg = load_config(config, overrides or [])
    cache_dir = Path(cache_dir)
    resolved = resolve_sources(cfg, cache_dir, Path(mirrors) if mirrors else None, sources or {})
    out = Path(out).resolve()
    remove_stale(out)
    staging = staging_dir(out)
    try:
        # pyarrow imports pandas on its first pa.array (~0.2 s), which every forked worker would do again;
        # imported once here, before the fork, it is shared (the parent needs it anyway, for `datasets`).
        import pandas  # noqa: F401

        with repos_started(cfg, resolved, cache_dir / "per_repo", workers) as started:
            # Imported only now, while the workers started above read the repos: `datasets` costs ~1 s.
            from .export import export_dataset
            from .hf_builder import build_dataset, make_builder

            builder = make_builder(
                cfg,
                resolved,
                cache_dir / "datasets",
                progress=progress,
                repo_cache_dir=cache_dir / "per_repo",
                workers=workers,
            )
            builder.started = started
            dd, report = build_dataset(builder, progress=progress)
        if stats is not None:
            stats.update(computed=list(builder.computed), parsed=builder.parsed)
        return export_dataset(dd, report, cfg, out, render_card, staging=staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when the export moved it into place
