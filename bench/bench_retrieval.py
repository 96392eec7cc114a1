"""Retrieval on a real corpus: index build and load time, query latency (median, p95) and the context it
adds to the prompts of infilling tasks cut from the test split, plus how often that context holds the answer.

    python bench/bench_retrieval.py --dataset CORPUS_DIR [--tasks 200] [--k 5] [--budget 512]

The index is built from the train split into a temporary folder (as `evaluate --retrieval` does beside its
results). Tasks are cut as `evaluate` cuts them (training/infill.py, seed 0, no decontamination). Prompt
tokens are counted with a 8k-entry BPE trained here on the train split (no Code Llama tokenizer is
downloaded), so token figures are indicative; characters are exact. Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", required=True, help="corpus folder (python -m dataset_builder build --out)")
    p.add_argument("--tasks", type=int, default=200)
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--budget", type=int, default=512)
    args = p.parse_args(argv)

    from training.data import load_corpus
    from training.evaluation import crossfile
    from training.evaluation.retrieval import Retriever, build_index
    from training.infill import extract_tasks
    from training.tiny import build_tiny_tokenizer

    corpus = load_corpus(args.dataset, splits=("train", "test"))
    train = corpus["train"].select_columns(["repo", "path", "language", "content"]).to_list()
    test = corpus["test"].select_columns(["repo", "path", "language", "content"]).to_list()
    with tempfile.TemporaryDirectory() as tmp:
        started, cpu = time.perf_counter(), time.process_time()
        folder = build_index(args.dataset, Path(tmp) / "index")
        build_s, build_cpu = time.perf_counter() - started, time.process_time() - cpu
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        started = time.perf_counter()
        retriever = Retriever.load(folder)
        load_s = time.perf_counter() - started
        tok = build_tiny_tokenizer([r["content"] for r in train[:2000]], vocab_size=8000)
        tasks = extract_tasks(test, tok, num_tasks=args.tasks, seed=0)
        started = time.perf_counter()
        augmented, info = crossfile.augment_tasks(tasks, retriever, tok, args.k, args.budget)
        augment_s = time.perf_counter() - started
    query_ms = [i["query_seconds"] * 1000 for i in info]
    added_tokens = [i["context_tokens"] for i in info]
    added_chars = [len(a.prefix) - len(t.prefix) for a, t in zip(augmented, tasks, strict=True)]
    checked = [i["leak"] for i in info if i["leak"] is not None]
    print(f"corpus: {args.dataset} | train files {len(train)} | test files {len(test)}")
    print(f"index: {retriever.meta['chunks']} chunks of {retriever.meta['files']} files, {size / 1e6:.1f} MB")
    # CPU seconds of this process too: on a shared machine wall time follows the load, CPU time much less
    print(
        f"build (read train split + chunk + BM25 + save): {build_s:.2f} s wall, {build_cpu:.2f} s CPU "
        f"| load: {load_s * 1000:.0f} ms"
    )
    print(
        f"query (top-{args.k} of {len(tasks)} tasks): median {statistics.median(query_ms):.2f} ms, "
        f"p95 {_pct(query_ms, 0.95):.2f} ms, max {max(query_ms):.2f} ms"
    )
    print(
        f"query + context (tokenise, budget {args.budget}): {augment_s / len(tasks) * 1000:.1f} ms per task"
    )
    print(
        f"added prompt tokens per task: mean {statistics.fmean(added_tokens):.0f}, median "
        f"{statistics.median(added_tokens):.0f}, max {max(added_tokens)} | characters: mean "
        f"{statistics.fmean(added_chars):.0f} | chunks kept: mean "
        f"{statistics.fmean(len(i['chunks']) for i in info):.2f} | tasks with no context: "
        f"{sum(not i['chunks'] for i in info)}"
    )
    print(
        f"answer in the retrieved context (middle >= {crossfile.LEAK_MIN_CHARS} chars): "
        f"{sum(checked)} of {len(checked)} tasks"
    )


if __name__ == "__main__":
    main()
