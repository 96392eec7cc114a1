"""Benchmark the integrity stages (redaction, exact dedup, near dedup) on the real Flyte mirrors.

    python bench/bench_dedup.py [--mirrors MIRRORS] [--scale 1 4] [--json out.json]

Records are built straight from git objects of the pinned commits (flyte at v1.16.8, the others at HEAD),
so this runs before the corpus builder's pipeline exists. Only text files with source-like extensions are
kept. The 4× corpus adds `HEAD~200`, `HEAD~400`, `HEAD~600` of every repo as extra sources (repo names
`<repo>@~200` ...) — realistic near/exact copies, which is exactly what dedup has to chew through.
Validation is a stable 2 % hash split of the train repos' files (by record id).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dataset_builder.dedup import DedupConfig, deduplicate, rank_repos
from dataset_builder.record import Record, count_lines, record_id
from dataset_builder.redact import redact_records

# repo -> (ref, split); flyte is pinned to the last v1 monorepo tag.
REPOS = {
    "flyte": ("51877f899c9f95e0cb5efe90444eb0c6c6ea48a9", "train"),
    "flytekit": ("HEAD", "train"),
    "flytepropeller": ("HEAD", "train"),
    "flyteplugins": ("HEAD", "train"),
    "flyteidl": ("HEAD", "train"),
    "flyteadmin": ("HEAD", "train"),
    "flyteconsole": ("HEAD", "train"),
    "flytesnacks": ("HEAD", "test"),
    "flyte-conference-talks": ("HEAD", "test"),
}
LANGUAGES = {
    ".py": "python", ".go": "go", ".ts": "typescript", ".tsx": "tsx", ".js": "javascript",
    ".proto": "protobuf", ".md": "markdown", ".rst": "rst", ".sh": "shell", ".yaml": "yaml",
    ".yml": "yaml", ".toml": "toml", ".json": "json",
}  # fmt: skip
MAX_BYTES = 1_000_000  # skip huge generated blobs, as the builder's filters will


def _resolve(git_dir: Path, ref: str) -> tuple[str, int]:
    out = subprocess.run(
        ["git", f"--git-dir={git_dir}", "log", "-1", "--format=%H %ct", ref],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return out[0], int(out[1])


def _git(git_dir: Path, *args: str) -> bytes:
    return subprocess.run(["git", f"--git-dir={git_dir}", *args], capture_output=True, check=True).stdout


def _read_commit(git_dir: Path, sha: str) -> list[tuple[str, str, bytes]]:
    """(path, blob sha, bytes) of the source-like blobs of one commit: ls-tree + ONE cat-file --batch."""
    wanted = []
    for item in _git(git_dir, "ls-tree", "-r", "-z", "-l", "--full-tree", sha).split(b"\0"):
        meta, _, raw_path = item.partition(b"\t")
        if not item or meta.split()[1] != b"blob" or meta.startswith(b"120000"):
            continue
        size_field = meta.split()[3]
        if not size_field.isdigit():
            continue  # "BAD": a blob this (partial) mirror does not hold
        size = int(size_field)
        path = raw_path.decode("utf-8", "replace")
        if 0 < size <= MAX_BYTES and Path(path).suffix in LANGUAGES:
            wanted.append((path, meta.split()[2].decode()))
    # One batch process for the whole commit; the request list is small enough to write up front.
    out = subprocess.run(
        ["git", f"--git-dir={git_dir}", "cat-file", "--batch"],
        input="".join(f"{blob}\n" for _, blob in wanted).encode(), capture_output=True, check=True,
    ).stdout  # fmt: skip
    files, pos = [], 0
    for path, blob in wanted:
        header_end = out.index(b"\n", pos)
        size = int(out[pos:header_end].split()[2])
        files.append((path, blob, out[header_end + 1 : header_end + 1 + size]))
        pos = header_end + 1 + size + 1
    return files


def load_repo(git_dir: Path, name: str, ref: str, split: str) -> tuple[list[Record], int]:
    """Records of one commit (source-like UTF-8 files) and the commit's Unix time."""
    sha, when = _resolve(git_dir, ref)
    records = []
    for path, blob, data in _read_commit(git_dir, sha):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        rid = record_id(name, path)
        rec_split = split
        if split == "train" and int(hashlib.sha1(rid.encode()).hexdigest(), 16) % 100 < 2:
            rec_split = "validation"
        records.append(
            Record(
                id=rid, repo=name, path=path, language=LANGUAGES[Path(path).suffix],
                content=text, bytes=len(data), lines=count_lines(text), commit_sha=sha,
                blob_sha=blob, license="Apache-2.0", split=rec_split, is_test=False,
                is_doc=path.endswith((".md", ".rst")), is_notebook=False, parses=None,
            )
        )  # fmt: skip
    return records, when


def load_corpus(mirrors: Path, scale: int) -> tuple[list[Record], dict[str, int]]:
    """1×: the pinned commits; scale k>1 adds HEAD~200·i (i = 1..k-1) of each repo as extra sources."""
    records: list[Record] = []
    times: dict[str, int] = {}
    for name, (ref, split) in REPOS.items():
        for i in range(scale):
            src = name if i == 0 else f"{name}@~{200 * i}"
            rev = ref if i == 0 else f"{ref}~{200 * i}"
            try:
                recs, when = load_repo(mirrors / name, src, rev, split)
            except subprocess.CalledProcessError:
                continue  # history shorter than that
            records += recs
            times[src] = when
    return records, times


def _mb(records: list[Record]) -> float:
    return sum(r.bytes for r in records) / 1e6


def run(mirrors: Path, scale: int, config: DedupConfig) -> dict:
    t0 = time.perf_counter()
    records, times = load_corpus(mirrors, scale)
    t_load = time.perf_counter() - t0
    order = list(times)  # config order: REPOS order, older snapshots after their head
    ranks = rank_repos(times, order)

    t0 = time.perf_counter()
    redacted, redaction_report = redact_records(records)
    t_redact = time.perf_counter() - t0

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    result = deduplicate(redacted, ranks, config, timings=timings)
    t_dedup = time.perf_counter() - t0
    kept, report = result.kept, result.report
    return {
        "scale": scale,
        "files": len(records),
        "mb": round(_mb(records), 1),
        "kept_files": len(kept),
        "kept_mb": round(_mb(kept), 1),
        "seconds": {
            "load": round(t_load, 2),
            "redact": round(t_redact, 2),
            "dedup_total": round(t_dedup, 2),
            **{k: round(v, 2) for k, v in timings.items()},
        },
        "dedup": report,
        "redactions": redaction_report,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mirrors", type=Path, default=Path("/work/mirrors"))
    parser.add_argument("--scale", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--json", type=Path, help="write the full results here")
    args = parser.parse_args(argv)

    results = [run(args.mirrors, s, DedupConfig()) for s in args.scale]
    for res in results:
        sec = res["seconds"]
        print(
            f"{res['scale']}x: {res['files']} files, {res['mb']} MB -> kept {res['kept_files']} files, "
            f"{res['kept_mb']} MB | " + ", ".join(f"{k} {v}s" for k, v in sec.items())
        )
    if len(results) > 1:
        base, big = results[0]["seconds"], results[-1]["seconds"]
        for key in ("redact", "exact", "near", "dedup_total"):
            if base.get(key):
                print(
                    f"{key}: {results[-1]['scale']}x/{results[0]['scale']}x time ratio "
                    f"{big[key] / base[key]:.2f}"
                )
    first = results[0]
    shown = {"dedup": first["dedup"], "redactions": first["redactions"]}
    print(json.dumps(shown, indent=1, sort_keys=True, ensure_ascii=False))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, sort_keys=True, ensure_ascii=False))


if __name__ == "__main__":
    main()
