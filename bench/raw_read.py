"""Raw read baseline: `git ls-tree -r -z` + ONE `git cat-file --batch` per repo, over every blob of the
pinned commits. This is the floor any build of the same commits is compared against (a cold
build should take at most 10x this).

    python bench/raw_read.py --mirrors MIRRORS [--config FILE] [--repeat 3]

Reusable: `raw_read(git_dir, commit)` and `raw_read_all(cfg, sources)` return (files, bytes, seconds).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from dataset_builder.config import CorpusConfig, load_config
from dataset_builder.gitread import MODE_SUBMODULE, MODE_SYMLINK, list_tree, read_blobs
from dataset_builder.sources import Source, resolve_sources


def raw_read(git_dir: Path, commit: str) -> tuple[int, int]:
    """Read every regular blob of `commit`; returns (files, bytes). Missing blobs count as 0 bytes."""
    entries = [e for e in list_tree(git_dir, commit) if e.mode not in (MODE_SYMLINK, MODE_SUBMODULE)]
    files = nbytes = 0
    for _, data in read_blobs(git_dir, [e.sha for e in entries]):
        files += 1
        nbytes += len(data or b"")
    return files, nbytes


def raw_read_all(cfg: CorpusConfig, sources: dict[str, Source]) -> tuple[int, int, float]:
    """Raw read of all pinned commits of `cfg`: (files, bytes, wall seconds)."""
    start = time.perf_counter()
    files = nbytes = 0
    for spec in cfg.repos:
        f, b = raw_read(sources[spec.name].git_dir, spec.commit)
        files, nbytes = files + f, nbytes + b
    return files, nbytes, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path)
    ap.add_argument("--mirrors", type=Path, required=True, help="local git dirs DIR/<name>[.git]")
    ap.add_argument("--repeat", type=int, default=3, help="runs; the best one is reported (warm page cache)")
    args = ap.parse_args()
    cfg = load_config(args.config)
    sources = resolve_sources(cfg, Path("/nonexistent-cache"), mirrors=args.mirrors)
    runs = [raw_read_all(cfg, sources) for _ in range(args.repeat)]
    files, nbytes, best = min(runs, key=lambda r: r[2])
    all_runs = ", ".join(f"{r[2]:.2f}" for r in runs)
    print(
        f"raw read: {files} files, {nbytes / 1e6:.1f} MB in {best:.2f}s ({nbytes / 1e6 / best:.0f} MB/s; "
        f"best of {args.repeat}: {all_runs})"
    )


if __name__ == "__main__":
    main()
