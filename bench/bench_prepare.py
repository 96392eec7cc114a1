"""Data preparation throughput (tokenise + chunk + FIM + EOS + pack) vs raw batched tokenisation.

    python bench/bench_prepare.py [--corpus /tmp/corpus-real] [--mirrors MIRRORS] [--max-length 4096]
                                  [--lengths-out bench/doc_token_lengths.json] [--repeat 3]
                                  [--chars-per-token 3.0]

Uses the real corpus folder's train split when it exists, else reads source files straight from the git
mirrors (HEAD of every repo). The tokenizer is a Code Llama–style BPE (vocab 8000) trained on a sample of the
same text: Code Llama's own cannot be downloaded here. `--lengths-out` writes the documents' token lengths (a
JSON list) that bench/gpu_train_throughput.py replays on the GPU. The two measurements alternate `--repeat`
times and the best of each is shown (the machine may be shared). Also prints how many sequences came from
chunks that the characters-per-token estimate made too long (split again and re-encoded). Prints; asserts
nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datasets import Dataset
from trl.data_utils import pack_dataset

from training.data import load_corpus
from training.prepare import CHARS_PER_TOKEN, Preparer, PrepareStats, iter_examples
from training.tiny import build_tiny_tokenizer, sample_texts

EXTENSIONS = {".py": "python", ".go": "go", ".ts": "typescript", ".tsx": "tsx", ".md": "markdown"}


def texts_from_mirrors(mirrors: Path) -> tuple[list[str], list[str]]:
    """All source-like blobs at HEAD of every mirror (one `git cat-file --batch` per repo)."""
    texts, languages = [], []
    for repo in sorted(p for p in mirrors.iterdir() if p.is_dir()):
        listing = subprocess.run(
            ["git", "-C", str(repo), "ls-tree", "-r", "-z", "HEAD"], capture_output=True, check=True
        ).stdout.split(b"\0")
        blobs = []
        for entry in filter(None, listing):
            meta, path = entry.split(b"\t", 1)
            language = EXTENSIONS.get(Path(path.decode(errors="replace")).suffix)
            if language and meta.split()[1] == b"blob":
                blobs.append((meta.split()[2], language))
        proc = subprocess.run(
            ["git", "-C", str(repo), "cat-file", "--batch"],
            input=b"".join(sha + b"\n" for sha, _ in blobs),
            capture_output=True,
            check=True,
        )
        out, pos = proc.stdout, 0
        for _, language in blobs:
            header_end = out.index(b"\n", pos)
            size = int(out[pos:header_end].split()[2])
            data = out[header_end + 1 : header_end + 1 + size]
            pos = header_end + 1 + size + 1
            if size < 1_000_000 and b"\0" not in data:
                texts.append(data.decode("utf-8", errors="replace"))
                languages.append(language)
    return texts, languages


def timed(fn, *args):
    t0 = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="/tmp/corpus-real")
    parser.add_argument("--mirrors", default="/work/mirrors")
    parser.add_argument("--max-length", type=int, default=4096)
    parser.add_argument("--lengths-out", default=None)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the best is shown")
    parser.add_argument(
        "--chars-per-token", type=float, default=CHARS_PER_TOKEN, help="the chunking estimate"
    )
    args = parser.parse_args()

    if Path(args.corpus).exists():
        train = load_corpus(args.corpus)["train"]
        texts, languages, source = list(train["content"]), list(train["language"]), args.corpus
    else:
        texts, languages = texts_from_mirrors(Path(args.mirrors))
        source = f"{args.mirrors} (git HEAD)"
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    tokenizer = build_tiny_tokenizer(sample_texts(texts, 2_000_000), vocab_size=8000)
    print(f"{len(texts):,} documents, {mb:.1f} MB from {source}; BPE vocab {len(tokenizer)}")

    def raw() -> list[int]:
        lengths = []
        for i in range(0, len(texts), 256):
            lengths += map(len, tokenizer(texts[i : i + 256], add_special_tokens=False)["input_ids"])
        return lengths

    preparer = Preparer(tokenizer, args.max_length, 0.9, 0.5, args.chars_per_token)

    def prepare() -> tuple[list[list[int]], PrepareStats]:
        rng, ids, stats = np.random.default_rng(0), [], PrepareStats()
        for e in iter_examples(preparer, texts, languages, rng, 256):
            stats.add(e)
            ids.append(e.input_ids)
        return ids, stats

    def pack(ids: list[list[int]]) -> Dataset:
        return pack_dataset(Dataset.from_dict({"input_ids": ids}), args.max_length, strategy="bfd")

    # The machine is shared: alternate the two measurements and keep the best of each.
    raw_s = prep_s = pack_s = float("inf")
    for _ in range(args.repeat):
        lengths, seconds = timed(raw)
        raw_s = min(raw_s, seconds)
        (ids, stats), seconds = timed(prepare)
        prep_s = min(prep_s, seconds)
        packed, seconds = timed(pack, ids)
        pack_s = min(pack_s, seconds)

    tokens = sum(map(len, ids))
    print(
        f"raw batched tokenisation      : {raw_s:6.2f} s  {mb / raw_s:6.2f} MB/s  ({sum(lengths):,} tokens)"
    )
    print(f"tokenise+chunk+FIM+EOS        : {prep_s:6.2f} s  {mb / prep_s:6.2f} MB/s  ({tokens:,} tokens)")
    print(
        f"sequences split again         : {stats.resplit:,} of {stats.chunks:,}"
        f" ({stats.resplit / stats.chunks:.1%}); cut inside a line: {stats.char_cuts:,}"
        f" (--chars-per-token {args.chars_per_token})"
    )
    print(f"+ bfd packing ({len(packed):,} rows)    : {pack_s:6.2f} s")
    print(f"preparation / raw throughput  : {raw_s / (prep_s + pack_s):.0%} (target >= 70%)")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"best of {args.repeat}; load average {load} on {os.cpu_count()} CPUs")
    if args.lengths_out:
        Path(args.lengths_out).write_text(json.dumps(lengths))
        print(f"wrote {len(lengths):,} document token lengths to {args.lengths_out}")


if __name__ == "__main__":
    main()
