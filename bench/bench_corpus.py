"""Corpus build speed on the nine real repos, against a raw git read of the same commits.

    python bench/bench_corpus.py --mirrors MIRRORS [--config FILE] [--repeat 2] [--workers 2]
                                 [--changed-repo flytekit --changed-back 50]

Each round measures, in this process and in this order:
  raw    `git ls-tree -r` + ONE `git cat-file --batch` per repo over every blob (bench/raw_read.py)
  cold   build_corpus into a fresh cache dir (no partial clones, no per-repo cache, no prepared build)
  warm   the same build again, nothing changed (prepared-build cache hit)
  pin    one repo re-pinned `--changed-back` commits earlier (`--set repos.<repo>.commit=<sha>`): only
         that repo is re-read; the corpus-wide dedup and the parse check of new survivors re-run
The best of `--repeat` rounds is reported for each (the machine is shared: timings are noisy), with the
cold/raw ratio of the same round. files/s and MB/s count the input: every blob of the pinned trees.
Prints; asserts nothing. The target: cold ≤ 10x raw.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from raw_read import raw_read_all

from dataset_builder.build import build_corpus
from dataset_builder.config import load_config
from dataset_builder.gitread import git
from dataset_builder.sources import resolve_sources
from model_card.dataset_card import render_dataset_card


def _timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mirrors", type=Path, default=Path("/work/mirrors"))
    ap.add_argument("--config", type=Path, help="recipe (default: dataset_builder/corpus.yaml)")
    ap.add_argument("--repeat", type=int, default=2, help="rounds; the best of each measure is reported")
    ap.add_argument("--workers", type=int, default=2, help="processes for per-repo work and parse checks")
    ap.add_argument("--changed-repo", default="flytekit", help="repo re-pinned for the one-pin-changed build")
    ap.add_argument("--changed-back", type=int, default=50, help="re-pin to this many commits earlier")
    args = ap.parse_args(argv)

    cfg = load_config(args.config)
    sources = resolve_sources(cfg, Path("/nonexistent-cache"), mirrors=args.mirrors)
    spec = cfg.repo(args.changed_repo)
    older = git(sources[spec.name].git_dir, "rev-parse", f"{spec.commit}~{args.changed_back}").strip()
    pin = [f"repos.{spec.name}.commit={older}"]
    common = {
        "config": args.config,
        "mirrors": args.mirrors,
        "progress": False,
        "workers": args.workers,
        "render_card": render_dataset_card,
    }

    rounds = []
    for i in range(args.repeat):
        work = Path(tempfile.mkdtemp(prefix="bench-corpus-"))
        try:
            files, nbytes, raw = raw_read_all(cfg, sources)
            cache, out = work / "cache", work / "out"
            cold, manifest = _timed(build_corpus, out, cache_dir=cache, **common)
            warm, _ = _timed(build_corpus, out, cache_dir=cache, **common)
            stats: dict = {}
            pinned, _ = _timed(build_corpus, out, cache_dir=cache, overrides=pin, stats=stats, **common)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        rounds.append({"raw": raw, "cold": cold, "warm": warm, "pin": pinned, "stats": stats})
        print(
            f"round {i + 1}: raw {raw:.2f}s | cold {cold:.2f}s ({cold / raw:.1f}x raw) | warm {warm:.2f}s"
            f" | one pin changed {pinned:.2f}s (re-processed {stats['computed']}, "
            f"parsed {stats['parsed']} files)"
        )

    best = {k: min(r[k] for r in rounds) for k in ("raw", "cold", "warm", "pin")}
    kept = sum(s["files"] for s in manifest["splits"].values())
    kept_mb = sum(s["bytes"] for s in manifest["splits"].values()) / 1e6
    mb = nbytes / 1e6
    print(f"input: {len(cfg.repos)} repos, {files} files, {mb:.1f} MB at the pinned commits")
    raw, cold = best["raw"], best["cold"]
    print(f"raw read:   {raw:.2f}s  ({files / raw:.0f} files/s, {mb / raw:.0f} MB/s)")
    print(
        f"cold build: {cold:.2f}s  ({files / cold:.0f} files/s, {mb / cold:.1f} MB/s) "
        f"= {cold / raw:.1f}x raw (best of {args.repeat}; per round: "
        + ", ".join(f"{r['cold'] / r['raw']:.1f}x" for r in rounds)
        + ")"
    )
    print(f"warm rebuild: {best['warm']:.2f}s")
    print(f"one pin changed ({spec.name} -> {older[:10]}): {best['pin']:.2f}s")
    print(f"output: {kept} files, {kept_mb:.1f} MB; dedup removed {manifest['dedup']['removed']}")


if __name__ == "__main__":
    main()
