"""How much of a corpus split FIM can reach when, as in Code Llama, only documents that fit one context are
FIM'd: documents and characters in files longer than a context, and the sequences they become.

Text only (training.data.chunk_spans with training.prepare's character budget), no tokenizer, ~10 s:

    python bench/fim_coverage.py --dataset /tmp/corpusC --max-length 4096 16384

The numbers behind the comment at `objective:` in training/recipes/codellama-7b-lora.yaml.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def coverage(contents: list[str], languages: list[str], max_length: int) -> dict[str, float]:
    """Counts for one context length; `long` = documents cut into more than one sequence."""
    from training.data import chunk_spans
    from training.prepare import CHARS_PER_TOKEN, FIM_OVERHEAD

    max_chars = int((max_length - FIM_OVERHEAD) * CHARS_PER_TOKEN)
    docs = long = seqs = long_seqs = chars = long_chars = 0
    for text, language in zip(contents, languages, strict=True):
        n = len(chunk_spans(text, language, max_chars))
        docs, seqs, chars = docs + 1, seqs + n, chars + len(text)
        if n > 1:
            long, long_seqs, long_chars = long + 1, long_seqs + n, long_chars + len(text)
    return {
        "max_length": max_length,
        "max_chars": max_chars,
        "documents": docs,
        "long_documents": long,
        "long_share": long / max(docs, 1),
        "sequences": seqs,
        "long_sequences": long_seqs,
        "continuations": long_seqs - long,
        "characters": chars,
        "long_characters_share": long_chars / max(chars, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="corpus folder (python -m dataset_builder build)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--max-length", type=int, nargs="+", default=[4096, 16384])
    args = parser.parse_args(argv)
    from training.data import load_corpus

    split = load_corpus(args.dataset, None, (args.split,))[args.split]
    contents, languages = list(split["content"]), list(split["language"])
    for max_length in args.max_length:
        c = coverage(contents, languages, max_length)
        print(
            f"max_length {c['max_length']} ({c['max_chars']:,} chars): {c['long_documents']:,} of "
            f"{c['documents']:,} documents ({c['long_share']:.1%}) are longer than one context and hold "
            f"{c['long_characters_share']:.1%} of {c['characters']:,} characters; they make "
            f"{c['long_sequences']:,} of {c['sequences']:,} sequences, {c['continuations']:,} continuations"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
