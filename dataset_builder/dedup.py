"""Exact + near deduplication and decontamination of the corpus, as one pure pass over `list[Record]`.

Runs corpus-wide after the per-repo read → filters → redact (pipeline.py): after redaction (so no hash
depends on a secret's value, and two copies of a file that differ only in a redacted key are still caught)
and after splits are assigned.

1. **Exact**: documents with the same content once all whitespace is removed (`content_hash`) are one group.
2. **Near**: one representative per exact group gets a MinHash signature (256 permutations, 5-grams of code
   tokens, see `dedup_near`); LSH candidate pairs with estimated Jaccard ≥ 0.7 are linked.
3. **Clusters**: exact groups and near links are merged by union-find (connected components).
4. **Survivors** (`survivor_key`, the one rule): in each cluster the document with the smallest key wins:
   test < train < validation, then the repo rank (newest pinned commit first, then config order, see
   `rank_repos`), then path, then id. Every test document is kept as well — the test set stays intact and
   train/validation lose their copies — so afterwards no train or validation document is an exact or near
   duplicate of a test document, no validation document of a train document, and no two train documents
   duplicate each other.

Each dropped document is attributed to one kept document of its cluster: an exact copy if there is one
(reason "exact"), else the kept document with the highest estimated Jaccard (reason "near"). The report
counts drops by reason, by split pair and by repo pair, with sorted keys, for manifest["dedup"].
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from dataset_builder.config import DedupConfig  # defaults live with the rest of the corpus config
from dataset_builder.dedup_near import minhash_signatures, near_duplicate_pairs
from dataset_builder.record import Record

# Lower wins. Test first: it must stay intact; validation last: it loses to train.
SPLIT_PRIORITY = {"test": 0, "train": 1, "validation": 2}


@dataclass(frozen=True)
class Removal:
    """One dropped document and the kept document it duplicates."""

    id: str
    repo: str
    path: str
    split: str
    reason: str  # "exact" | "near"
    kept_id: str
    kept_repo: str
    kept_path: str
    kept_split: str
    similarity: float  # 1.0 for exact copies, else the estimated Jaccard of the 5-gram sets


@dataclass
class DedupResult:
    kept: list[Record]  # in input order
    removed: list[Removal]  # sorted by (repo, path, id)
    report: dict  # JSON-serialisable, for manifest["dedup"]


# The ASCII characters str.split() splits on (str.isspace): for ASCII text, deleting them with
# bytes.translate gives the same bytes as "".join(text.split()), without building a list of words.
_ASCII_WHITESPACE = bytes(c for c in range(128) if chr(c).isspace())


def content_hash(text: str) -> str:
    """Whitespace-insensitive content hash: reformatting (indentation, blank lines, trailing spaces,
    line endings) does not change it."""
    if text.isascii():
        squeezed = text.encode("ascii").translate(None, _ASCII_WHITESPACE)
    else:  # Unicode whitespace (NBSP, U+2028, ...) counts too
        squeezed = "".join(text.split()).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(squeezed, digest_size=16).hexdigest()


def rank_repos(commit_times: Mapping[str, int], config_order: Sequence[str]) -> dict[str, int]:
    """repo → rank (0 is best): newest pinned commit first, ties broken by the order of the config.

    The v1 monorepo (pinned at its last v1 tag) thus beats the archived component repos it absorbed.
    """
    position = {name: i for i, name in enumerate(config_order)}
    missing = sorted(set(commit_times) - set(position))
    if missing:
        raise ValueError(f"repos {missing} have a commit time but are not in the config order")
    ordered = sorted(commit_times, key=lambda name: (-commit_times[name], position[name]))
    return {name: rank for rank, name in enumerate(ordered)}


def survivor_key(record: Record, repo_rank: Mapping[str, int]) -> tuple[int, int, str, str]:
    """The survivor rule: among copies the smallest key is kept (see the module docstring)."""
    if record.split not in SPLIT_PRIORITY:
        raise ValueError(
            f"{record.repo}:{record.path} has split {record.split!r}; expected one of {SPLIT_PRIORITY}"
        )
    if record.repo not in repo_rank:
        raise ValueError(f"repo {record.repo!r} has no rank; pass every repo of the corpus to deduplicate()")
    return (SPLIT_PRIORITY[record.split], repo_rank[record.repo], record.path, record.id)


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:  # path compression
            self.parent[i], i = root, self.parent[i]
        return root

    def union(self, i: int, j: int) -> None:
        ri, rj = self.find(i), self.find(j)
        if ri != rj:
            self.parent[max(ri, rj)] = min(ri, rj)


def split_pair(removed_split: str, kept_split: str) -> str:
    """Report label: "within train" for train↔train copies, else "<removed>↔<kept>" e.g. "train↔test"."""
    return f"within {removed_split}" if removed_split == kept_split else f"{removed_split}↔{kept_split}"


def repo_pair(a: str, b: str) -> str:
    """Report label, symmetric: "flyte ↔ flytepropeller" whichever of the two lost."""
    return " ↔ ".join(sorted((a, b)))


def deduplicate(
    records: Sequence[Record],
    repo_rank: Mapping[str, int],
    config: DedupConfig | None = None,
    timings: dict[str, float] | None = None,
) -> DedupResult:
    """Drop exact and near duplicates and decontaminate train/validation against test (module docstring).

    Pure and deterministic: the kept set does not depend on the input order; `kept` keeps input order.
    `timings`, when given, receives wall seconds per phase (kept out of the report, which must be stable).
    """
    config = config or DedupConfig()
    clock = time.perf_counter()
    n = len(records)
    if len({r.id for r in records}) != n:
        raise ValueError("record ids are not unique; dedup needs one record per (repo, path)")
    keys = [survivor_key(r, repo_rank) for r in records]
    hashes = [content_hash(r.content) for r in records]
    uf = _UnionFind(n)
    group_rep: dict[str, int] = {}  # content hash → best document of the exact group
    for i in sorted(range(n), key=keys.__getitem__):
        rep = group_rep.setdefault(hashes[i], i)
        uf.union(rep, i)
    reps = sorted(group_rep.values())
    if timings is not None:
        timings["exact"] = time.perf_counter() - clock
        clock = time.perf_counter()

    sigs, counts = minhash_signatures(
        [records[i].content for i in reps], config.num_perm, config.seed, config.ngram, config.workers
    )
    eligible = np.flatnonzero(counts > 0)  # too short for one n-gram: exact dedup only
    pairs = near_duplicate_pairs(sigs[eligible], config.threshold)
    links: dict[int, dict[int, float]] = defaultdict(dict)  # exact-group representative → near reps
    for a, b, sim in pairs:
        ra, rb = reps[eligible[a]], reps[eligible[b]]
        uf.union(ra, rb)
        links[ra][rb] = links[rb][ra] = sim
    if timings is not None:
        timings["near"] = time.perf_counter() - clock
        clock = time.perf_counter()

    clusters: dict[int, list[int]] = defaultdict(list)
    for i in range(n):
        clusters[uf.find(i)].append(i)
    removed: list[Removal] = []
    for members in clusters.values():
        if len(members) > 1:
            removed += _resolve_cluster(records, members, keys, hashes, group_rep, links)
    removed.sort(key=lambda r: (r.repo, r.path, r.id))
    dropped = {r.id for r in removed}
    kept = [r for r in records if r.id not in dropped]
    report = _report(records, kept, removed, config, n_pairs=len(pairs), n_short=int((counts == 0).sum()))
    if timings is not None:
        timings["resolve"] = time.perf_counter() - clock
    return DedupResult(kept=kept, removed=removed, report=report)


def _resolve_cluster(records, members, keys, hashes, group_rep, links) -> list[Removal]:
    """Greedy in survivor-key order: a document is kept unless it is an exact copy of, or near-linked
    to, an already kept one (test documents are always kept).

    Greedy, not "one survivor per cluster": union-find components chain (A~B, B~C, A≁C), and dropping C
    for a kept A it does not resemble would lose real data. This way every drop has a kept partner with
    Jaccard ≥ threshold, and no two kept documents are linked.
    """
    kept: list[int] = []
    kept_hashes: dict[str, int] = {}
    out = []
    for i in sorted(members, key=keys.__getitem__):
        rec = records[i]
        partner, reason, sim = kept_hashes.get(hashes[i]), "exact", 1.0
        if partner is None:
            near = links.get(group_rep[hashes[i]], {})
            # best kept partner: highest similarity, then the better survivor key
            scored = [
                (near[group_rep[hashes[k]]], -pos, k)
                for pos, k in enumerate(kept)
                if group_rep[hashes[k]] in near
            ]
            if scored:
                sim, _, partner = max(scored)
                reason = "near"
        if partner is None or rec.split == "test":
            kept.append(i)
            kept_hashes.setdefault(hashes[i], i)
            continue
        p = records[partner]
        out.append(
            Removal(
                rec.id, rec.repo, rec.path, rec.split, reason, p.id, p.repo, p.path, p.split, round(sim, 4)
            )
        )
    return out


def _count(removed: list[Removal], label) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = defaultdict(lambda: {"exact": 0, "near": 0})
    for r in removed:
        table[label(r)][r.reason] += 1
    return {k: table[k] for k in sorted(table)}


def _report(records, kept, removed, config, n_pairs: int, n_short: int) -> dict:
    """Deterministic, JSON-serialisable summary for manifest["dedup"]."""
    dropped = {x.id for x in removed}
    removed_bytes = sum(r.bytes for r in records if r.id in dropped)
    return {
        # `workers` changes speed, never results: keep it out so the manifest does not depend on the machine.
        "config": {k: v for k, v in asdict(config).items() if k != "workers"}
        | {"normalisation": "all whitespace removed, blake2b-128"},
        "input": {"files": len(records), "bytes": sum(r.bytes for r in records)},
        "kept": {"files": len(kept), "bytes": sum(r.bytes for r in kept)},
        "removed": {
            "files": len(removed),
            "bytes": removed_bytes,
            "exact": sum(r.reason == "exact" for r in removed),
            "near": sum(r.reason == "near" for r in removed),
        },
        "by_split_pair": _count(removed, lambda r: split_pair(r.split, r.kept_split)),
        "by_repo_pair": _count(removed, lambda r: repo_pair(r.repo, r.kept_repo)),
        "near_pairs_verified": n_pairs,
        "too_short_for_near": n_short,
    }
